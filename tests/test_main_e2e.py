"""End to end: main.py trains on a few generated images, logs the original's tags, saves results."""
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
def tiny_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return str(generate_demo(str(out / "demo"), classes=8, per_class=8, size=40, seed=0))


def _base_argv(data_dir, save_dir):
    return [
        "--data_name=demo", "--data_dir=" + data_dir, "--gpu_idx=-1", "--pretrained=none",
        "--image_size=32", "--embed_dim=16", "--batch_size=8", "--num_instances=4",
        "--num_workers=0", "--epochs=2", "--eval_epoch_term=1", "--summary_step=1",
        "--lr_decay_epochs=1", "--lr=0.001", "--save_dir=" + save_dir, "--progress=False",
    ]


def _accumulator(event_dir):
    """The events as TensorBoard reads them (every value a tensor, with its plugin's metadata)."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    accumulator = EventAccumulator(event_dir, size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


def _read_tags(event_dir, plugin="scalars"):
    accumulator = _accumulator(event_dir)
    return {tag: [(e.step, e.tensor_proto.float_val[0] if plugin == "scalars" else e.tensor_proto)
                  for e in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]
            if accumulator.SummaryMetadata(tag).plugin_data.plugin_name == plugin}


def test_train_two_epochs(tiny_demo, tmp_path):
    save_dir = str(tmp_path / "run")
    proc = subprocess.run([sys.executable, "main.py"] + _base_argv(tiny_demo, save_dir)
                          + ["--projector_every=2"], cwd=ROOT, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT, env=subprocess_env())
    assert proc.returncode == 0, "main.py failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:])

    results = json.load(open(os.path.join(save_dir, "results.json")))
    assert results["epoch"] == 2, "results.json must record the last epoch trained: %r" % results
    for key in ("best", "last", "initial"):
        assert results[key] is not None and "R@1" in results[key], "%s metrics missing: %r" % (key, results)
    assert results["last"]["epoch"] == 2, "last metrics come from epoch 2: %r" % results["last"]
    for key in ("R@1", "R@8", "MAP@R", "RP", "NMI", "F1"):
        assert 0.0 <= results["last"][key] <= 1.0, "%s missing or out of range: %r" % (key, results["last"])
    best_file = os.path.join(save_dir, "model_best.params")
    assert os.path.isfile(best_file), "best parameters %s not saved" % best_file
    assert os.path.isfile(os.path.join(save_dir, "model_last.params")), "last parameters not saved"
    assert not glob.glob(os.path.join(save_dir, "model_epoch_*")), "only the best and last parameters are kept"
    saved_args = json.load(open(os.path.join(save_dir, "args.json")))
    assert saved_args["n_inner_pts"] == 2 and saved_args["data_name"] == "demo", "args.json incomplete"
    assert os.path.isfile(os.path.join(save_dir, "train.log")), "train.log missing"

    tags = _read_tags(save_dir)  # the event files lie in the run folder itself
    for tag in ("loss", "lr", "loss_epoch", "lr_epoch", "metric/R1", "metric_epoch/R1", "metric/MAP_R",
                "metric_epoch/NMI", "metric/F1", "metric/RP",
                "metric/R8", "metric/R1/best", "metric_epoch/R1/best"):
        assert tag in tags, "tag %s missing from the event file (have %s)" % (tag, sorted(tags))
    assert [step for step, _ in tags["loss_epoch"]] == [1, 2], "loss_epoch per epoch: %r" % tags["loss_epoch"]
    # 8 classes / 2 = 4 train classes x 4 instances = 16 images = 2 iterations per epoch; lr halves
    # after epoch 1 (iteration 2), as MultiFactorScheduler counts "num_update > step".
    lrs = dict(tags["lr"])
    assert lrs[1] == pytest.approx(1e-3) and lrs[4] == pytest.approx(5e-4), "lr schedule: %r" % lrs
    assert [step for step, _ in tags["metric_epoch/R1"]] == [0, 1, 2], "evaluations at 0, 1, 2"

    images = _read_tags(save_dir, plugin="images")
    assert list(images) == ["retrieval/test"], "a retrieval grid per evaluation: %s" % list(images)
    assert [step for step, _ in images["retrieval/test"]] == [0, 2, 4], "grids at evaluations 0, 1 and 2"
    assert os.path.isfile(os.path.join(save_dir, "projector_config.pbtxt")), \
        "--projector_every=2 writes the projector files at epoch 2"
    assert os.path.isfile(os.path.join(save_dir, "projector", "00004", "test_embeddings", "tensors.tsv")), \
        "the projector's files lie under projector/<step>/"


@pytest.mark.parametrize("extra, fragment", [
    (["--loss=nope"], "hphn_triplet"),  # the valid names are listed
    (["--backbone=nope"], "unknown backbone"),
    (["--gpu_idx=3"], "GPU 3"),
    (["--batch_size=6"], "not a multiple of --num_instances"),
    (["--num_instances=3", "--batch_size=9"], "num_instances"),
    (["--data_dir=/nonexistent/dir"], "/nonexistent/dir"),
])
def test_bad_input_is_one_line_exit_2(tiny_demo, tmp_path, extra, fragment):
    save_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "main.py"] + _base_argv(tiny_demo, str(save_dir)) + extra,
                          cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          env=subprocess_env())
    assert proc.returncode == 2, "expected exit 2 for %s, got %d: %s" % (extra, proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), "one error line, got %r" % proc.stderr
    assert fragment in lines[0], "message should mention %r: %r" % (fragment, lines[0])
    assert "Traceback" not in proc.stderr, "no traceback for bad input"
    assert not save_dir.exists(), "nothing may be written for a rejected run"


def _registry_flags():
    import loss

    cases = []
    for name in sorted(loss.LOSSES):
        if name.startswith("symm_"):
            cases.append((name, ["--num_instances=2", "--n_inner_pts=0"]))
        elif name == "angular" or loss.LOSSES[name].uses_proxies:
            cases.append((name, ["--n_inner_pts=0"]))
        elif name == "npair":
            cases.append((name, ["--n_inner_pts=2", "--ee_l2norm=False"]))
        else:
            cases.append((name, ["--n_inner_pts=2"]))
    return cases


@pytest.mark.parametrize("name, extra", _registry_flags())
def test_every_loss_trains_through_main(tiny_demo, tmp_path, name, extra):
    save_dir = str(tmp_path / name)
    argv = _base_argv(tiny_demo, save_dir) + ["--loss=" + name, "--epochs=1", "--eval_at_start=False"]
    proc = subprocess.run([sys.executable, "main.py"] + argv + extra, cwd=ROOT, capture_output=True,
                          text=True, timeout=SUBPROCESS_TIMEOUT, env=subprocess_env())
    assert proc.returncode == 0, "%s failed:\n%s" % (name, proc.stderr[-3000:])
    results = json.load(open(os.path.join(save_dir, "results.json")))
    assert results["last"]["R@1"] >= 0 and results["epoch"] == 1, "%s: %r" % (name, results)
