"""Which devices to run on, from the ``--gpu_idx`` flag."""
import mxnet as mx


def parse_gpu_idx(value):
    """``None``/'' → None (auto), '-1' → [] (CPU), '0,1' → [0, 1]."""
    if value is None or str(value).strip() in ("", "None", "none", "auto"):
        return None
    parts = [part.strip() for part in str(value).split(",") if part.strip()]
    try:
        indices = [int(part) for part in parts]
    except ValueError:
        raise ValueError(
            "--gpu_idx must be -1 (CPU), a GPU index or a comma-separated list such as 0,1; got %r"
            % value
        ) from None
    if indices == [-1]:
        return []
    if any(index < 0 for index in indices) or len(set(indices)) != len(indices):
        raise ValueError(
            "--gpu_idx must list distinct non-negative GPU indices (or be -1 for CPU); got %r" % value
        )
    return indices


def resolve_contexts(gpu_idx, num_gpus=None):
    """The list of contexts to train on.

    Parameters
    ----------
    gpu_idx : str or None
        The ``--gpu_idx`` flag: nothing → GPU 0 when one is visible, else the CPU.
    num_gpus : int, optional
        Number of visible GPUs (default: asked of MXNet; a parameter so tests can pretend).
    """
    indices = parse_gpu_idx(gpu_idx)
    if num_gpus is None:
        try:
            num_gpus = mx.context.num_gpus()
        except mx.base.MXNetError:  # a CUDA build on a machine without a driver
            num_gpus = 0
    if indices is None:
        return [mx.gpu(0)] if num_gpus > 0 else [mx.cpu()]
    if not indices:
        return [mx.cpu()]
    missing = [index for index in indices if index >= num_gpus]
    if missing:
        raise ValueError(
            "--gpu_idx asks for GPU %d but %s; pass --gpu_idx=-1 to train on the CPU"
            % (missing[0], "no GPU is visible (CPU build of MXNet or no driver)" if num_gpus == 0
               else "only %d GPU(s) are visible (indices 0-%d)" % (num_gpus, num_gpus - 1))
        )
    return [mx.gpu(index) for index in indices]
