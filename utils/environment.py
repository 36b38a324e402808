"""Checks of the Python environment that must run before MXNet is imported."""
import sys


def check_numpy_version():
    """Exit with one line if NumPy is too new for MXNet 1.9.1.

    MXNet 1.9.1 uses ``np.bool``, removed in NumPy 1.24, so ``import mxnet`` fails there with an
    AttributeError that does not say why.
    """
    import numpy

    major, minor = (int(part) for part in numpy.__version__.split(".")[:2])
    if (major, minor) >= (1, 24):
        sys.stderr.write(
            "error: numpy %s is installed in %s, but MXNet 1.9.1 needs numpy < 1.24 (it uses np.bool, "
            "removed in 1.24); use the project's environment: make venv, then .venv/bin/python (or "
            "source .venv/bin/activate); or, in an environment of your own, pip install numpy==1.23.5\n"
            % (numpy.__version__, sys.prefix)
        )
        raise SystemExit(2)


# What libmxnet.so of mxnet-cu112 loads from the host (read from the wheel's dynamic section).
GPU_HOST_LIBRARIES = ("the CUDA 11 runtime, cuBLAS, cuFFT, cuSOLVER, cuRAND, NVRTC, NVTX, cuDNN 8 and NCCL 2")


def check_mxnet_loads():
    """Exit with one line if ``import mxnet`` fails for want of a shared library.

    The GPU wheel links to the host's CUDA libraries; without one of them the import dies with an
    ``OSError`` naming the file and nothing else.
    """
    try:
        import mxnet  # noqa: F401
    except OSError as error:
        sys.stderr.write(
            "error: MXNet cannot be loaded: %s; the GPU build (mxnet-cu112) needs %s on the host "
            "(README, Install on a GPU machine), or install the CPU build: pip install -r "
            "requirements-cpu.txt\n" % (str(error).strip().splitlines()[-1], GPU_HOST_LIBRARIES))
        raise SystemExit(2)
