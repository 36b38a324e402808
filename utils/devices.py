"""Which devices to run on, from the ``--gpu_idx`` flag, and why no GPU is visible when none is."""
import ctypes
import os
import re

import mxnet as mx

_CPU_CONTEXTS = re.compile(r"^cpu:(\d+)$")


def parse_gpu_idx(value):
    """``None``/'' → None (auto), '-1' → [] (CPU), '0,1' → [0, 1], 'cpu:N' → ('cpu', N).

    ``cpu:N`` runs the multi-device path on N CPU contexts (each a share of the same CPU): for
    tests, and for debugging the GPU path on a machine without GPUs.
    """
    if value is None or str(value).strip() in ("", "None", "none", "auto"):
        return None
    text = str(value).strip().lower()
    cpu = _CPU_CONTEXTS.match(text)
    if cpu:
        if int(cpu.group(1)) < 1:
            raise ValueError("--gpu_idx=cpu:N needs N >= 1 CPU contexts; got %r" % value)
        return ("cpu", int(cpu.group(1)))
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        indices = [int(part) for part in parts]
    except ValueError:
        raise ValueError(
            "--gpu_idx must be -1 (CPU), a GPU index, a comma-separated list such as 0,1, or cpu:N "
            "(N CPU contexts); got %r" % value
        ) from None
    if indices == [-1]:
        return []
    if any(index < 0 for index in indices) or len(set(indices)) != len(indices):
        raise ValueError(
            "--gpu_idx must list distinct non-negative GPU indices (or be -1 for CPU); got %r" % value
        )
    return indices


def no_gpu_cause(environ=None, features=None, load_library=None):
    """Why MXNet sees no GPU, in a few words: the first of these that holds.

    - the installed MXNet is a CPU build (``requirements-cpu.txt``);
    - ``CUDA_VISIBLE_DEVICES`` hides every GPU;
    - the NVIDIA driver's ``libcuda.so.1`` cannot be loaded (no driver, or a container started
      without ``--gpus``);
    - otherwise the driver is there but MXNet found no device it can use (a driver older than
      CUDA 11 needs, or a GPU the wheel has no code for).

    The parameters let tests stand in for the machine.
    """
    environ = os.environ if environ is None else environ
    if features is None:
        features = mx.runtime.Features()
    if not features.is_enabled("CUDA"):
        return ("the installed MXNet is a CPU build; install the GPU one (pip install -r requirements.txt, "
                "see README, GPU)")
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "none", "NoDevFiles"):
        return "CUDA_VISIBLE_DEVICES=%r hides every GPU" % visible
    load_library = load_library or ctypes.CDLL
    try:
        load_library("libcuda.so.1")
    except OSError:
        return ("the NVIDIA driver (libcuda.so.1) cannot be loaded: no driver on this machine, or a "
                "container started without --gpus")
    return ("the driver is installed but MXNet found no usable GPU: the driver may be older than CUDA 11 "
            "needs (>= 450.80.02), or the GPU newer than the wheel's sm_50-sm_86 (see README, GPU)")


def visible_gpus():
    """The number of GPUs MXNet sees (0 for a CUDA build without a recent enough driver)."""
    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:  # a CUDA build on a machine without a (recent enough) driver
        return 0


def resolve_contexts(gpu_idx, num_gpus=None, explain=no_gpu_cause):
    """The list of contexts to train on.

    Parameters
    ----------
    gpu_idx : str or None
        The ``--gpu_idx`` flag: nothing → GPU 0 when one is visible, else the CPU.
    num_gpus : int, optional
        Number of visible GPUs (default: asked of MXNet; a parameter so tests can pretend).
    explain : callable
        Gives the reason no GPU is visible, for the error message.
    """
    indices = parse_gpu_idx(gpu_idx)
    if isinstance(indices, tuple):
        return [mx.cpu(index) for index in range(indices[1])]
    if num_gpus is None:
        num_gpus = visible_gpus()
    if indices is None:
        return [mx.gpu(0)] if num_gpus > 0 else [mx.cpu()]
    if not indices:
        return [mx.cpu()]
    missing = [index for index in indices if index >= num_gpus]
    if missing:
        if num_gpus == 0:
            raise ValueError("--gpu_idx asks for GPU %d but no GPU is visible: %s; pass --gpu_idx=-1 to "
                             "train on the CPU" % (missing[0], explain()))
        raise ValueError(
            "--gpu_idx asks for GPU %d but only %d GPU(s) are visible (indices 0-%d); pass --gpu_idx=-1 "
            "to train on the CPU" % (missing[0], num_gpus, num_gpus - 1))
    return [mx.gpu(index) for index in indices]
