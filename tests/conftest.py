"""Shared test set-up: the repository root on sys.path, a guard for the numpy pin, no network, the
demo dataset the main.py runs of the resume, run-folder and precision tests train on (a test
module that needs another demo defines its own ``demo_dir``), the environment and time bound of
every Python subprocess a test starts, and what the bfloat16 tests need of the CPU.

Subprocesses run with one OpenMP thread (``subprocess_env``) and a bound (``SUBPROCESS_TIMEOUT``)
meant only to end a hung process: the suite must pass on a machine loaded far beyond its cores,
where a run that takes 20 s alone takes ten times as long. The CPU's flags come from
``utils.precision.cpuinfo_path()``, so ``EE_GLUON_CPUINFO`` (inherited by every subprocess) runs the
suite as on another CPU."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402

from utils.environment import check_numpy_version  # noqa: E402

check_numpy_version()

from utils import precision  # noqa: E402

# Seconds before a Python subprocess of a test (a training run above all) is taken for hung.
SUBPROCESS_TIMEOUT = 900


def subprocess_env(**changes):
    """This process's environment (``EE_GLUON_CPUINFO`` included) for a Python subprocess, with
    ``OMP_NUM_THREADS=1``: on a shared, loaded machine more threads per process only compete for
    the same cores. ``changes`` set variables; a value of None removes one."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@pytest.fixture
def one_openmp_thread_environ(monkeypatch):
    """``os.environ`` with ``OMP_NUM_THREADS=1`` for one test, for the processes a launcher starts
    with a copy of it (``tools.launch_loopback``)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def write_cpuinfo(folder, flags, name="cpuinfo"):
    """A file in /proc/cpuinfo's format listing ``flags`` (besides a few that are not BF16's)."""
    path = os.path.join(str(folder), name)
    with open(path, "w") as handle:
        handle.write("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f %s\n\nprocessor\t: 1\n" % " ".join(flags))
    return path


def bf16_unavailable():
    """Why bfloat16 cannot run here (the CPU of :func:`utils.precision.cpuinfo_path` or this
    MXNet), or None when it can."""
    cpuinfo = precision.cpuinfo_path()
    if not precision.cpu_bf16_flags(cpuinfo):
        return "the CPU flags in %s list neither %s" % (cpuinfo, " nor ".join(precision.CPU_BF16_FLAGS))
    if not precision.mxnet_has_onednn():
        return "this MXNet is built without oneDNN"
    return None


BF16_UNAVAILABLE = bf16_unavailable()
# Every test that computes in bfloat16 carries it; the refusals are tested with a written cpuinfo.
needs_bf16 = pytest.mark.skipif(BF16_UNAVAILABLE is not None,
                                reason="bfloat16 cannot run here: %s" % BF16_UNAVAILABLE)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """No test downloads: every download attempt fails as offline and is recorded (the list)."""
    from data import preparation as prepare

    calls = []

    def offline(url, destination, timeout=None):
        calls.append(url)
        raise prepare.DownloadError("{}: <urlopen error [Errno -3] offline>".format(url))

    monkeypatch.setattr(prepare, "download_file", offline)
    return calls


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A generated demo dataset (16 classes of 6 images, 40 px), one per test module."""
    from data.demo import generate_demo

    return str(generate_demo(str(tmp_path_factory.mktemp("demo") / "d"), classes=16, per_class=6,
                             size=40, seed=1))
