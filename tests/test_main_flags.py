"""main.py's flags as a user meets them: every error is one line naming the fix (exit 2, nothing
written), no prefix matching, ranges, the backbone's smallest image, and loader workers capped at
the cores."""
import json
import os
import subprocess
import sys

import mxnet as mx
import pytest

import model
from conftest import SUBPROCESS_TIMEOUT, subprocess_env
from data.demo import generate_demo
from utils.host import usable_cores, workers_for_cores

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return str(generate_demo(str(tmp_path_factory.mktemp("demo") / "d"), classes=4, per_class=4, size=32, seed=5))


def main_py(demo_dir, save_dir, *flags):
    return subprocess.run(
        [sys.executable, "main.py", "--data_name=demo", "--data_dir=" + demo_dir, "--save_dir=" + save_dir,
         "--gpu_idx=-1", "--pretrained=none", "--batch_size=8", "--num_instances=4", "--image_size=32",
         "--num_workers=0", "--progress=False"] + list(flags),
        cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, env=subprocess_env())


@pytest.mark.parametrize("flags, fragment", [
    (["--epoch=2"], "unrecognized arguments: --epoch=2"),           # no silent --epochs
    (["--epochs=abc"], "argument --epochs: invalid int value: 'abc'"),
    (["--export=yes"], "argument --export: expected True or False"),
    (["--lr=-0.001"], "--lr must be a positive number, got -0.001"),
    (["--margin=-0.1"], "--margin must be 0 or more"),
    (["--momentum=1.5"], "--momentum must be in [0, 1)"),
    (["--lr_decay_factor=0"], "--lr_decay_factor must be in (0, 1]"),
    (["--backbone=googlenet", "--image_size=8"], "--image_size 8 is too small for googlenet"),
    (["--prefetch=0"], "--prefetch must be 1 or more"),
    (["--batch_size=4"], "--batch_size 4 with --num_instances 4 puts 1 class in a batch"),
    (["--loss=symm_npair", "--n_inner_pts=0", "--num_instances=2", "--batch_size=2"],
     "--batch_size 2 with --num_instances 2 puts 1 class in a batch, and --loss=symm_npair needs"),
    (["--save_dir="], "argument --save_dir: an empty path names no file or folder"),
    (["--data_dir="], "argument --data_dir: an empty path"),
    (["--pretrained="], "argument --pretrained: an empty path"),
    (["--resume="], "argument --resume: an empty path"),
])
def test_a_bad_flag_is_one_line(demo_dir, tmp_path, flags, fragment):
    save_dir = str(tmp_path / "run")
    proc = main_py(demo_dir, save_dir, *flags)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "usage:" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not os.path.exists(save_dir), "nothing written for a bad flag"


def test_argparse_errors_point_at_help(demo_dir, tmp_path):
    proc = main_py(demo_dir, str(tmp_path / "run"), "--no_such_flag=1")
    assert proc.stderr.strip().endswith("(see main.py --help)"), proc.stderr


@pytest.mark.parametrize("name", sorted(model.BACKBONES))
def test_the_smallest_image_of_each_backbone(name):
    low = model.MIN_IMAGE_SIZE[name]
    net = model.build_network(name, 8)
    model.initialize_network(net, [mx.cpu()], pretrained="none")
    assert net(mx.nd.zeros((1, low, low, 3), dtype="uint8")).shape == (1, 8), "%s runs at %d px" % (name, low)
    model.check_image_size(name, low)
    if low > 1:
        with pytest.raises(mx.base.MXNetError):
            net(mx.nd.zeros((1, low - 1, low - 1, 3), dtype="uint8")).wait_to_read()
        with pytest.raises(ValueError, match="pass --image_size=%d or more" % low):
            model.check_image_size(name, low - 1)


def test_workers_capped_at_the_cores(demo_dir, tmp_path):
    assert workers_for_cores(3, cores=4) == (3, None)
    workers, notice = workers_for_cores(1000, cores=2)
    assert workers == 2 and "--num_workers=1000 is more than the 2 CPU core(s)" in notice, notice
    save_dir = str(tmp_path / "run")
    proc = main_py(demo_dir, save_dir, "--num_workers=1000", "--epochs=1", "--eval_at_start=False",
                   "--eval_epoch_term=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    cores = usable_cores()
    assert "using %d loader workers" % cores in proc.stdout + proc.stderr, proc.stdout[-2000:]
    assert json.load(open(os.path.join(save_dir, "args.json")))["num_workers"] == cores, "args.json has what ran"


@pytest.fixture
def folder_with_trained_test_class(tmp_path):
    """A folder dataset whose test split holds the training class 'cat' beside the unseen 'owl'."""
    import cv2
    import numpy as np

    root = tmp_path / "folder"
    for split, classes in (("train", ("cat", "dog")), ("test", ("cat", "owl"))):
        for index, name in enumerate(classes):
            os.makedirs(str(root / split / name))
            for n in range(4):
                image = np.full((32, 32, 3), 40 * index + 10 * n, np.uint8)
                assert cv2.imwrite(str(root / split / name / ("%d.jpg" % n)), image), "image written"
    return str(root)


def test_test_classes_that_are_training_classes_are_refused(folder_with_trained_test_class, tmp_path):
    save_dir = str(tmp_path / "run")
    proc = main_py(folder_with_trained_test_class, save_dir, "--data_name=folder",
                   "--data_dir=" + folder_with_trained_test_class)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    for part in ("1 of the 2 test classes", "(class folder name(s) cat)", "--seen_classes=True"):
        assert part in lines[0], "the error names %r: %s" % (part, lines[0])
    assert not os.path.exists(save_dir), "nothing written before the inputs are checked"


def test_the_seen_class_protocol_is_named_in_the_log_and_results(folder_with_trained_test_class, tmp_path):
    save_dir = str(tmp_path / "run")
    proc = main_py(folder_with_trained_test_class, save_dir, "--data_name=folder",
                   "--data_dir=" + folder_with_trained_test_class, "--seen_classes=True", "--epochs=1",
                   "--eval_epoch_term=1", "--eval_at_start=False")
    assert proc.returncode == 0, proc.stderr[-3000:]
    warned = [line for line in (proc.stdout + proc.stderr).splitlines() if "also training classes" in line]
    assert len(warned) == 1 and "cat" in warned[0] and "seen-class" in warned[0], proc.stderr[-3000:]
    results = json.load(open(os.path.join(save_dir, "results.json")))
    assert results["seen_test_classes"] == ["cat"], "results.json names the seen classes: %r" % results
    assert "also training classes" in open(os.path.join(save_dir, "train.log")).read(), "train.log has it"


@pytest.mark.parametrize("flags, fragment", [
    # MXNet 1.9.1 makes a plain local kvstore of any name it does not know (horovod and byteps too).
    (["--kvstore=bogus"], "unknown kvstore 'bogus'; choose from local, device, nccl, dist_sync, "
                          "dist_device_sync, dist_sync_device"),
    (["--kvstore=horovod"], "MXNet 1.9.1 has no horovod kvstore"),
    (["--kvstore=byteps"], "MXNet 1.9.1 has no byteps kvstore"),
    (["--kvstore=dist_async"], "asynchronous updates"),
    (["--kvstore=nccl"], "--kvstore=nccl needs an MXNet built with NCCL"),  # this CPU wheel is not
    (["--kvstore=dist_sync"], "--kvstore=dist_sync needs a parameter-server launcher"),
])
def test_a_kvstore_mxnet_does_not_train_with_here_is_refused(demo_dir, tmp_path, monkeypatch, flags, fragment):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name in ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_WORKER", "DMLC_NUM_SERVER"):
        monkeypatch.delenv(name, raising=False)  # main.py started by hand, not by a launcher
    save_dir = str(tmp_path / "run")
    proc = main_py(demo_dir, save_dir, "--epochs=1", "--eval_at_start=False", "--eval_epoch_term=1", *flags)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not os.path.exists(save_dir), "nothing written for a refused kvstore"
