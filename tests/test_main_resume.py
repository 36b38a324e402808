"""A run stopped anywhere (SIGKILL, SIGTERM, Ctrl-C; mid-epoch, during an evaluation, while a
checkpoint is written) and resumed with ``--save_dir=RUN --resume=auto`` alone ends bit-identical
to a run never stopped: parameters (BatchNorm statistics included), results.json, summary.csv, every
TensorBoard tag and every epoch line of train.log, each once. Stopped before its first checkpoint, it
starts again from the beginning and ends the same."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import SUBPROCESS_TIMEOUT, subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_argv(data_dir, save_dir, *extra):
    # 8 train classes x 4 instances = 32 images = 4 iterations of 8 per epoch; ResNet-18 has
    # BatchNorm after every convolution, so its running statistics are checked too.
    return [sys.executable, "main.py", "--data_name=demo", "--data_dir=" + data_dir, "--gpu_idx=-1",
            "--pretrained=none", "--backbone=resnet18_v1", "--image_size=32", "--embed_dim=16",
            "--batch_size=8", "--num_instances=4", "--num_workers=0", "--epochs=4",
            "--eval_epoch_term=2", "--summary_step=3", "--lr_decay_epochs=2,3", "--lr=0.001",
            "--progress=False", "--keep_checkpoints=2", "--save_dir=" + save_dir] + list(extra)


def resume_argv(save_dir, *extra):
    return [sys.executable, "main.py", "--save_dir=" + save_dir, "--resume=auto"] + list(extra)


def run(argv, fault=None, **env):
    """main.py with ``argv``, the fault ``fault`` injected (none: any inherited one removed) and the
    variables ``env`` set."""
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          env=subprocess_env(EE_GLUON_FAULT=fault or None, **env))


def event_scalars(save_dir):
    """{tag: [(step, value), ...]} over every event file of the run, in file order: scalars by
    value, images by their PNG bytes, the text of the run's flags and its hparams by step only
    (their content holds times). EventFileLoader hands every value over as a tensor."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    tags = {}
    for path in sorted(glob.glob(os.path.join(save_dir, "events.out.tfevents.*"))):
        for event in EventFileLoader(path).Load():
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "scalars":
                    tags.setdefault(value.tag, []).append((event.step, value.tensor.float_val[0]))
                elif plugin == "images":
                    tags.setdefault(value.tag, []).append((event.step, value.tensor.string_val[2]))
                elif plugin in ("text", "hparams"):
                    tags.setdefault(value.tag, []).append((event.step, plugin))
                else:
                    raise AssertionError("unexpected value %s (plugin %r) in %s" % (value.tag, plugin, path))
    return tags


RESTART_LINE = "starts again from the beginning"  # the log line of a restarted run (utils.run.folder)


def epoch_lines(save_dir):
    text = open(os.path.join(save_dir, "train.log")).read()
    # A run that started again keeps the lines of its first attempt above that of its restart.
    text = text.split(RESTART_LINE)[-1]
    # "epoch 3/4: loss ..." after training, "epoch 4: R@1 ..." after an evaluation
    return [(int(n), bool(total)) for n, total in re.findall(r"INFO epoch (\d+)(/\d+)?: ", text)]


def assert_same_run(got, want):
    for name in ("model_last.params", "model_best.params", "results.json", "summary.csv"):
        with open(os.path.join(want, name), "rb") as a, open(os.path.join(got, name), "rb") as b:
            assert a.read() == b.read(), "%s differs from the uninterrupted run's" % name
    events = event_scalars(got)
    assert events == event_scalars(want), "TensorBoard events differ (or repeat)"
    assert events["args"] == [(0, "text")] and events["_hparams_/session_start_info"] == [(0, "hparams")], \
        "the run's settings are written once: %r" % {tag: events.get(tag) for tag in ("args", "_hparams_/session_start_info")}
    assert [step for step, _ in events["loss"]] == [3, 6, 9, 12, 15], \
        "--summary_step=3 counts global steps, across epochs and resumes: %r" % events["loss"]
    lines = epoch_lines(got)
    assert lines == epoch_lines(want), "train.log epoch lines: %r" % lines
    assert len(lines) == len(set(lines)), "an epoch line appears twice: %r" % lines


@pytest.fixture(scope="module")
def straight(demo_dir, tmp_path_factory):
    save_dir = str(tmp_path_factory.mktemp("straight") / "run")
    proc = run(train_argv(demo_dir, save_dir))
    assert proc.returncode == 0, "uninterrupted run failed: %s" % proc.stderr[-2000:]
    return save_dir


# Global step 7 is the 3rd of 4 iterations of epoch 2; evaluation and checkpoint 2 follow epoch 2.
POINTS = ["step=7", "eval=2", "checkpoint=2"]
SIGNALS = ["SIGKILL", "SIGTERM", "SIGINT"]


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("signame", SIGNALS)
def test_stopped_anywhere_resumes_bit_identical(demo_dir, straight, tmp_path, signame, point):
    save_dir = str(tmp_path / "run")
    proc = run(train_argv(demo_dir, save_dir), fault="%s@%s" % (signame, point))
    if signame == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL, "should die by SIGKILL: %s" % proc.stderr[-2000:]
    else:
        assert proc.returncode == 130, "%s ends the run with 130: %s" % (signame, proc.stderr[-2000:])
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "--resume=auto" in lines[0] and signame in lines[0], proc.stderr
    proc = run(resume_argv(save_dir))
    assert proc.returncode == 0, "resume failed: %s" % proc.stderr[-2000:]
    assert "resuming from" in open(os.path.join(save_dir, "train.log")).read(), \
        "messages before the run folder opened reach train.log"
    assert_same_run(save_dir, straight)
    assert len(glob.glob(os.path.join(save_dir, "checkpoint*.json"))) <= 2, "--keep_checkpoints=2"
    assert not glob.glob(os.path.join(save_dir, "*.tmp")), "no temporary file is left"


def test_ctrl_c_to_the_process_group_with_loader_workers(demo_dir, straight, tmp_path):
    """A real Ctrl-C reaches every process of the group, the data-loading workers too."""
    save_dir = str(tmp_path / "run")
    argv = train_argv(demo_dir, save_dir, "--num_workers=2", "--epochs=4")
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=subprocess_env(EE_GLUON_FAULT=None))
    try:
        # Polls for a state of the run (its first summary row), bounded only against a hung run.
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        csv_path = os.path.join(save_dir, "summary.csv")
        while time.monotonic() < deadline and not os.path.exists(csv_path) and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, "Ctrl-C ends the run with 130: %d %s" % (proc.returncode, err[-2000:])
    proc = run(resume_argv(save_dir))
    assert proc.returncode == 0, "resume failed: %s" % proc.stderr[-2000:]
    assert_same_run(save_dir, straight)
    history = json.load(open(os.path.join(save_dir, "args.json")))["history"]
    assert [entry["action"] for entry in history] == ["start", "resume"], history


def test_resume_takes_every_flag_from_args_json(demo_dir, straight, tmp_path):
    save_dir = str(tmp_path / "run")
    assert run(train_argv(demo_dir, save_dir, "--epochs=2")).returncode == 0
    # Only how long it goes changes; the rest (backbone, loss, lr, ...) comes from args.json.
    proc = run(resume_argv(save_dir, "--epochs=4"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_same_run(save_dir, straight)
    saved = json.load(open(os.path.join(save_dir, "args.json")))
    assert saved["epochs"] == 4 and saved["backbone"] == "resnet18_v1", "args.json records the run"
    assert saved["history"][-1]["changed"] == {"epochs": [2, 4]}, saved["history"]


@pytest.mark.parametrize("fault", ["SIGKILL@eval=0", "ENOSPC@write=checkpoint-e000000"])
def test_stopped_before_its_first_checkpoint_starts_again_and_ends_the_same(demo_dir, straight, tmp_path, fault):
    """Killed during the evaluation before training, or the disk full at the first checkpoint: there
    is nothing to continue from, so --resume=auto starts the run again, as it began."""
    save_dir = str(tmp_path / "run")
    proc = run(train_argv(demo_dir, save_dir), fault=fault)
    assert proc.returncode in (-signal.SIGKILL, 2), "the first attempt stops: %s" % proc.stderr[-2000:]
    assert not glob.glob(os.path.join(save_dir, "checkpoint-*.json")), "it stopped before its first checkpoint"
    attempt_events = [os.path.basename(p) for p in glob.glob(os.path.join(save_dir, "events.out.tfevents.*"))]
    assert attempt_events, "the attempt wrote events (its settings) before it stopped"
    attempt_log = open(os.path.join(save_dir, "train.log")).read()
    proc = run(resume_argv(save_dir))
    assert proc.returncode == 0, "the resume starts the run again: %s" % proc.stderr[-2000:]
    log = open(os.path.join(save_dir, "train.log")).read()
    assert log.startswith(attempt_log) and RESTART_LINE in log[len(attempt_log):], \
        "train.log keeps the attempt's lines, then the restart's"
    aside = glob.glob(os.path.join(save_dir, "set-aside-*"))
    assert len(aside) == 1 and sorted(os.listdir(aside[0])) == sorted(attempt_events), \
        "the attempt's event files are set aside, not mixed into the run: %r" % os.listdir(save_dir)
    history = json.load(open(os.path.join(save_dir, "args.json")))["history"]
    assert [entry["action"] for entry in history] == ["start", "restart"], history
    assert_same_run(save_dir, straight)
