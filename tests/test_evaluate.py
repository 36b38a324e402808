"""evaluate.py: a saved checkpoint on a test split, stored embeddings, and bad input."""
import json
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import evaluate
import model
from conftest import SUBPROCESS_TIMEOUT, needs_bf16, subprocess_env
from data import TestTransform, decode_image
from data.demo import generate_demo
from utils.metrics import evaluate_embeddings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 32
METRIC_KEYS = ["R@1", "R@2", "R@4", "R@8", "MAP@R", "RP", "NMI", "F1"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("evaluate")
    data_dir = generate_demo(str(base / "demo"), classes=6, per_class=5, size=SIZE)
    run_dir = base / "run"
    run_dir.mkdir()
    net = model.build_network("googlenet", embed_dim=8)
    model.initialize_network(net, [mx.cpu()], pretrained="none")
    net(mx.nd.zeros((1, SIZE, SIZE, 3), dtype="uint8"))  # deferred shapes resolved before saving
    params = str(run_dir / "model_last.params")
    net.save_parameters(params)
    run_args = {"backbone": "googlenet", "embed_dim": 8, "image_size": SIZE, "loss": "hphn-triplet",
                "data_name": "demo", "data_dir": data_dir}
    with open(str(run_dir / "args.json"), "w") as handle:
        json.dump(run_args, handle)
    return {"base": base, "data": data_dir, "params": params, "net": net, "run_args": run_args}


def _test_split(data_dir):
    lines = open(os.path.join(data_dir, "test.txt")).read().split("\n")[1:]
    rows = [line.split() for line in lines if line.strip()]
    return [os.path.join(data_dir, r[3]) for r in rows], np.array([int(r[1]) for r in rows], np.int32)


def _expected_embeddings(net, paths):
    batch = np.stack([TestTransform(SIZE)(decode_image(p)) for p in paths])
    out = net(mx.nd.array(batch, dtype="uint8")).asnumpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _main(capsys, *argv):
    code = evaluate.main(["--progress=False"] + list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), "one 'error:' line expected: %r" % err
    assert "Traceback" not in err, "no traceback: %r" % err
    return lines[0]


def test_checkpoint_end_to_end(setup, tmp_path):
    saved = str(tmp_path / "emb.npy")
    proc = subprocess.run(
        [sys.executable, "evaluate.py", "--checkpoint", setup["params"], "--data_name", "demo",
         "--data_dir", setup["data"], "--gpu_idx=-1", "--num_workers", "0", "--batch_size", "7",
         "--save_embeddings", saved],
        cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, env=subprocess_env())
    assert proc.returncode == 0, "evaluate.py failed: %s" % proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, "no traceback on success: %s" % proc.stderr[-2000:]
    printed = {}
    for line in proc.stdout.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] in METRIC_KEYS:
            printed[fields[0]] = float(fields[1])
    assert list(printed) == METRIC_KEYS, "every metric printed in order: %s" % proc.stdout
    out = os.path.join(os.path.dirname(setup["params"]), "model_last_metrics.json")
    report = json.load(open(out))
    assert list(report["metrics"]) == sorted(METRIC_KEYS), "json metrics %s" % report["metrics"]
    assert report["num_images"] == 15 and report["num_classes"] == 3, "demo test split: %s" % report
    assert report["data_name"] == "demo" and report["recallk"] == [1, 2, 4, 8], "report %s" % report
    for key, value in printed.items():
        assert abs(report["metrics"][key] - value) < 5e-5, "%s printed %s, written %s" % (key, value, report["metrics"][key])

    paths, labels = _test_split(setup["data"])
    embeddings = np.load(saved)
    want = _expected_embeddings(setup["net"], paths)
    assert embeddings.shape == (15, 8) and np.allclose(embeddings, want, atol=1e-5), \
        "saved embeddings differ from the network's by %g" % np.abs(embeddings - want).max()
    assert np.array_equal(np.load(str(tmp_path / "emb.labels.npy")), labels), "labels saved beside"
    listed = open(str(tmp_path / "emb.paths.txt")).read().split("\n")[:-1]
    assert listed == [os.path.abspath(p) for p in paths], "paths sidecar in test order"
    direct = evaluate_embeddings(want, labels, (1, 2, 4, 8))
    for key in METRIC_KEYS:
        assert abs(direct[key] - report["metrics"][key]) < 1e-6, \
            "%s: evaluate.py %s vs utils.metrics %s" % (key, report["metrics"][key], direct[key])


def test_dataset_and_network_from_args_json(setup, tmp_path, capsys):
    out = str(tmp_path / "sub" / "m.json")
    code, stdout, err = _main(capsys, "--checkpoint", setup["params"], "--num_workers", "0",
                              "--recallk", "1,3", "--eval_metrics", "recall,map_at_r", "--out", out)
    assert code == 0, "evaluation failed: %s" % err
    report = json.load(open(out))
    assert sorted(report["metrics"]) == ["MAP@R", "R@1", "R@3"], "only what was asked: %s" % report["metrics"]
    assert report["data_dir"] == os.path.abspath(setup["data"]), "data_dir taken from args.json"
    assert "R@3" in stdout and "NMI" not in stdout, "printed: %s" % stdout


def test_stored_embeddings_match_metrics(tmp_path, capsys, caplog):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 4)
    embeddings = rng.normal(size=(20, 6)).astype(np.float32) + 2.0 * np.eye(6, dtype=np.float32)[labels]
    np.save(str(tmp_path / "e.npy"), embeddings)
    np.save(str(tmp_path / "l.npy"), labels)
    code, stdout, err = _main(capsys, "--embeddings", str(tmp_path / "e.npy"), "--labels",
                              str(tmp_path / "l.npy"), "--data_name", "sop")
    assert code == 0, "evaluation of stored embeddings failed: %s" % err
    report = json.load(open(str(tmp_path / "e_metrics.json")))
    direct = evaluate_embeddings(embeddings, labels, (1, 10, 100, 1000))
    assert list(direct) == ["R@1", "R@10", "R@100", "R@1000", "MAP@R", "RP", "NMI", "F1"], "SOP ranks: %s" % direct
    for key, value in direct.items():
        assert abs(report["metrics"][key] - value) < 1e-9, "%s: %s vs %s" % (key, report["metrics"][key], value)
    assert report["metrics"]["R@100"] == report["metrics"]["R@1000"] == 1.0, "ranks beyond N - 1 are clipped"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("R@100,1000" in w and "equal R@19" in w for w in warnings), "clip warned: %s" % warnings


def test_non_finite_rows_are_left_out_and_counted(tmp_path, capsys, caplog):
    # Three classes of two identical unit vectors; row 1 (class 0) is NaN. As a zero vector it was
    # row 0's nearest neighbour (distance 1 < sqrt 2) and a hit; now it is in no gallery: query 0
    # has no classmate left (a miss), query 1 is a miss, queries 2-5 hit at rank 1.
    embeddings = np.eye(6, dtype=np.float32)[np.repeat(np.arange(3), 2)]
    embeddings[1] = np.nan
    np.save(str(tmp_path / "e.npy"), embeddings)
    np.save(str(tmp_path / "l.npy"), np.repeat(np.arange(3), 2))
    code, out, err = _main(capsys, "--embeddings", str(tmp_path / "e.npy"), "--labels", str(tmp_path / "l.npy"),
                           "--eval_metrics", "recall,map_at_r", "--out", str(tmp_path / "m.json"))
    assert code == 0, "a NaN row is scored, as in training, not refused: %s" % err
    report = json.load(open(str(tmp_path / "m.json")))
    assert report["non_finite"] == 1, "the JSON says how many rows were not finite: %r" % report
    for k in (1, 2, 4, 8):
        assert report["metrics"]["R@%d" % k] == pytest.approx(4 / 6), "R@%d: %r" % (k, report["metrics"])
    # MAP@R over queries with a finite classmate: 2-5 (AP 1) and 1 (a miss, 0); query 0 has R = 0.
    assert report["metrics"]["MAP@R"] == pytest.approx(4 / 5), "MAP@R: %r" % report["metrics"]
    assert "1 embeddings are not finite" in out, "printed: %s" % out
    assert any("1 of 6 embeddings" in r.getMessage() for r in caplog.records), "warned"


def test_finite_embeddings_report_zero_non_finite(tmp_path, capsys):
    embeddings = np.eye(6, dtype=np.float32)[np.repeat(np.arange(3), 2)]
    np.save(str(tmp_path / "e.npy"), embeddings)
    np.save(str(tmp_path / "l.npy"), np.repeat(np.arange(3), 2))
    code, out, err = _main(capsys, "--embeddings", str(tmp_path / "e.npy"), "--labels", str(tmp_path / "l.npy"),
                           "--eval_metrics", "recall", "--out", str(tmp_path / "m.json"))
    assert code == 0, err
    assert json.load(open(str(tmp_path / "m.json")))["non_finite"] == 0, "non_finite is always reported"
    assert "not finite" not in out, "nothing to say when every row is finite: %s" % out


def _bad_params(setup, tmp_path):
    path = str(tmp_path / "garbage" / "model.params")
    os.makedirs(os.path.dirname(path))
    open(path, "w").write("not parameters")
    shutil.copy(os.path.join(os.path.dirname(setup["params"]), "args.json"), os.path.dirname(path))
    return ["--checkpoint", path]


def _mismatched_params(setup, tmp_path):
    folder = tmp_path / "wide"
    folder.mkdir()
    shutil.copy(setup["params"], str(folder / "model.params"))
    json.dump(dict(setup["run_args"], embed_dim=16), open(str(folder / "args.json"), "w"))
    return ["--checkpoint", str(folder / "model.params")]


@needs_bf16
def test_bfloat16_evaluation_is_close_to_float32(setup, tmp_path, capsys):
    reports = {}
    for dtype in ("float32", "bfloat16"):
        out = str(tmp_path / ("%s.json" % dtype))
        code, _, err = _main(capsys, "--checkpoint", setup["params"], "--num_workers", "0", "--dtype", dtype,
                             "--out", out, "--save_embeddings", str(tmp_path / ("%s.npy" % dtype)))
        assert code == 0, "evaluation in %s failed: %s" % (dtype, err)
        reports[dtype] = json.load(open(out))
        assert reports[dtype]["dtype"] == dtype, "the report says which dtype embedded"
    a, b = (np.load(str(tmp_path / ("%s.npy" % dtype))) for dtype in ("float32", "bfloat16"))
    assert not np.array_equal(a, b), "bfloat16 must compute differently from float32"
    assert (a * b).sum(axis=1).min() > 0.99, "unit rows: cosine of bfloat16's with float32's"
    for key in ("R@1", "MAP@R"):  # at most one of the 15 queries may rank differently
        assert abs(reports["bfloat16"]["metrics"][key] - reports["float32"]["metrics"][key]) <= 1 / 15 + 1e-6, \
            "%s: bfloat16 %s, float32 %s" % (key, reports["bfloat16"]["metrics"], reports["float32"]["metrics"])


def _no_args_json(setup, tmp_path):
    folder = tmp_path / "bare"
    folder.mkdir()
    shutil.copy(setup["params"], str(folder / "model.params"))
    return ["--checkpoint", str(folder / "model.params"), "--data_name", "demo", "--data_dir", setup["data"]]


def _shape_mismatch(setup, tmp_path):
    np.save(str(tmp_path / "e.npy"), np.ones((6, 4), np.float32))
    np.save(str(tmp_path / "l.npy"), np.arange(5))
    return ["--embeddings", str(tmp_path / "e.npy"), "--labels", str(tmp_path / "l.npy")]


def _embeddings_without_labels(setup, tmp_path):
    np.save(str(tmp_path / "e.npy"), np.ones((6, 4), np.float32))
    return ["--embeddings", str(tmp_path / "e.npy")]


@pytest.mark.parametrize(
    "make_argv, message",
    [
        (lambda s, t: ["--checkpoint", str(t / "missing.params"), "--data_name", "demo"], "does not exist"),
        (_no_args_json, "no args.json beside"),
        (_mismatched_params, "shape incompatible"),
        (_bad_params, "is not a parameter file saved by main.py"),
        (_shape_mismatch, "has 6 rows but --labels"),
        (_embeddings_without_labels, "has no labels beside it"),
        (lambda s, t: ["--embeddings", str(t / "missing.npy")], "missing.npy does not exist"),
        (lambda s, t: ["--embeddings", str(t / "missing.npy"), "--labels", str(t / "l.npy")], "missing.npy does not exist"),
        (lambda s, t: ["--labels", str(t / "l.npy")], "--labels goes with --embeddings"),
        (lambda s, t: ["--checkpoint", s["params"], "--embeddings", "e.npy", "--labels", "l.npy"], "not both"),
        (lambda s, t: [], "nothing to evaluate"),
        (lambda s, t: ["--embeddings", "e.npy", "--labels", "l.npy", "--dtype", "bfloat16"],
         "--dtype applies to --checkpoint only"),
        # A conflict of flags: refused before the file or the CPU is looked at.
        (lambda s, t: ["--checkpoint", str(t / "missing.onnx"), "--dtype", "float16"],
         "an ONNX model runs in ONNX Runtime"),
        (lambda s, t: ["--checkpoint", s["params"], "--data_name", "imagenet"], "unknown dataset"),
        (lambda s, t: ["--checkpoint", s["params"], "--eval_metrics", "recall,auc"], "unknown metric 'auc'"),
        (lambda s, t: ["--checkpoint", s["params"], "--data_name", "cub200", "--data_dir", str(t / "x")],
         "python3 -m data.prepare cub200"),
    ],
    ids=["missing", "no_args_json", "mismatched", "garbage", "shapes", "labels_missing", "no_embeddings_file",
         "no_embeddings_file_with_labels", "embeddings_missing", "both",
         "nothing", "dtype_stored", "dtype_onnx", "dataset", "metric", "no_data"],
)
def test_bad_input_is_one_line(setup, tmp_path, capsys, make_argv, message):
    try:
        code, _, err = _main(capsys, *make_argv(setup, tmp_path))
    except SystemExit as exit_:  # argparse errors
        code, err = exit_.code, capsys.readouterr().err
    assert code == 2, "bad input must exit 2, got %s: %s" % (code, err)
    line = _one_error_line(err)
    assert message in line, "expected %r in %r" % (message, line)


@pytest.mark.parametrize("flag", ["--checkpoint", "--embeddings", "--labels", "--data_dir", "--out",
                                  "--save_embeddings"])
def test_an_empty_path_flag_is_one_line(capsys, flag):
    with pytest.raises(SystemExit) as exit_:
        evaluate.main([flag, ""])
    line = _one_error_line(capsys.readouterr().err)
    assert exit_.value.code == 2 and "argument %s: an empty path names no file or folder" % flag in line, line


def test_script_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "evaluate.py", "--checkpoint", str(tmp_path / "nope.params")],
                          cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          env=subprocess_env())
    assert proc.returncode == 2, "missing checkpoint must exit 2: %s" % proc.stderr
    assert _one_error_line(proc.stderr).endswith("nope.params does not exist"), proc.stderr
