"""Faults: a non-finite loss stops the run (keeping the last good checkpoint) or skips the batch;
an image that cannot be decoded is named."""
import glob
import json
import os
import subprocess
import sys

import pytest

from conftest import SUBPROCESS_TIMEOUT, subprocess_env
from data.demo import generate_demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return str(generate_demo(str(tmp_path_factory.mktemp("demo") / "d"), classes=8, per_class=6,
                             size=40, seed=3))


def _run(data_dir, save_dir, *extra, fault=None):
    argv = [sys.executable, "main.py", "--data_name=demo", "--data_dir=" + data_dir, "--gpu_idx=-1",
            "--pretrained=none", "--image_size=32", "--embed_dim=8", "--batch_size=8",
            "--num_instances=4", "--num_workers=0", "--eval_epoch_term=1", "--progress=False",
            "--save_dir=" + save_dir] + list(extra)
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          env=subprocess_env(EE_GLUON_FAULT=fault or None))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(demo_dir, tmp_path):
    save_dir = str(tmp_path / "run")
    # 4 train classes x 4 instances = 2 iterations per epoch: step 5 is the first of epoch 3.
    proc = _run(demo_dir, save_dir, "--epochs=3", fault="nan@step=5")
    assert proc.returncode == 1, "a non-finite loss is a failure (exit 1): %s" % proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "loss became nan" in lines[0] and "epoch 3" in lines[0], proc.stderr
    assert "--nan_policy=skip_batch" in lines[0], "the message names the alternative"
    metas = [json.load(open(p)) for p in glob.glob(os.path.join(save_dir, "checkpoint*.json"))]
    assert metas and max(m["global_step"] for m in metas) == 4, \
        "no checkpoint of the broken step may be written; the last good one (epoch 2) stays: %r" % (
            [m["global_step"] for m in metas])
    results = json.load(open(os.path.join(save_dir, "results.json")))
    assert results["epoch"] == 2, "results.json holds the last good epoch: %r" % results
    proc = _run(demo_dir, save_dir, "--resume=auto")
    assert proc.returncode == 0, "the run resumes from the last good checkpoint: %s" % proc.stderr[-2000:]
    assert json.load(open(os.path.join(save_dir, "results.json")))["epoch"] == 3


def test_skip_batch_policy_finishes(demo_dir, tmp_path):
    save_dir = str(tmp_path / "skip")
    proc = _run(demo_dir, save_dir, "--epochs=2", "--lr=1e30", "--nan_policy=skip_batch")
    assert proc.returncode == 0, "skip_batch must let the run finish: %s" % proc.stderr[-2000:]
    assert "update skipped" in proc.stdout, "skipped updates are reported"
    results = json.load(open(os.path.join(save_dir, "results.json")))
    assert results["epoch"] == 2
    # lr 1e30 breaks the parameters: the test embeddings are NaN, left out and counted.
    assert results["initial"]["non_finite"] == 0, "before training every embedding is finite: %r" % results
    broken = results["last"]["non_finite"]
    assert broken > 0, "results.json must count the non-finite test embeddings: %r" % results["last"]
    assert "%d of " % broken in proc.stdout and "are not finite" in proc.stdout, "the log says how many"
    assert results["last"]["R@1"] <= 1.0 - broken / 24.0, "non-finite queries are misses: %r" % results["last"]


def test_undecodable_image_is_named(demo_dir, tmp_path):
    import shutil

    broken = str(tmp_path / "broken")
    shutil.copytree(demo_dir, broken)
    bad = os.path.join(broken, "images", "006", "0003.jpg")
    with open(bad, "w") as handle:
        handle.write("not a jpeg")
    for workers in ("0", "2"):
        proc = _run(broken, str(tmp_path / ("run" + workers)), "--epochs=1", "--num_workers=" + workers)
        assert proc.returncode == 2, "an undecodable image is bad input: %s" % proc.stderr[-2000:]
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and bad in lines[0], "one line naming the image: %r" % proc.stderr


def test_skip_bad_images_lists_and_skips(demo_dir, tmp_path):
    import shutil

    broken = str(tmp_path / "broken")
    shutil.copytree(demo_dir, broken)
    bad = os.path.join(broken, "images", "006", "0003.jpg")
    with open(bad, "w") as handle:
        handle.write("not a jpeg")
    save_dir = str(tmp_path / "run")
    proc = _run(broken, save_dir, "--epochs=1", "--skip_bad_images=True")
    assert proc.returncode == 0, "skipping must let the run finish: %s" % proc.stderr[-2000:]
    listed = open(os.path.join(save_dir, "skipped_images.txt")).read().split()
    assert listed == [bad], "the unreadable image is listed: %r" % listed


def test_class_too_small_for_a_batch_is_refused(demo_dir, tmp_path):
    # 4 train classes of 6 images; a batch of 5 classes x 2 cannot be filled with distinct classes.
    proc = _run(demo_dir, str(tmp_path / "run"), "--epochs=1", "--batch_size=10", "--num_instances=2",
                "--n_inner_pts=0")
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "classes" in lines[0] and "num_instances" in lines[0], lines[0]
