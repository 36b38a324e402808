"""tools.preflight: the checks before a long run, and exit codes that say ready (0) or not (1)
for the device asked for (--device gpu, the default, or cpu)."""
import os
import subprocess
import sys

import pytest

import utils.devices
import utils.host
from tools import preflight

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def no_gpu(monkeypatch):
    """A machine whose MXNet sees no GPU, for a stated reason."""
    monkeypatch.setattr(utils.devices, "visible_gpus", lambda: 0)
    monkeypatch.setattr(utils.devices, "no_gpu_cause", lambda: "the installed MXNet is a CPU build")


def _run(capsys, *argv):
    code = preflight.main(list(argv))
    return code, capsys.readouterr().out.splitlines()


def test_no_gpu_fails_the_gpu_check(no_gpu, capsys):
    code, lines = _run(capsys, "--num_workers", "0")
    assert code == 1, "training on GPUs cannot start without one: exit %s, %s" % (code, lines)
    assert "FAIL no GPU: the installed MXNet is a CPU build; or check for training on the CPU: --device cpu" \
        in lines, lines
    assert lines[-1] == "not ready to train on the GPU: no GPU (exit 1)", lines


def test_no_gpu_is_ready_for_the_cpu(no_gpu, capsys):
    code, lines = _run(capsys, "--device", "cpu", "--num_workers", "0")
    assert code == 0, "a CPU-only machine is ready for --device cpu: exit %s, %s" % (code, lines)
    assert "no GPU (not needed for --device cpu): the installed MXNet is a CPU build" in lines, lines
    assert not [line for line in lines if line.startswith("FAIL")], lines
    assert lines[-1] == "ready to train on the CPU", lines


def test_too_little_shared_memory_fails_either_device(no_gpu, capsys, monkeypatch):
    def too_little(*args):
        raise ValueError("the data loaders need about 378 MB of shared memory but /dev/shm has 64 MB free")

    monkeypatch.setattr(utils.host, "check_shared_memory", too_little)
    code, lines = _run(capsys, "--device", "cpu")
    assert code == 1 and lines[-1] == "not ready to train on the CPU: shared memory (exit 1)", lines
    assert any(line.startswith("FAIL shared memory: the data loaders need about 378 MB") for line in lines), lines


def test_the_exit_codes_are_in_the_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        preflight.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exit_.value.code == 0, "help exits 0"
    for part in ("exit codes: 0 ready for --device", "1 a check that matters for --device failed",
                 "2 a bad flag", "--device {gpu,cpu}"):
        assert part in out, "--help says %r: %s" % (part, out)
    assert "- 0: ready" in preflight.__doc__ and "- 1: not ready" in preflight.__doc__, "the docstring too"


def test_preflight_for_the_cpu_on_this_machine():
    proc = subprocess.run([sys.executable, "-m", "tools.preflight", "--device", "cpu", "--num_workers", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, "ready for the CPU here: exit %d, %s %s" % (proc.returncode, lines, proc.stderr)
    assert lines[0].startswith("mxnet 1.9.1: "), lines
    assert lines[-1] == "ready to train on the CPU", lines
