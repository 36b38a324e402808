"""main.py's fair protocol end to end (issue 21): a validation split of the training classes
(``--val_classes``, ``--folds``/``--fold``) is held out of training and evaluated beside the test
split; ``--select_on``/``--select_metric`` pick model_best.params; results.json, summary.csv,
TensorBoard and args.json record it, and a resumed run ends bit-identical. Checked against
recomputations here: the split's rule, the val metrics of the saved networks embedded anew, the
best epoch from summary.csv, the manifest's SHA-256. The default run keeps today's files, and every
refusal is one line, exit 2, nothing written."""
import csv
import hashlib
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import SUBPROCESS_TIMEOUT, subprocess_env
from test_main_resume import epoch_lines, event_scalars

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = ["R@1", "R@2", "R@4", "R@8", "MAP@R", "RP", "NMI", "F1"]


def train_argv(data_dir, save_dir, *extra, epochs=3):
    # The demo's 8 training classes; 2 classes of 4 images per batch; ResNet-18 (BatchNorm) at 32 px.
    return [sys.executable, "main.py", "--data_name=demo", "--data_dir=" + data_dir, "--gpu_idx=-1",
            "--pretrained=none", "--backbone=resnet18_v1", "--image_size=32", "--embed_dim=8",
            "--batch_size=8", "--num_instances=4", "--num_workers=0", "--epochs=%d" % epochs,
            "--eval_epoch_term=1", "--summary_step=3", "--lr=0.001", "--progress=False",
            "--keep_checkpoints=2", "--save_dir=" + save_dir] + list(extra)


def run(argv, fault=None):
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          env=subprocess_env(EE_GLUON_FAULT=fault))


def trained(argv):
    proc = run(argv)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [arg for arg in argv if arg.startswith("--save_dir=")][0][len("--save_dir="):]


def read(save_dir, name):
    with open(os.path.join(save_dir, name), encoding="utf-8") as handle:
        return json.load(handle) if name.endswith(".json") else list(csv.DictReader(handle))


def demo_train_split(data_dir):
    """(paths, labels) of the demo's train.txt, read here: a header, then 'image_id class_id view_id
    relative/path' per line."""
    paths, labels = [], []
    for line in open(os.path.join(data_dir, "train.txt")).read().splitlines()[1:]:
        if line.strip():
            _, label, _, path = line.split()
            paths.append(os.path.join(data_dir, path))
            labels.append(int(label))
    return paths, np.array(labels)


def rule_split(labels, split_seed=0, count=None, folds=None, fold=None):
    """The documented rule: sorted ids, RandomState(split_seed) permutation, first K or part ``fold``."""
    ids = sorted(set(labels.tolist()))
    permuted = [ids[i] for i in np.random.RandomState(split_seed).permutation(len(ids))]
    if folds is None:
        return sorted(permuted[:count])
    sizes = [len(ids) // folds + (1 if part < len(ids) % folds else 0) for part in range(folds)]
    start = sum(sizes[:fold])
    return sorted(permuted[start:start + sizes[fold]])


@pytest.fixture(scope="module")
def val_run(demo_dir, tmp_path_factory):
    return trained(train_argv(demo_dir, str(tmp_path_factory.mktemp("val") / "run"), "--val_classes=2"))


def test_the_split_is_recorded_and_held_out_of_training(val_run, demo_dir):
    paths, labels = demo_train_split(demo_dir)
    held_out = rule_split(labels, count=2)
    results, args = read(val_run, "results.json"), read(val_run, "args.json")
    assert results["val_classes"] == held_out
    assert results["split"] == {"rule": "class_split/holdout", "split_seed": 0, "val_classes": 2}
    assert results["selected_on"] == "val" and results["select_metric"] == "R@1"
    manifest = open(os.path.join(demo_dir, "split_manifest.json"), "rb").read()
    assert args["split_manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert args["validation_split"] == dict(results["split"], val_class_ids=held_out)
    left = [c for c in labels.tolist() if c not in held_out]
    log = open(os.path.join(val_run, "train.log")).read()
    assert "train %d images / %d classes" % (len(left), len(set(left))) in log, "trained without them"
    assert "| val R@1 selects" in log, "each evaluation's line says which split selects"


def embed_held_out(params_path, demo_dir, held_out):
    import mxnet as mx

    from inference.image_embeddings import embed_paths
    from inference.trained_network import load_network

    paths, labels = demo_train_split(demo_dir)
    chosen = [i for i, c in enumerate(labels.tolist()) if c in held_out]
    net, _ = load_network(params_path, [mx.cpu()])
    embeddings, _, _ = embed_paths(net, [paths[i] for i in chosen], 32, [mx.cpu()], progress=False)
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True), labels[chosen]


@pytest.mark.parametrize("which, params", [("best", "model_best.params"), ("last", "model_last.params")])
def test_val_metrics_are_those_of_the_held_out_training_images(val_run, demo_dir, which, params):
    from utils.metrics import evaluate_embeddings

    results = read(val_run, "results.json")
    embeddings, labels = embed_held_out(os.path.join(val_run, params), demo_dir, results["val_classes"])
    want = evaluate_embeddings(embeddings, labels, [1, 2, 4, 8],
                               metrics=["recall", "map_at_r", "r_precision", "nmi", "f1"])
    got = results[which]["val"]
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key


def test_val_selects_the_epoch_of_the_best_val_metric(val_run):
    rows = read(val_run, "summary.csv")
    assert list(rows[0]) == ["epoch", "step", "loss", "lr"] + METRICS + ["val/" + m for m in METRICS]
    best_row = max(rows, key=lambda row: (float(row["val/R@1"]), -int(row["epoch"])))  # first of a tie
    best = read(val_run, "results.json")["best"]
    assert best["epoch"] == int(best_row["epoch"])
    assert best["R@1"] == pytest.approx(float(best_row["R@1"]), abs=1e-12), "best holds the test metrics there"
    assert best["val"]["R@1"] == pytest.approx(float(best_row["val/R@1"]), abs=1e-12)
    events = event_scalars(val_run)
    assert [step for step, _ in events["metric/val/R1"]] == [0, 3, 6, 9], "every evaluation, the initial one too"
    assert [v for _, v in events["metric_epoch/val/R1"]][1:] == pytest.approx([float(r["val/R@1"]) for r in rows])
    assert "metric/val/R1/best" in events and "metric/R1/best" not in events, "the selecting split's best"


@pytest.mark.parametrize("fault", ["SIGTERM@eval=2", "SIGKILL@step=5"])
def test_a_val_selected_run_resumes_bit_identical(val_run, demo_dir, tmp_path, fault):
    save_dir = str(tmp_path / "run")
    proc = run(train_argv(demo_dir, save_dir, "--val_classes=2"), fault=fault)
    assert proc.returncode in (130, -signal.SIGKILL), proc.stderr[-2000:]
    proc = run([sys.executable, "main.py", "--save_dir=" + save_dir, "--resume=auto"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("model_last.params", "model_best.params", "results.json", "summary.csv"):
        assert open(os.path.join(save_dir, name), "rb").read() == open(os.path.join(val_run, name), "rb").read(), name
    assert event_scalars(save_dir) == event_scalars(val_run)
    assert epoch_lines(save_dir) == epoch_lines(val_run)


def test_a_fold_selected_on_test_by_map_at_r(demo_dir, tmp_path):
    save_dir = trained(train_argv(demo_dir, str(tmp_path / "run"), "--folds=4", "--fold=1", "--split_seed=3",
                                  "--select_on=test", "--select_metric=MAP@R", epochs=2))
    _, labels = demo_train_split(demo_dir)
    results = read(save_dir, "results.json")
    assert results["val_classes"] == rule_split(labels, split_seed=3, folds=4, fold=1)
    assert results["split"] == {"rule": "class_split/kfold", "split_seed": 3, "folds": 4, "fold": 1}
    assert results["selected_on"] == "test" and results["select_metric"] == "MAP@R"
    rows = read(save_dir, "summary.csv")
    best_row = max(rows, key=lambda row: (float(row["MAP@R"]), -int(row["epoch"])))
    assert results["best"]["epoch"] == int(best_row["epoch"])
    events = event_scalars(save_dir)
    assert "metric/MAP_R/best" in events and "metric/val/R1" in events


def test_the_default_run_keeps_todays_files(demo_dir, tmp_path):
    save_dir = trained(train_argv(demo_dir, str(tmp_path / "run"), epochs=1))
    results = read(save_dir, "results.json")
    assert sorted(results) == ["best", "epoch", "initial", "last"], "no protocol keys without a split"
    assert sorted(results["best"]) == sorted(METRICS + ["epoch", "non_finite"])
    assert list(read(save_dir, "summary.csv")[0]) == ["epoch", "step", "loss", "lr"] + METRICS
    assert not [tag for tag in event_scalars(save_dir) if "/val/" in tag]
    args = read(save_dir, "args.json")
    assert "validation_split" not in args and len(args["split_manifest_sha256"]) == 64
    assert "| val" not in open(os.path.join(save_dir, "train.log")).read()


@pytest.mark.parametrize("flags, fragment", [
    (["--val_classes=7"], "--val_classes=7 leaves 1 training classes, fewer than the 2 a batch holds"),
    (["--val_classes=8"], "--val_classes=8 holds out 8 of the 8 training classes"),
    (["--val_classes=2.5"], "argument --val_classes: expected a whole number of classes"),
    (["--val_classes=0"], "argument --val_classes: expected a whole number of classes"),
    (["--folds=4", "--fold=4"], "--fold must be in 0 .. 3 for --folds=4, got 4"),
    (["--folds=4"], "--fold must be in 0 .. 3 for --folds=4, got None"),
    (["--fold=1"], "--fold=1 names a fold of no k-fold split; add --folds=K"),
    (["--folds=9", "--fold=0"], "--folds=9: need 2 to 8 folds"),
    (["--val_classes=2", "--folds=4", "--fold=0"], "--val_classes and --folds both ask for a validation split"),
    (["--select_on=val"], "--select_on=val needs a validation split: add --val_classes=K or --folds=K --fold=I"),
    (["--val_classes=2", "--select_metric=R@3"], "--select_metric=R@3 is not a metric this run computes"),
    (["--val_classes=2", "--split_seed=-1"], "--split_seed must be in 0 .. 2^32 - 1, got -1"),
])
def test_a_refusal_is_one_line_and_writes_nothing(demo_dir, tmp_path, flags, fragment):
    save_dir = str(tmp_path / "run")
    proc = run(train_argv(demo_dir, save_dir, *flags))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert fragment in lines[0], lines[0]
    assert not os.path.exists(save_dir), "nothing is written"
