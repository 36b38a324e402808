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
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-I", "-c", _LOADER, ROOT] + [str(b) for b in BATCHES],
                          cwd=str(folder), env=env, capture_output=True, text=True, timeout=120)
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
