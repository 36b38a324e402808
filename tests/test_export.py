"""Export: symbol + params that load with SymbolBlock.imports in a process without this code."""
import json
import os
import subprocess
import sys
import textwrap

import mxnet as mx
import numpy as np
import pytest

import model
from conftest import SUBPROCESS_TIMEOUT, subprocess_env
from model.export import export_network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCHES = (1, 3, 5)

# Runs with -I (no PYTHONPATH, no user site, no script directory on sys.path) from the export
# directory: only MXNet and NumPy are importable, none of the repository's packages.
_LOADER = textwrap.dedent("""
    import importlib.util, os, sys, warnings
    import mxnet as mx
    import numpy as np
    root = os.path.realpath(sys.argv[1])
    assert root not in [os.path.realpath(p) for p in sys.path if p], "repository on sys.path"
    for name in ("model", "utils", "loss", "embed"):
        assert importlib.util.find_spec(name) is None, name + " must not be importable"
    for name in ("model", "data", "utils", "loss", "gluoncv"):
        assert name not in sys.modules, name + " must not be imported"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = mx.gluon.SymbolBlock.imports("net-symbol.json", ["data"], "net-0000.params")
    for batch in sys.argv[2:]:
        images = np.load("images%s.npy" % batch)
        np.save("out%s.npy" % batch, net(mx.nd.array(images, dtype="uint8")).asnumpy())
    for name in ("model", "data", "utils", "loss", "gluoncv"):
        assert name not in sys.modules, name + " was imported by loading the model"
    print("loaded")
""")


def _images(batch, size=32, seed=0):
    return np.random.default_rng(seed + batch).integers(0, 256, size=(batch, size, size, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    net = model.build_network("googlenet", embed_dim=8)
    model.initialize_network(net, [mx.cpu(0), mx.cpu(1)], pretrained="none")
    symbol_file, params_file = export_network(net, str(folder / "sub" / "net"), 32)
    return net, folder / "sub", symbol_file, params_file


def test_files_and_metadata(exported):
    _, folder, symbol_file, params_file = exported
    assert symbol_file == str(folder / "net-symbol.json"), "symbol file %s" % symbol_file
    assert params_file == str(folder / "net-0000.params"), "params file %s" % params_file
    assert os.path.isfile(symbol_file) and os.path.isfile(params_file), "export files missing"
    meta = json.load(open(str(folder / "net-meta.json")))
    assert meta["image_size"] == 32 and meta["embed_dim"] == 8, "size and dim recorded: %r" % meta
    assert meta["backbone"] == "googlenet", "backbone recorded: %r" % meta
    assert meta["input"]["dtype"] == "uint8" and meta["input"]["layout"] == "NHWC" and \
        meta["input"]["channels"] == "RGB", "input format recorded: %r" % meta["input"]
    assert meta["l2_normalized"] is True, "default networks return unit vectors"
    assert meta["normalization_inside"]["mean_rgb"] == [0.485, 0.456, 0.406], "mean recorded"
    assert (meta["symbol_file"], meta["params_file"]) == ("net-symbol.json", "net-0000.params"), \
        "file names recorded relative to the metadata: %r" % meta


def test_loads_without_the_repository_and_matches(exported):
    net, folder, _, _ = exported
    for batch in BATCHES:
        np.save(str(folder / ("images%d.npy" % batch)), _images(batch))
    proc = subprocess.run([sys.executable, "-I", "-c", _LOADER, ROOT] + [str(b) for b in BATCHES],
                          cwd=str(folder), env=subprocess_env(PYTHONPATH=None), capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0 and "loaded" in proc.stdout, "loading failed: %s" % proc.stderr[-3000:]
    for batch in BATCHES:
        want = net(mx.nd.array(_images(batch), dtype="uint8")).asnumpy()
        got = np.load(str(folder / ("out%d.npy" % batch)))
        assert got.shape == (batch, 8), "batch %d: exported output shape %s" % (batch, got.shape)
        assert np.allclose(got, want, atol=1e-5), \
            "batch %d: exported network differs by %g" % (batch, np.abs(got - want).max())


def test_unnormalised_network_is_recorded(tmp_path):
    net = model.build_network("googlenet", embed_dim=4, l2_normalize=False)
    model.initialize_network(net, [mx.cpu()], pretrained="none")
    net.hybridize(static_alloc=True)
    export_network(net, str(tmp_path / "raw"), 32)
    meta = json.load(open(str(tmp_path / "raw-meta.json")))
    assert meta["l2_normalized"] is False, "l2_normalized must follow the head: %r" % meta


def test_bad_image_size_is_one_line_error(tmp_path):
    net = model.build_network("googlenet", embed_dim=4)
    with pytest.raises(ValueError, match="image_size must be a positive integer"):
        export_network(net, str(tmp_path / "x"), 0)


# ONNX Runtime in a process without MXNet and without this repository: only onnxruntime and NumPy.
_ONNX_LOADER = textwrap.dedent("""
    import sys
    import numpy as np
    import onnxruntime
    session = onnxruntime.InferenceSession("net.onnx", providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["data"], [i.name for i in session.get_inputs()]
    for batch in sys.argv[1:]:
        np.save("onnx%s.npy" % batch, session.run(None, {"data": np.load("images%s.npy" % batch)})[0])
    assert "mxnet" not in sys.modules, "onnxruntime needed MXNet"
    print("loaded")
""")


@pytest.mark.parametrize("l2_normalize", [True, False])
def test_onnx_runtime_gives_mxnets_embeddings(tmp_path, l2_normalize):
    net = model.build_network("googlenet", embed_dim=8, l2_normalize=l2_normalize)
    model.initialize_network(net, [mx.cpu(0)], pretrained="none")
    export_network(net, str(tmp_path / "net"), 32)
    meta = json.load(open(str(tmp_path / "net-meta.json")))
    assert meta["onnx_file"] == "net.onnx" and meta["onnx_opset"] == 13, meta
    for batch in BATCHES:
        np.save(str(tmp_path / ("images%d.npy" % batch)), _images(batch))
    proc = subprocess.run([sys.executable, "-I", "-c", _ONNX_LOADER] + [str(b) for b in BATCHES],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          env=subprocess_env())
    assert proc.returncode == 0 and "loaded" in proc.stdout, proc.stderr[-2000:]
    for batch in BATCHES:
        want = net(mx.nd.array(_images(batch), dtype="uint8")).asnumpy()
        got = np.load(str(tmp_path / ("onnx%d.npy" % batch)))
        assert got.shape == want.shape, "batch %d: ONNX gives %s, MXNet %s" % (batch, got.shape, want.shape)
        assert np.abs(got - want).max() <= 1e-4, "batch %d: ONNX and MXNet differ by %.3g" % (
            batch, np.abs(got - want).max())
    if l2_normalize:
        norms = np.linalg.norm(got, axis=1)
        assert np.allclose(norms, 1.0, atol=1e-5), "ONNX embeddings are unit vectors: %r" % norms


def test_onnx_l2_normalization_keeps_a_zero_embedding_zero(tmp_path):
    # MXNet's L2Normalization divides by sqrt(sum x^2 + 1e-10); ONNX's LpNormalization would give NaN.
    import onnxruntime
    from model.onnx_export import export_onnx
    data = mx.sym.var("data")
    flat = mx.sym.reshape(mx.sym.cast(data, "float32"), shape=(0, -1))
    symbol = mx.sym.L2Normalization(mx.sym.broadcast_mul(flat, mx.sym.var("w", shape=(1, 1))), mode="instance")
    symbol.save(str(tmp_path / "n-symbol.json"))
    mx.nd.save(str(tmp_path / "n-0000.params"), {"arg:w": mx.nd.array([[0.5]])})
    export_onnx(str(tmp_path / "n-symbol.json"), str(tmp_path / "n-0000.params"), str(tmp_path / "n.onnx"), 2)
    images = np.zeros((2, 2, 2, 3), np.uint8)
    images[1] = np.arange(12).reshape(2, 2, 3)
    got = onnxruntime.InferenceSession(str(tmp_path / "n.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"data": images})[0]
    flat_images = images.reshape(2, -1).astype(np.float64) * 0.5
    want = flat_images / np.sqrt((flat_images ** 2).sum(axis=1, keepdims=True) + 1e-10)
    assert np.array_equal(got[0], np.zeros(12, np.float32)), "a zero row stays zero: %r" % got[0]
    assert np.allclose(got, want, atol=1e-6), "MXNet's formula: %r vs %r" % (got, want)
