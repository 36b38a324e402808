"""inference.trained_network: one loader for every tool, honouring the run's normalisation."""
import json

import mxnet as mx
import numpy as np
import pytest

import model
from model.export import export_network
from inference.trained_network import load_network

SIZE = 32


def _saved_run(folder, loss_name, l2_normalize):
    net = model.build_network("googlenet", embed_dim=8, l2_normalize=l2_normalize)
    model.initialize_network(net, [mx.cpu()], pretrained="none")
    net(mx.nd.zeros((1, SIZE, SIZE, 3), dtype="uint8"))
    params = str(folder / "model_last.params")
    net.save_parameters(params)
    with open(str(folder / "args.json"), "w") as handle:
        json.dump({"backbone": "googlenet", "embed_dim": 8, "image_size": SIZE, "loss": loss_name}, handle)
    symbol, _ = export_network(net, str(folder / "export" / "model"), SIZE)
    return params, symbol


@pytest.mark.parametrize("loss_name, unit", [("npair", False), ("symm_npair", False), ("hphn_triplet", True)])
def test_params_and_export_give_the_same_embeddings(tmp_path, loss_name, unit):
    params, symbol = _saved_run(tmp_path, loss_name, l2_normalize=unit)
    images = mx.nd.array(np.random.RandomState(0).randint(0, 256, (5, SIZE, SIZE, 3)), dtype="uint8")
    from_params, size_p = load_network(params, [mx.cpu()])
    from_export, size_e = load_network(symbol, [mx.cpu()])
    a, b = from_params(images).asnumpy(), from_export(images).asnumpy()
    assert size_p == size_e == SIZE, "image size from args.json and from the export metadata"
    assert np.allclose(a, b, atol=1e-5), "%s: .params gives %s, the export %s" % (loss_name, a[0], b[0])
    norms = np.linalg.norm(a, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-3) == unit, \
        "%s run: unit rows %s expected, norms %s" % (loss_name, unit, norms)


def test_a_run_without_loss_in_args_json_is_normalised(tmp_path):
    params, _ = _saved_run(tmp_path, "hphn_triplet", l2_normalize=True)
    with open(str(tmp_path / "args.json"), "w") as handle:
        json.dump({"backbone": "googlenet", "embed_dim": 8, "image_size": SIZE}, handle)
    net, _ = load_network(params, [mx.cpu()])
    out = net(mx.nd.zeros((2, SIZE, SIZE, 3), dtype="uint8")).asnumpy()
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-3), "the default loss wants unit rows"
