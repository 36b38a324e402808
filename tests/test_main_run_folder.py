"""One run per folder: overwrite sets the old run aside, a resume refuses to change what is trained,
a broken checkpoint is passed over by name, a full or read-only disk is one line and loses nothing,
bad images are found before anything is written, and a finished run exports without training."""
import glob
import json
import os
import shutil

import pytest
from test_main_resume import assert_same_run, resume_argv, run, train_argv


@pytest.fixture(scope="module")
def finished(demo_dir, tmp_path_factory):
    """A finished 4-epoch run (the reference for runs that were disturbed)."""
    save_dir = str(tmp_path_factory.mktemp("finished") / "run")
    proc = run(train_argv(demo_dir, save_dir, "--eval_epoch_term=1", "--keep_checkpoints=3"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return save_dir


def tree(folder):
    """{relative path: (size, mtime)} of every file under ``folder``."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder)] = (os.path.getsize(path), os.path.getmtime(path))
    return found


def one_error_line(proc):
    # libpng reports a broken PNG on stderr itself, from C, before OpenCV returns; that is not ours.
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("libpng")]
    assert proc.returncode == 2, "bad input or disk exits with 2: %d %s" % (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), "one line, no traceback: %r" % proc.stderr
    return lines[0]


def copy_run(source, tmp_path):
    target = str(tmp_path / "run")
    shutil.copytree(source, target)
    return target


def test_overwrite_sets_the_old_run_aside(demo_dir, tmp_path):
    save_dir = str(tmp_path / "run")
    assert run(train_argv(demo_dir, save_dir, "--epochs=1")).returncode == 0
    old = tree(save_dir)
    proc = run(train_argv(demo_dir, save_dir, "--epochs=1", "--seed=5", "--overwrite=True"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    aside = glob.glob(os.path.join(save_dir, "previous-*"))
    assert len(aside) == 1, "one timestamped folder holds the old run: %r" % os.listdir(save_dir)
    assert sorted(tree(aside[0])) == sorted(old), "every file of the old run is kept, nothing else"
    assert json.load(open(os.path.join(save_dir, "args.json")))["seed"] == 5, "the new run's flags"
    # A resume continues the new run, never the old one's checkpoints.
    proc = run(resume_argv(save_dir, "--epochs=2"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "previous-" not in open(os.path.join(save_dir, "train.log")).read().split("resuming from")[-1] \
        .splitlines()[0], "resumed from the new run's checkpoint"
    assert json.load(open(os.path.join(save_dir, "results.json")))["epoch"] == 2


@pytest.mark.parametrize("flag, saved", [
    ("--loss=triplet", "loss=hphn-triplet"), ("--optim=sgd", "optim=adam"), ("--wd=0.01", "wd=0.0005"),
    ("--seed=3", "seed=0"), ("--batch_size=16", "batch_size=8"), ("--backbone=googlenet", "backbone=resnet18_v1"),
])
def test_resume_refuses_a_flag_that_changes_training(finished, tmp_path, flag, saved):
    save_dir = copy_run(finished, tmp_path)
    before = tree(save_dir)
    line = one_error_line(run(resume_argv(save_dir, flag, "--epochs=5")))
    assert flag in line and saved in line, "names the flag, the given and the saved value: %s" % line
    assert tree(save_dir) == before, "nothing written by a refused resume"


def test_resume_of_a_folder_without_a_run(tmp_path):
    line = one_error_line(run(resume_argv(str(tmp_path / "nothing"))))
    assert "args.json" in line and "without --resume" in line, line
    assert not (tmp_path / "nothing").exists()


def _newest_checkpoint(save_dir):
    return sorted(glob.glob(os.path.join(save_dir, "checkpoint-*.json")))[-1]


@pytest.mark.parametrize("damage", ["truncate_params", "garbage_json", "flip_states"])
def test_resume_passes_over_a_broken_newest_checkpoint_by_name(finished, tmp_path, damage):
    save_dir = copy_run(finished, tmp_path)
    newest = _newest_checkpoint(save_dir)
    stem = newest[: -len(".json")]
    if damage == "truncate_params":
        with open(stem + ".params", "r+b") as handle:
            handle.truncate(1000)
        reason = "truncated"
    elif damage == "garbage_json":
        with open(newest, "w") as handle:
            handle.write('{"epoch": 4, "glob')
        reason = "JSON is unreadable"
    else:
        with open(stem + ".states", "r+b") as handle:
            handle.seek(100)
            byte = handle.read(1)
            handle.seek(100)
            handle.write(bytes([byte[0] ^ 0xFF]))
        reason = "checksum"
    proc = run(resume_argv(save_dir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = open(os.path.join(save_dir, "train.log")).read()
    skipped = [line for line in log.splitlines() if "skipped checkpoint" in line]
    assert len(skipped) == 1 and os.path.basename(newest) in skipped[0] and reason in skipped[0], skipped
    assert "resuming from" in log and "e000003" in log.split("resuming from")[-1].splitlines()[0], \
        "the next older intact checkpoint is taken"
    assert glob.glob(os.path.join(save_dir, "set-aside-*", os.path.basename(stem) + ".*")), \
        "the broken checkpoint is moved aside, not deleted"
    assert_same_run(save_dir, finished)


def test_disk_full_mid_run_loses_nothing_and_resumes(demo_dir, finished, tmp_path):
    save_dir = str(tmp_path / "run")
    argv = train_argv(demo_dir, save_dir, "--eval_epoch_term=1", "--keep_checkpoints=3")
    proc = run(argv, fault="ENOSPC@write=checkpoint-e000002")
    line = one_error_line(proc)
    assert "checkpoint-e000002" in line and "disk is full" in line and "--resume=auto" in line, line
    assert not glob.glob(os.path.join(save_dir, "*.tmp")), "no partial file is left"
    from utils.run import checkpoint

    for path, _ in checkpoint.list_checkpoints(save_dir):
        assert checkpoint.verify(path)[0] is not None, "earlier checkpoint %s damaged" % path
    proc = run(resume_argv(save_dir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_same_run(save_dir, finished)


@pytest.mark.parametrize("fault, cause", [("EACCES@write=args.json", "permission denied"),
                                          ("ENOSPC@write=args.json", "disk is full")])
def test_unwritable_save_dir_at_start(demo_dir, tmp_path, fault, cause):
    save_dir = str(tmp_path / "run")
    line = one_error_line(run(train_argv(demo_dir, save_dir), fault=fault))
    assert "args.json" in line and cause in line, line
    assert not os.path.exists(save_dir) or os.listdir(save_dir) == [], \
        "nothing partial is left: %r" % os.listdir(save_dir)


def test_bad_image_found_before_anything_is_written(demo_dir, tmp_path):
    broken = str(tmp_path / "data")
    shutil.copytree(demo_dir, broken)
    bad = sorted(glob.glob(os.path.join(broken, "images", "*", "*.jpg")))[-1]  # a test image
    with open(bad, "w") as handle:
        handle.write("not an image")
    save_dir = str(tmp_path / "run")
    line = one_error_line(run(train_argv(broken, save_dir)))
    assert bad in line and "--skip_bad_images" in line, line
    assert not os.path.exists(save_dir), "nothing is written before the inputs are checked"


def test_image_failing_mid_run_stops_with_the_resume_command(demo_dir, finished, tmp_path):
    import cv2
    import numpy as np

    broken = str(tmp_path / "data")
    shutil.copytree(demo_dir, broken)
    # A PNG whose header reads (the start-up check passes) and whose pixel data is cut off.
    bad = os.path.join(broken, "images", "001", "0001.jpg")
    original = open(bad, "rb").read()
    ok, png = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    with open(bad, "wb") as handle:
        handle.write(png.tobytes()[: len(png) // 2])
    save_dir = str(tmp_path / "run")
    line = one_error_line(run(train_argv(broken, save_dir, "--eval_epoch_term=1", "--keep_checkpoints=3")))
    assert bad in line and "--resume=auto" in line and save_dir in line, line
    with open(bad, "wb") as handle:
        handle.write(original)
    proc = run(resume_argv(save_dir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The data directory differs from the reference run's, so compare what does not name it.
    for name in ("model_last.params", "results.json", "summary.csv"):
        assert open(os.path.join(save_dir, name), "rb").read() == \
            open(os.path.join(finished, name), "rb").read(), "%s differs" % name


def test_finished_run_exports_without_training(finished, tmp_path):
    save_dir = copy_run(finished, tmp_path)
    before = open(os.path.join(save_dir, "summary.csv")).read()
    proc = run(resume_argv(save_dir, "--export=True"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert glob.glob(os.path.join(save_dir, "export", "model-symbol.json")), os.listdir(save_dir)
    assert os.path.isfile(os.path.join(save_dir, "export", "model.onnx")), os.listdir(os.path.join(save_dir, "export"))
    assert open(os.path.join(save_dir, "summary.csv")).read() == before, "no epoch was trained"
    assert json.load(open(os.path.join(save_dir, "args.json")))["history"][-1]["changed"] == \
        {"export": [False, True]}


def test_only_best_and_last_parameters_are_kept(finished):
    names = os.listdir(finished)
    assert "model_best.params" in names and "model_last.params" in names
    assert not [n for n in names if n.startswith("model_epoch_")], names
    assert len(glob.glob(os.path.join(finished, "checkpoint-*.json"))) == 3, "--keep_checkpoints=3"


@pytest.fixture
def small_disk(tmp_path):
    """A 200 MB tmpfs (root can mount one; skipped where mounting is not allowed), unmounted after."""
    import subprocess

    mount_point = str(tmp_path / "disk")
    os.makedirs(mount_point)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", mount_point],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", mount_point], capture_output=True)


def test_a_really_full_disk_mid_run(demo_dir, finished, small_disk):
    """No injection: the second checkpoint (ResNet-18: 45 MB of parameters, 90 MB of Adam states)
    does not fit beside the first on a 200 MB file system."""
    import subprocess

    save_dir = os.path.join(small_disk, "run")
    line = one_error_line(run(train_argv(demo_dir, save_dir, "--eval_epoch_term=1", "--keep_checkpoints=1")))
    assert "disk is full" in line and save_dir in line and "--resume=auto" in line, line
    assert not glob.glob(os.path.join(save_dir, "*.tmp")), "no partial file is left"
    from utils.run import checkpoint

    listed = checkpoint.list_checkpoints(save_dir)
    assert listed and all(checkpoint.verify(path)[0] is not None for path, _ in listed), \
        "the checkpoints written before the disk filled are intact"
    assert subprocess.run(["mount", "-o", "remount,size=600m", small_disk]).returncode == 0
    proc = run(resume_argv(save_dir))
    assert proc.returncode == 0, "once there is space, the run resumes: %s" % proc.stderr[-2000:]
    assert_same_run(save_dir, finished)
