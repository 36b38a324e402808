"""Shared memory for the data loaders, checked before training: a real small tmpfs, and main.py
refusing a prefetch that /dev/shm cannot hold (one line, exit 2, nothing written)."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import SUBPROCESS_TIMEOUT, subprocess_env
from data.demo import generate_demo
from utils.host import MB, check_shared_memory, loader_shared_memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_what_the_loaders_hold():
    # The seed command: 10 workers, MXNet's prefetch 2 x 10, batch 128 at 227 px: 396e6 bytes, 378 MiB.
    assert loader_shared_memory(128, 227, 10) == 20 * 128 * (227 * 227 * 3 + 4)
    assert 377 * MB < loader_shared_memory(128, 227, 10) <= 378 * MB
    assert loader_shared_memory(128, 227, 10, prefetch=2) == 2 * 128 * (227 * 227 * 3 + 4)
    assert loader_shared_memory(128, 227, 0, prefetch=50) == 0, "no worker, no shared memory"


@pytest.fixture
def small_shm(tmp_path):
    """A 64 MB tmpfs, Docker's default /dev/shm size."""
    mount = tmp_path / "shm"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % proc.stderr.decode().strip())
    yield str(mount)
    subprocess.run(["umount", str(mount)], check=False)


def test_a_docker_sized_shm_is_refused_for_the_seed_command(small_shm):
    with pytest.raises(ValueError) as error:
        check_shared_memory(128, 227, 10, shm_dir=small_shm)
    message = str(error.value)
    assert "\n" not in message and "about 378 MB" in message and "64 MB free" in message, message
    for fix in ("--shm-size=1g", "--ipc=host", "--prefetch", "--num_workers"):
        assert fix in message, "the fix %s is named: %s" % (fix, message)
    # What fits passes: 2 workers prefetching 2 batches of 32 at 227 px (~20 MB).
    assert check_shared_memory(32, 227, 2, prefetch=2, shm_dir=small_shm) < 64 * MB


def _too_much_prefetch_argv(tmp_path, save_dir):
    """main.py's flags for a demo run whose --prefetch the free space of /dev/shm cannot hold."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm on this machine")
    demo = str(generate_demo(str(tmp_path / "demo"), classes=4, per_class=4, size=32, seed=1))
    per_batch = 8 * (32 * 32 * 3 + 4)
    # More than the whole of /dev/shm holds: its free space changes as other processes use it, and
    # a prefetch just above the free space seen here could fit by the time main.py looks.
    too_many = shutil.disk_usage("/dev/shm").total // per_batch + 10
    return ["--data_name=demo", "--data_dir=" + demo, "--gpu_idx=-1", "--pretrained=none", "--image_size=32",
            "--batch_size=8", "--num_instances=4", "--num_workers=2", "--prefetch=%d" % too_many,
            "--save_dir=" + save_dir]


def test_main_refuses_a_prefetch_that_dev_shm_cannot_hold(tmp_path):
    save_dir = str(tmp_path / "run")
    proc = subprocess.run([sys.executable, "main.py"] + _too_much_prefetch_argv(tmp_path, save_dir), cwd=ROOT,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, env=subprocess_env())
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "shared memory" in lines[0] and "/dev/shm" in lines[0] and "--prefetch" in lines[0], lines[0]
    assert not os.path.exists(save_dir), "nothing is written before the inputs are checked"


def test_main_checks_shared_memory_before_it_builds_the_network(tmp_path, monkeypatch):
    # A check that needs no network comes before the network is built (slow on a loaded machine).
    import main

    class NetworkBuilt(Exception):
        pass

    def build_network(*args, **kwargs):
        raise NetworkBuilt()

    monkeypatch.setattr(main.model, "build_network", build_network)
    args, _, _, wanted = main.parse(_too_much_prefetch_argv(tmp_path, str(tmp_path / "run")))
    try:
        main.build(args, wanted)
    except NetworkBuilt:
        pytest.fail("main.py built the network before the shared-memory check refused --prefetch")
    except ValueError as error:
        assert "shared memory" in str(error), "the refusal is the shared-memory check's: %s" % error
    else:
        pytest.fail("a --prefetch that /dev/shm cannot hold must be refused")


def test_a_gpu_wheel_missing_host_libraries_is_one_line(tmp_path):
    # Stands in for mxnet-cu112 on a host without CUDA: the import dies with the loader's OSError.
    fake = tmp_path / "fake" / "mxnet"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        'raise OSError("libcudart.so.11.0: cannot open shared object file: No such file or directory")\n')
    proc = subprocess.run([sys.executable, "main.py", "--gpu_idx=0"], cwd=ROOT,
                          env=subprocess_env(PYTHONPATH=str(tmp_path / "fake")), capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    for part in ("libcudart.so.11.0", "cuDNN 8", "NCCL 2", "requirements-cpu.txt"):
        assert part in lines[0], "%s is named: %s" % (part, lines[0])


def test_a_too_new_numpy_names_the_project_environment_first(tmp_path):
    fake = tmp_path / "fake" / "numpy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('__version__ = "2.1.3"\n')
    env = subprocess_env(PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), ROOT]))
    proc = subprocess.run([sys.executable, "-c", "from utils.environment import check_numpy_version; "
                           "check_numpy_version()"], env=env, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "numpy 2.1.3" in lines[0] and lines[0].index(".venv/bin/python") < lines[0].index("pip install"), lines[0]
