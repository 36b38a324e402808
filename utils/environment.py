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
            "error: numpy %s is installed, but MXNet 1.9.1 needs numpy < 1.24 (it uses np.bool, "
            "removed in 1.24); run: pip install numpy==1.23.5\n" % numpy.__version__
        )
        raise SystemExit(2)
