"""Mixed precision (``--dtype``): the network's convolutions and dense layers in bfloat16 or float16.

MXNet's AMP (``mxnet.contrib.amp``) rewrites a graph: ``amp.convert_symbol`` puts ``amp_cast``
nodes before the operators of its lower-precision list (Convolution, FullyConnected; the
float16 list is longer) and back to float32 before the operators that need float32. We apply it to
the hybridized network's own graph and let the network run that graph
(:func:`use_mixed_precision`), so that:

- the parameters stay float32 master copies (the casts are inside the graph, and their gradients
  are cast back), so the optimiser, the checkpoints and ``model_*.params`` are those of float32;
- the embedding head's Dense layer is left out of the conversion: the network's output, the
  L2 normalisation, the loss, evaluation distances and metrics are float32. (A loss computed on
  bfloat16 embeddings came out as exactly 0.0: EE + HPHN compare distances that bfloat16's
  8 significant bits cannot tell apart.) So is the first convolution, for speed
  (:func:`float32_layers`);
- nothing in ``mx.nd`` or ``mx.sym`` is patched (``amp.init`` would patch both, for the loss and
  for every other network of the process as well).

float16 keeps its gradients in range with dynamic loss scaling (AMP's ``LossScaler``, the one
``amp.init_trainer`` attaches to a Gluon Trainer): the loss is multiplied by the scale before the
backward pass, the trainer divides the gradients by it, and a step whose gradients overflowed is
skipped and halves the scale. Its state is saved in the checkpoints (:func:`loss_scaler_state`) so
that a resumed run scales as the uninterrupted one. bfloat16 has float32's exponent range and needs
no scaling.

A trained network embeds in a lower precision through ``inference.embedding_graph`` (embed.py and
evaluate.py ``--dtype``), which casts the weights once instead of at every batch.

MXNet 1.9.1 runs bfloat16 on the CPU only (oneDNN kernels, fast only with the CPU's BF16
instructions) and float16 fast only on GPUs with tensor cores; :func:`check_dtype` refuses the other
combinations in one sentence.

The CPU's flags are read from ``/proc/cpuinfo``, or from the file the environment variable
``EE_GLUON_CPUINFO`` names (same format: a ``flags`` line of space-separated names), read instead:
``EE_GLUON_CPUINFO=/tmp/cpuinfo-nobf16 python -m pytest tests`` runs the test suite, and every
process it starts, as on a CPU without BF16 instructions (the refusals, and the bfloat16 tests
skipped) on a machine that has them.
"""
import json
import logging
import os

import mxnet as mx
from mxnet.contrib import amp
from mxnet.contrib.amp.loss_scaler import LossScaler

logger = logging.getLogger(__name__)

DTYPES = ("float32", "float16", "bfloat16")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names of the BF16 instructions
CPUINFO = "/proc/cpuinfo"
CPUINFO_ENV = "EE_GLUON_CPUINFO"  # names a file read instead of CPUINFO (tests: another CPU's flags)
LOSS_SCALER_FIELDS = ("_loss_scale", "_next_loss_scale", "_unskipped")


def cpuinfo_path():
    """Where the CPU's flags are read: the file ``$EE_GLUON_CPUINFO`` names when it is set, else
    ``/proc/cpuinfo``. A set variable that names no file is a one-line ``ValueError``: a typo there
    would otherwise pass for a CPU without BF16."""
    override = os.environ.get(CPUINFO_ENV)
    if not override:
        return CPUINFO
    if not os.path.isfile(override):
        raise ValueError("%s=%s names no file; point it to a file in /proc/cpuinfo's format (a 'flags' "
                         "line) or unset it" % (CPUINFO_ENV, override))
    return override


def cpu_bf16_flags(cpuinfo=None):
    """The BF16 instruction flags (``avx512_bf16``, ``amx_bf16``) that ``cpuinfo`` lists (default:
    :func:`cpuinfo_path`); none when the file cannot be read."""
    cpuinfo = cpuinfo_path() if cpuinfo is None else cpuinfo
    try:
        with open(cpuinfo) as handle:
            words = set(handle.read().split())
    except OSError:
        return []
    return [flag for flag in CPU_BF16_FLAGS if flag in words]


def mxnet_has_onednn():
    """True when this MXNet build has oneDNN (MKLDNN), which holds its bfloat16 CPU kernels."""
    features = mx.runtime.Features()
    return any(name in features and features.is_enabled(name) for name in ("MKLDNN", "ONEDNN"))


def check_dtype(dtype, contexts, cpuinfo=None, onednn=None):
    """Refuse, in one sentence naming the flag that works, a ``--dtype`` these devices cannot run.

    Parameters
    ----------
    dtype : str
        One of :data:`DTYPES`.
    contexts : list of mx.Context
        The training devices.
    cpuinfo : str, optional
        Where the CPU's flags are read (a file in the format of ``/proc/cpuinfo``); default:
        :func:`cpuinfo_path`.
    onednn : bool, optional
        Whether MXNet has oneDNN; default: asked of ``mx.runtime.Features()``.
    """
    if dtype not in DTYPES:
        raise ValueError("--dtype=%s is not one of %s" % (dtype, ", ".join(DTYPES)))
    if dtype == "float32":
        return dtype
    cpuinfo = cpuinfo_path() if cpuinfo is None else cpuinfo
    on_gpu = any(context.device_type == "gpu" for context in contexts)
    if dtype == "float16" and not on_gpu:
        hint = "--dtype=bfloat16" if cpu_bf16_flags(cpuinfo) else "--dtype=float32"
        raise ValueError("--dtype=float16 runs on GPUs only (give --gpu_idx=0); on the CPU use %s" % hint)
    if dtype == "bfloat16":
        if on_gpu:
            raise ValueError("--dtype=bfloat16 runs on the CPU only in MXNet 1.9.1; on GPUs use "
                             "--dtype=float16")
        if not cpu_bf16_flags(cpuinfo):
            raise ValueError("--dtype=bfloat16 needs a CPU with BF16 instructions (%s in %s), which "
                             "this one lacks; use --dtype=float32"
                             % (" or ".join(CPU_BF16_FLAGS), cpuinfo))
        if not (mxnet_has_onednn() if onednn is None else onednn):
            raise ValueError("--dtype=bfloat16 needs an MXNet built with oneDNN (MKLDNN), which this "
                             "one is not; use --dtype=float32")
    return dtype


def float32_layers(graph):
    """The names of the layers of ``graph`` that stay float32: the first convolution, whose input is
    the image, and the embedding head's Dense layer (the graph's last FullyConnected; the
    backbones' feature layers have none). Read from the graph, so that a network rebuilt by main.py
    and an exported SymbolBlock are treated alike.

    The first convolution has 3 input channels, which oneDNN's bfloat16 kernels do not block: it
    falls back to a plain-layout GEMM, and the BatchNorm after it to a plain-layout kernel, so
    that in bfloat16 it makes the forward pass slower, not faster (docs/performance.md, Inside
    the code).
    """
    nodes = json.loads(graph.tojson())["nodes"]
    convolutions = [node["name"] for node in nodes if node["op"] == "Convolution"]
    dense = [node["name"] for node in nodes if node["op"] == "FullyConnected"]
    return convolutions[:1] + dense[-1:]


def use_mixed_precision(net, dtype):
    """Make the hybridized ``net`` run in ``dtype`` through AMP; float32 leaves it untouched.

    The network's graph is traced (symbolically: nothing is computed or initialised), converted by
    ``amp.convert_symbol`` with float32 parameters (``cast_optional_params=False``) and the head's
    Dense layer excluded, and installed as the graph the network runs; the parameters are the
    network's own. Call it after ``net.hybridize()``; hybridizing again (or :func:`use_float32`)
    returns to float32.
    """
    if dtype == "float32":
        return net
    if not net._active:
        raise ValueError("use_mixed_precision needs a hybridized network (net.hybridize() first)")
    net._clear_cached_op()
    # The Block's own trace; the input's shape and values are not used, only its being one array.
    inputs, graph = net._get_graph(mx.nd.zeros((1, 1, 1, 3), dtype="uint8"))
    converted = amp.convert_symbol(graph, target_dtype=dtype, excluded_sym_names=float32_layers(graph),
                                   data_names=[data.name for data in inputs], cast_optional_params=False)
    net._cached_graph = inputs, converted
    logger.info("the network runs in %s (AMP); its output, the loss and the metrics in float32", dtype)
    return net


def use_float32(net):
    """Return a network of :func:`use_mixed_precision` to its float32 graph (e.g. for export)."""
    net._clear_cached_op()
    return net


def attach_loss_scaler(trainer, dtype, state=None):
    """float16: give ``trainer`` AMP's dynamic loss scaler (what ``amp.init_trainer`` attaches),
    restored from ``state`` (:func:`loss_scaler_state`) when given. Other dtypes: nothing."""
    if dtype != "float16":
        return trainer
    scaler = LossScaler()
    for name, value in (state or {}).items():
        if name not in LOSS_SCALER_FIELDS:
            raise ValueError("the checkpoint's loss scaler has an unknown field %r" % name)
        setattr(scaler, name, value)
    trainer._amp_loss_scaler = scaler
    trainer._amp_original_scale = trainer._scale
    return trainer


def loss_scaler_state(trainer):
    """The dynamic loss scaler's state (JSON-able) for a checkpoint, or None without one."""
    scaler = getattr(trainer, "_amp_loss_scaler", None)
    if scaler is None:
        return None
    return {name: getattr(scaler, name) for name in LOSS_SCALER_FIELDS}


def loss_scale_for_step(trainer):
    """The factor the loss is multiplied by before this step's backward pass (1.0 without a
    scaler); the trainer is told to divide the gradients by it, as ``amp.scale_loss`` does."""
    scaler = getattr(trainer, "_amp_loss_scaler", None)
    if scaler is None:
        return 1.0
    # amp.scale_loss's bookkeeping, without its context manager around the recorded loss.
    trainer._scale = trainer._amp_original_scale / scaler.loss_scale
    return scaler.loss_scale
