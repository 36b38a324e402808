"""Resume: a run killed mid-epoch continues from its last checkpoint and ends as an uninterrupted one."""
import glob
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from data.demo import generate_demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return str(generate_demo(str(tmp_path_factory.mktemp("demo") / "d"), classes=16, per_class=6,
                             size=40, seed=1))


def _argv(data_dir, save_dir, *extra):
    # 8 train classes x 4 instances = 32 images = 4 iterations of 8 per epoch.
    return [sys.executable, "main.py", "--data_name=demo", "--data_dir=" + data_dir, "--gpu_idx=-1",
            "--pretrained=none", "--image_size=32", "--embed_dim=16", "--batch_size=8",
            "--num_instances=4", "--num_workers=0", "--epochs=4", "--eval_epoch_term=1",
            "--summary_step=1", "--lr_decay_epochs=2,3", "--lr=0.001", "--progress=False",
            "--keep_checkpoints=2", "--save_dir=" + save_dir] + list(extra)


def _run(argv, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def _scalars(save_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(os.path.join(save_dir, "tensorboard_log"))
    acc.Reload()
    return [(e.step, round(e.value, 9)) for e in acc.Scalars(tag)]


def _checkpoint_files_readable(save_dir):
    files = glob.glob(os.path.join(save_dir, "checkpoint*"))
    assert files, "no checkpoint written in %s" % save_dir
    for path in files:
        if path.endswith(".json"):
            json.load(open(path))
        elif path.endswith(".params"):
            assert mx.nd.load(path), "%s holds no arrays" % path
        elif path.endswith(".states"):
            assert os.path.getsize(path) > 0, "%s is empty" % path
        else:
            raise AssertionError("unexpected checkpoint file %s" % path)


def test_killed_mid_epoch_resumes_like_an_uninterrupted_run(demo_dir, tmp_path):
    straight = str(tmp_path / "straight")
    proc = _run(_argv(demo_dir, straight))
    assert proc.returncode == 0, "uninterrupted run failed: %s" % proc.stderr[-2000:]

    killed = str(tmp_path / "killed")
    # Step 7 is the 3rd of 4 iterations of epoch 2: after the epoch-1 checkpoint, mid-epoch.
    proc = _run(_argv(demo_dir, killed), {"EE_GLUON_KILL_AT_STEP": "7"})
    assert proc.returncode == -9, "the run should die by SIGKILL, got %d: %s" % (proc.returncode,
                                                                              proc.stderr[-2000:])
    _checkpoint_files_readable(killed)
    results = json.load(open(os.path.join(killed, "results.json")))
    assert results["epoch"] == 1, "only epoch 1 was complete and checkpointed: %r" % results

    proc = _run(_argv(demo_dir, killed, "--resume=auto"))
    assert proc.returncode == 0, "resume failed: %s" % proc.stderr[-2000:]
    _checkpoint_files_readable(killed)

    want = json.load(open(os.path.join(straight, "results.json")))
    got = json.load(open(os.path.join(killed, "results.json")))
    assert got["epoch"] == want["epoch"] == 4, "same epoch count: %r vs %r" % (got, want)
    assert got["last"]["epoch"] == 4 and got["best"] is not None, "final metrics recorded: %r" % got
    # Same schedule at the same steps, each step logged once: no gap and no restart at step 0.
    assert _scalars(killed, "lr") == _scalars(straight, "lr"), "lr schedule differs after resume"
    loss_steps = [step for step, _ in _scalars(killed, "loss")]
    assert loss_steps == list(range(1, 17)), "loss steps must run 1..16 once each: %r" % loss_steps
    assert [s for s, _ in _scalars(killed, "loss_epoch")] == [1, 2, 3, 4], "loss_epoch per epoch"
    # The sampler, augmentation and optimiser state are restored, so training is the same.
    straight_params = mx.nd.load(os.path.join(straight, "model_last.params"))
    resumed_params = mx.nd.load(os.path.join(killed, "model_last.params"))
    for name in straight_params:
        assert np.allclose(straight_params[name].asnumpy(), resumed_params[name].asnumpy(),
                           rtol=1e-4, atol=1e-5), "parameter %s differs after resume" % name
    assert len(glob.glob(os.path.join(killed, "checkpoint*.json"))) <= 3, \
        "keep_checkpoints=2 plus the best one at most"


def test_save_dir_with_a_run_is_refused(demo_dir, tmp_path):
    save_dir = str(tmp_path / "run")
    assert _run(_argv(demo_dir, save_dir, "--epochs=1")).returncode == 0
    before = sorted(os.listdir(save_dir))
    stamp = os.path.getmtime(os.path.join(save_dir, "results.json"))
    proc = _run(_argv(demo_dir, save_dir, "--epochs=1"))
    assert proc.returncode == 2 and "already holds a run" in proc.stderr, proc.stderr
    assert "--resume" in proc.stderr and "--overwrite" in proc.stderr, "the fix must be named"
    assert sorted(os.listdir(save_dir)) == before, "nothing may be added to the refused save_dir"
    assert os.path.getmtime(os.path.join(save_dir, "results.json")) == stamp, "nothing overwritten"


def test_sigterm_writes_a_checkpoint(demo_dir, tmp_path):
    import signal
    import time

    save_dir = str(tmp_path / "term")
    argv = _argv(demo_dir, save_dir, "--epochs=500", "--eval_epoch_term=1000")
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not os.path.exists(os.path.join(save_dir, "summary.csv")):
            time.sleep(0.2)
        assert os.path.exists(os.path.join(save_dir, "summary.csv")), "training never got going"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "SIGTERM ends the run like Ctrl-C: %d %s" % (proc.returncode, err)
    assert "resume with --resume=auto" in err, err
    _checkpoint_files_readable(save_dir)
    meta = json.load(open(sorted(glob.glob(os.path.join(save_dir, "checkpoint*.json")))[-1]))
    assert meta["global_step"] >= 4, "the checkpoint records the progress made: %r" % meta
