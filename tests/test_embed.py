"""embed.py: embeddings of any images, query search with a picture, exported models, bad input."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest

import embed
import model
from conftest import SUBPROCESS_TIMEOUT, needs_bf16, subprocess_env, write_cpuinfo
from data import TestTransform, decode_image
from data.demo import generate_demo
from model.export import export_network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 32


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("embed")
    data_dir = generate_demo(str(base / "demo"), classes=4, per_class=3, size=40, seed=1)
    run_dir = base / "run"
    run_dir.mkdir()
    net = model.build_network("googlenet", embed_dim=8)
    model.initialize_network(net, [mx.cpu()], pretrained="none")
    net(mx.nd.zeros((1, SIZE, SIZE, 3), dtype="uint8"))  # deferred shapes resolved before saving
    params = str(run_dir / "model_last.params")
    net.save_parameters(params)
    with open(str(run_dir / "args.json"), "w") as handle:
        json.dump({"backbone": "googlenet", "embed_dim": 8, "image_size": SIZE, "lr": 0.1}, handle)
    symbol, _ = export_network(net, str(run_dir / "export" / "model"), SIZE)
    images = sorted(os.path.join(folder, name)
                    for folder, _, names in os.walk(os.path.join(data_dir, "images")) for name in names)
    return {"base": base, "data": data_dir, "params": params, "symbol": symbol, "net": net,
            "images": [os.path.abspath(p) for p in images]}


def _expected(net, paths):
    batch = np.stack([TestTransform(SIZE)(decode_image(p)) for p in paths])
    out = net(mx.nd.array(batch, dtype="uint8")).asnumpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _main(capsys, *argv):
    code = embed.main(["--progress=False", "--num_workers=0"] + list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _script(*argv):
    return subprocess.run([sys.executable, "embed.py", "--progress=False"] + list(argv), cwd=ROOT,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, env=subprocess_env())


def _one_error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), "one 'error:' line expected: %r" % err
    return lines[0]


def test_embed_a_directory(setup, tmp_path, capsys):
    out = str(tmp_path / "emb.npy")
    code, stdout, err = _main(capsys, "--checkpoint", setup["params"], "--images",
                              os.path.join(setup["data"], "images"), "--out", out, "--batch_size", "5")
    assert code == 0, "embedding a directory failed: %s" % err
    embeddings = np.load(out)
    paths = open(str(tmp_path / "emb.paths.txt")).read().split("\n")[:-1]
    assert paths == setup["images"], "paths sidecar must list every image, sorted: %s" % paths[:3]
    assert embeddings.shape == (12, 8) and embeddings.dtype == np.float32, "shape %s" % (embeddings.shape,)
    want = _expected(setup["net"], paths)
    assert np.allclose(embeddings, want, atol=1e-5), \
        "embeddings differ by %g" % np.abs(embeddings - want).max()
    assert not os.path.exists(str(tmp_path / "emb.skipped.txt")), "nothing skipped, no skipped file"


def test_list_file_and_exported_model_agree(setup, tmp_path, capsys):
    chosen = setup["images"][::3]
    relative = [os.path.relpath(p, str(tmp_path)) for p in reversed(chosen)]
    list_file = tmp_path / "list.txt"
    list_file.write_text("# reversed order\n" + "\n".join(relative) + "\n\n")
    code, _, err = _main(capsys, "--checkpoint", setup["params"], "--images", str(list_file), "--out",
                         str(tmp_path / "a.npy"))
    assert code == 0, err
    code, _, err = _main(capsys, "--checkpoint", setup["symbol"], "--images", str(list_file), "--out",
                         str(tmp_path / "b.npy"), "--batch_size", "3")
    assert code == 0, "an exported model needs no training flags: %s" % err
    paths = open(str(tmp_path / "b.paths.txt")).read().split()
    assert paths == list(reversed(chosen)), "list order kept, relative paths resolved against the list"
    a, b = np.load(str(tmp_path / "a.npy")), np.load(str(tmp_path / "b.npy"))
    assert np.allclose(a, b, atol=1e-5), "exported and .params embeddings differ by %g" % np.abs(a - b).max()
    onnx_file = setup["symbol"][: -len("-symbol.json")] + ".onnx"
    code, _, err = _main(capsys, "--checkpoint", onnx_file, "--images", str(list_file), "--out",
                         str(tmp_path / "o.npy"), "--batch_size", "2")
    assert code == 0, "the ONNX model needs no training flags either: %s" % err
    o = np.load(str(tmp_path / "o.npy"))
    assert np.abs(a - o).max() <= 1e-4, "ONNX Runtime and .params embeddings differ by %g" % np.abs(a - o).max()
    split = os.path.join(setup["data"], "test.txt")
    code, _, err = _main(capsys, "--checkpoint", setup["symbol"], "--images", split, "--out",
                         str(tmp_path / "c.npy"))
    assert code == 0 and np.load(str(tmp_path / "c.npy")).shape == (6, 8), "a split file is a list: %s" % err


def test_flags_override_and_replace_args_json(setup, tmp_path, capsys):
    lonely = tmp_path / "lonely.params"
    shutil.copy(setup["params"], str(lonely))
    images = os.path.join(setup["data"], "images", "001")
    code, _, err = _main(capsys, "--checkpoint", str(lonely), "--images", images, "--out",
                         str(tmp_path / "x.npy"))
    assert code == 2 and "--backbone --embed_dim --image_size" in _one_error_line(err), err
    code, _, err = _main(capsys, "--checkpoint", str(lonely), "--images", images, "--out",
                         str(tmp_path / "x.npy"), "--backbone", "googlenet", "--embed_dim", "8",
                         "--image_size", str(SIZE))
    assert code == 0, "flags stand in for args.json: %s" % err
    code, _, err = _main(capsys, "--checkpoint", setup["params"], "--images", images, "--out",
                         str(tmp_path / "y.npy"), "--embed_dim", "16")
    line = _one_error_line(err)
    assert code == 2 and "embed_dim 16" in line and setup["params"] in line, line


def test_query_search_picture_and_cache(setup, tmp_path, capsys, caplog):
    caplog.set_level("INFO")
    gallery = os.path.join(setup["data"], "images")
    query = setup["images"][4]
    cache = str(tmp_path / "gallery.npy")
    picture = str(tmp_path / "pics" / "results.jpg")
    argv = ["--checkpoint", setup["params"], "--query", query, "--gallery", gallery, "--topk", "3",
            "--gallery_embeddings", cache, "--picture", picture, "--thumb", "32"]
    code, stdout, err = _main(capsys, *argv)
    assert code == 0, "search failed: %s" % err
    rows = [line.split() for line in stdout.splitlines() if line.startswith("  ") and line.split()[0].isdigit()]
    assert len(rows) == 3 and all(len(row) == 4 for row in rows), "3 results with their class: %s" % stdout
    embeddings = _expected(setup["net"], setup["images"])
    dist = np.linalg.norm(embeddings - embeddings[4], axis=1)
    dist[4] = np.inf  # the query's own file is not a result
    want = np.argsort(dist, kind="stable")[:3]
    assert [row[3] for row in rows] == [setup["images"][i] for i in want], "nearest images: %s" % stdout
    classes = [os.path.basename(os.path.dirname(setup["images"][i])) for i in want]
    assert [row[2] for row in rows] == classes, "each result's class folder: %s" % stdout
    own = os.path.basename(os.path.dirname(query))
    assert "query %s  (class %s)" % (query, own) in stdout, stdout
    assert "  -> %d of 3 of the query's class" % sum(c == own for c in classes) in stdout, stdout
    assert np.allclose([float(row[1]) for row in rows], dist[want], atol=1e-4), "distances: %s" % stdout
    shown = cv2.imread(picture)
    assert shown is not None and shown.shape[1] == 4 * (32 + 6 + 3) + 3, \
        "picture of the query and 3 results: %s" % (None if shown is None else shown.shape,)
    assert os.path.isfile(cache) and os.path.isfile(str(tmp_path / "gallery.paths.txt")), "cache written"
    # Frames as in TensorBoard's grid: green for the query's class, red otherwise (BGR in OpenCV),
    # sampled in the middle of each result's left frame.
    cell, gap = 32 + 6, 3
    for rank, same in enumerate([c == own for c in classes], start=1):
        b, g, r = shown[gap + cell // 2, gap + rank * (cell + gap) + 1].astype(int)
        assert (g > 200 and r < 60) if same else (r > 200 and g < 60), \
            "result %d framed %s: BGR %s" % (rank, "green" if same else "red", (b, g, r))
    assert np.array_equal(np.load(str(tmp_path / "gallery.labels.npy")),
                          [os.path.basename(os.path.dirname(p)) for p in setup["images"]]), "labels cached"

    caplog.clear()
    code, stdout, err = _main(capsys, *argv)
    assert code == 0 and "reusing the gallery embeddings" in caplog.text, \
        "the cache is reused: %s" % caplog.text
    code, stdout2, err = _main(capsys, "--checkpoint", setup["params"], "--query", query,
                               "--gallery_embeddings", cache, "--topk", "3", "--picture", picture)
    assert code == 0 and [l for l in stdout2.splitlines() if l.startswith("  ")] == \
        [l for l in stdout.splitlines() if l.startswith("  ")], "the cache alone is a gallery"
    code, stdout, err = _main(capsys, "--checkpoint", setup["params"], "--query", query, "--gallery",
                              os.path.join(gallery, "002"), "--gallery_embeddings", cache, "--topk", "3",
                              "--picture", picture)
    assert code == 0 and "embedding the gallery again" in caplog.text, "another gallery invalidates the cache"
    assert len(open(str(tmp_path / "gallery.paths.txt")).read().split()) == 3, "cache rewritten for it"


def test_unreadable_image_is_named_or_skipped(setup, tmp_path):
    folder = tmp_path / "imgs"
    shutil.copytree(os.path.join(setup["data"], "images", "003"), str(folder))
    bad = str(folder / "0002.jpg")
    with open(bad, "w") as handle:
        handle.write("not a jpeg")
    out = str(tmp_path / "e.npy")
    for workers in ("0", "2"):
        proc = _script("--checkpoint", setup["params"], "--images", str(folder), "--out", out,
                       "--num_workers", workers, "--gpu_idx=-1")
        assert proc.returncode == 2, "an unreadable image is bad input: %s" % proc.stderr[-2000:]
        assert bad in _one_error_line(proc.stderr), "the line names the image: %r" % proc.stderr
    proc = _script("--checkpoint", setup["params"], "--images", str(folder), "--out", out,
                   "--num_workers", "2", "--skip_bad_images")
    assert proc.returncode == 0, "--skip_bad_images goes on: %s" % proc.stderr[-2000:]
    assert "skipped 1 unreadable image" in proc.stdout and bad in proc.stdout, "skipped image listed"
    assert open(out[:-4] + ".skipped.txt").read().split() == [bad], "skipped image in the sidecar"
    assert np.load(out).shape == (2, 8) and bad not in open(out[:-4] + ".paths.txt").read(), \
        "the two readable images are embedded"


@pytest.mark.parametrize("argv, words", [
    (["--out", "e.npy"], "either --images"),
    (["--images", "IMAGES"], "needs --out"),
    (["--images", "IMAGES", "--out", "e.txt"], "--out must name a .npy"),
    (["--images", "IMAGES", "--out", "e.npy", "--batch_size", "0"], "--batch_size must be at least 1"),
    (["--images", "/nonexistent/dir", "--out", "e.npy"], "/nonexistent/dir is neither"),
    (["--images", "EMPTY", "--out", "e.npy"], "no .jpg/.jpeg/.png/.bmp images under"),
    (["--images", "IMAGES", "--out", "e.npy", "--gpu_idx", "3"], "--gpu_idx asks for GPU 3"),
    (["--query", "/nonexistent.jpg", "--gallery", "IMAGES"], "cannot decode image /nonexistent.jpg"),
    (["--query", "Q"], "--query needs --gallery"),
])
def test_bad_input_is_one_line(setup, tmp_path, capsys, argv, words):
    (tmp_path / "empty").mkdir()
    replace = {"IMAGES": os.path.join(setup["data"], "images", "001"), "EMPTY": str(tmp_path / "empty"),
               "Q": setup["images"][0], "e.npy": str(tmp_path / "e.npy"), "e.txt": str(tmp_path / "e.txt")}
    code, _, err = _main(capsys, "--checkpoint", setup["params"], *[replace.get(a, a) for a in argv])
    assert code == 2, "bad input exits 2: %s" % err
    assert words in _one_error_line(err), "message must say %r: %r" % (words, err)


@pytest.mark.parametrize("flag", ["--checkpoint", "--images", "--out", "--query", "--gallery",
                                  "--gallery_embeddings", "--picture"])
def test_an_empty_path_flag_is_one_line(setup, tmp_path, capsys, flag):
    argv = ["--checkpoint", setup["params"], "--images", os.path.join(setup["data"], "images", "001"),
            "--out", str(tmp_path / "e.npy"), flag, ""]
    with pytest.raises(SystemExit) as exit_:
        embed.main(argv)
    line = _one_error_line(capsys.readouterr().err)
    assert exit_.value.code == 2 and "argument %s: an empty path names no file or folder" % flag in line, line
    assert not os.path.exists(str(tmp_path / "e.npy")), "nothing written"


def test_bad_checkpoint_is_one_line(setup, tmp_path, capsys):
    images = os.path.join(setup["data"], "images", "001")
    for checkpoint, words in ((str(tmp_path / "none.params"), "does not exist"),
                              (setup["data"] + "/train.txt", "must be a .params file")):
        code, _, err = _main(capsys, "--checkpoint", checkpoint, "--images", images, "--out",
                             str(tmp_path / "e.npy"))
        assert code == 2 and words in _one_error_line(err), "%s: %r" % (checkpoint, err)


def test_embed_a_split_file_writes_labels_that_evaluate_reads(setup, tmp_path, capsys):
    import evaluate
    out = str(tmp_path / "results" / "emb.npy")
    code, stdout, err = _main(capsys, "--checkpoint", setup["params"], "--images",
                              os.path.join(setup["data"], "test.txt"), "--out", out)
    assert code == 0, err
    labels = np.load(str(tmp_path / "results" / "emb.labels.npy"))
    paths = open(str(tmp_path / "results" / "emb.paths.txt")).read().split()
    split = [line.split() for line in open(os.path.join(setup["data"], "test.txt")).read().splitlines()[1:]]
    assert len(labels) == len(paths) == len(split), (len(labels), len(paths), len(split))
    assert "labels: %s" % str(tmp_path / "results" / "emb.labels.npy") in stdout, stdout
    code = evaluate.main(["--embeddings", out, "--recallk", "1,2", "--out", str(tmp_path / "m.json")])
    evaluated, err = capsys.readouterr()
    assert code == 0, err
    report = json.load(open(str(tmp_path / "m.json")))
    assert report["labels"] == str(tmp_path / "results" / "emb.labels.npy"), report
    assert set(report["metrics"]) >= {"R@1", "R@2"}, report


@needs_bf16
def test_bfloat16_embeddings_are_close_to_float32(setup, tmp_path, capsys):
    images = os.path.join(setup["data"], "images")
    want = _expected(setup["net"], setup["images"])
    for checkpoint, name in ((setup["params"], "p.npy"), (setup["symbol"], "s.npy")):
        code, _, err = _main(capsys, "--checkpoint", checkpoint, "--images", images, "--out",
                             str(tmp_path / name), "--dtype=bfloat16", "--batch_size", "5")
        assert code == 0, "embedding in bfloat16 failed: %s" % err
        got = np.load(str(tmp_path / name))
        assert got.dtype == np.float32 and got.shape == want.shape
        assert not np.allclose(got, want, atol=1e-6), "bfloat16 must compute differently from float32"
        worst = (got * want).sum(axis=1).min()  # both unit rows
        assert worst > 0.99, "%s: a bfloat16 row's cosine with float32's is %.5f" % (checkpoint, worst)


@pytest.mark.parametrize("cpu_flags, checkpoint, dtype, words", [
    # A conflict of flags (an ONNX model with --dtype) is refused alike on every CPU, before the
    # CPU is asked whether it can run the dtype.
    (["avx512_bf16"], "onnx", "bfloat16", "an ONNX model runs in ONNX Runtime"),
    ([], "onnx", "bfloat16", "an ONNX model runs in ONNX Runtime"),
    ([], "onnx", "float16", "an ONNX model runs in ONNX Runtime"),
    (["avx512_bf16"], "params", "float16", "--dtype=float16 runs on GPUs only (give --gpu_idx=0); on the CPU "
                                           "use --dtype=bfloat16"),
    ([], "params", "float16", "--dtype=float16 runs on GPUs only (give --gpu_idx=0); on the CPU use --dtype=float32"),
    ([], "params", "bfloat16", "--dtype=bfloat16 needs a CPU with BF16 instructions"),
], ids=["onnx-bfloat16-bf16cpu", "onnx-bfloat16-nobf16cpu", "onnx-float16-nobf16cpu", "float16-bf16cpu",
        "float16-nobf16cpu", "bfloat16-nobf16cpu"])
def test_dtype_it_cannot_run_is_one_line(setup, tmp_path, capsys, monkeypatch, cpu_flags, checkpoint, dtype, words):
    # The CPU's flags are written (utils.precision reads $EE_GLUON_CPUINFO): every case runs on every CPU.
    monkeypatch.setenv("EE_GLUON_CPUINFO", write_cpuinfo(tmp_path, cpu_flags))
    path = setup["params"] if checkpoint == "params" else setup["symbol"][: -len("-symbol.json")] + ".onnx"
    code, _, err = _main(capsys, "--checkpoint", path, "--images", setup["images"][0], "--out",
                         str(tmp_path / "e.npy"), "--dtype", dtype, "--gpu_idx=-1")
    assert code == 2 and words in _one_error_line(err), "%s --dtype=%s: %r" % (checkpoint, dtype, err)
    assert not os.path.exists(str(tmp_path / "e.npy")), "nothing written"
