"""Checks and settings of the process environment that must come before MXNet is imported."""
import os
import sys

# The OpenMP variables by which a user chooses how waiting threads behave (GNU libgomp, which
# libmxnet.so links, reads them once, when MXNet is loaded).
OPENMP_WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

# Python's recursion limit while a network is hybridized: GluonCV's deep blocks nest deeper than
# Python's default (1000) when their graph is traced.
RECURSION_LIMIT = 2000


def allow_deep_hybridization():
    """Raise Python's recursion limit to :data:`RECURSION_LIMIT` (never lower it), so that the
    GluonCV backbones can be hybridized."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))


def prefer_passive_openmp(environ=os.environ):
    """Make OpenMP threads sleep when they wait, unless the user chose a wait policy.

    libgomp's own default spins at every barrier before it sleeps. When the cores are busy with
    other work, a spinning thread holds the core that the thread it waits for needs, and every one
    of the thousands of parallel regions of a training step pays for it (bench/bench_load.py measures
    it). ``OMP_WAIT_POLICY=PASSIVE`` sleeps at once. A user who sets
    ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` keeps that choice. Returns whether it set the policy.
    """
    if any(name in environ for name in OPENMP_WAIT_VARIABLES):
        return False
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


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
