"""Faults: a non-finite loss stops the run (keeping the last good checkpoint) or skips the batch;
so do test embeddings that are all non-finite, which are never kept as the best; an image that
cannot be decoded is named."""
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


def _run(data_dir, save_dir, *extra, fault=None, **env):
    argv = [sys.executable, "main.py", "--data_name=demo", "--data_dir=" + data_dir, "--gpu_idx=-1",
            "--pretrained=none", "--image_size=32", "--embed_dim=8", "--batch_size=8",
            "--num_instances=4", "--num_workers=0", "--eval_epoch_term=1", "--progress=False",
            "--save_dir=" + save_dir] + list(extra)
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          env=subprocess_env(EE_GLUON_FAULT=fault or None, **env))


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
    best = results["best"]
    assert best is None or best["non_finite"] < 24, \
        "a network whose 24 test embeddings are all non-finite is never the best: %r" % best
    assert os.path.exists(os.path.join(save_dir, "model_best.params")) == (best is not None), \
        "model_best.params exists exactly when an evaluation could be the best"


def _advised_command(line):
    """The resume command the message spells, with a learning rate for its placeholder LR."""
    import shlex

    spelled = line.split("python3 main.py ", 1)[1].split(" (")[0]
    return [arg.replace("=LR", "=1e-5") for arg in shlex.split(spelled)]


def test_all_non_finite_test_embeddings_stop_the_run_and_keep_the_good_state(demo_dir, tmp_path):
    save_dir = str(tmp_path / "run")
    # 2 iterations per epoch. The step schedule gives 1e20 from iteration 3 on, the last update of
    # epoch 2: its loss is finite, and the parameters it leaves give NaN embeddings.
    proc = _run(demo_dir, save_dir, "--epochs=3", "--lr_schedule=step", "--lr_fix_after_iters=3",
                "--lr_fixed=1e20")
    assert proc.returncode == 1, "diverged training is a failure (exit 1): %s" % proc.stderr[-2000:]
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, "one line: %r" % proc.stderr
    line = lines[0]
    assert "after epoch 2" in line and "24 of 24" in line and "--lr_fixed" in line, \
        "names the epoch, the count and the flag to lower: %s" % line
    metas = [json.load(open(p)) for p in glob.glob(os.path.join(save_dir, "checkpoint*.json"))]
    assert max(m["global_step"] for m in metas) == 2, \
        "no checkpoint of the diverged network; the last is that of epoch 1: %r" % [m["global_step"] for m in metas]
    results = json.load(open(os.path.join(save_dir, "results.json")))
    assert results["epoch"] == 1 and results["best"]["epoch"] == 1 and results["last"]["epoch"] == 1, results
    stem = os.path.join(save_dir, "checkpoint-e000001-s000000002")
    good = open(stem + ".params", "rb").read()
    for name in ("model_best.params", "model_last.params"):
        assert open(os.path.join(save_dir, name), "rb").read() == good, "%s is epoch 1's network" % name
    rows = open(os.path.join(save_dir, "summary.csv")).read().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["1"], "no summary.csv row of the diverged epoch: %r" % rows
    proc = subprocess.run([sys.executable, "main.py"] + _advised_command(line), cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, "the advised resume with a lower rate finishes: %s" % proc.stderr[-2000:]
    results = json.load(open(os.path.join(save_dir, "results.json")))
    assert results["epoch"] == 3 and results["last"]["non_finite"] == 0, results
    changed = json.load(open(os.path.join(save_dir, "args.json")))["history"][-1]["changed"]
    assert changed == {"lr_fixed": [1e20, 1e-5]}, "args.json records the lowered rate: %r" % changed


@pytest.mark.parametrize("kernels", ["default", "AVX2"])
def test_the_reported_huge_lr_keeps_no_collapsed_network(demo_dir, tmp_path, kernels):
    save_dir = str(tmp_path / "run")
    # --lr=1e9 from the start, loss finite: with oneDNN's AVX-512 kernels the test embeddings of
    # epoch 1 are all NaN, with its AVX2 kernels (those of a CPU without AVX-512) the ReLUs die and
    # every test image maps to one point. Either way the network is not kept.
    isa = {} if kernels == "default" else {"DNNL_MAX_CPU_ISA": kernels}
    proc = _run(demo_dir, save_dir, "--epochs=2", "--lr=1e9", **isa)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 1 and len(lines) == 1, "exit 1, one line: %d %r" % (proc.returncode, proc.stderr)
    assert "after epoch 1" in lines[0] and "24 of 24" in lines[0] and "--lr=LR" in lines[0], lines[0]
    assert "all non-finite" in lines[0] or "all one point" in lines[0], lines[0]
    assert not os.path.exists(os.path.join(save_dir, "model_best.params")), \
        "the collapsed network is not kept as the best (there was no good epoch yet)"
    assert not os.path.exists(os.path.join(save_dir, "model_last.params")), "nor as the last"


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
