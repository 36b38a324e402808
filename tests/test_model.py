"""The embedding network: output shape and norm, registry, weights loading, input normalisation."""
import mxnet as mx
import numpy as np
import pytest
from gluoncv import model_zoo

import model


def _images(batch, size, seed=0):
    rng = np.random.default_rng(seed)
    return mx.nd.array(rng.integers(0, 256, size=(batch, size, size, 3)), dtype="uint8")


@pytest.mark.parametrize("name", sorted(model.BACKBONES))
def test_output_shape_and_unit_norm_hybridized(name):
    net = model.build_network(name, embed_dim=24)
    model.initialize_network(net, [mx.cpu(0)], pretrained="none")
    imperative = net(_images(3, 64)).asnumpy()
    net.hybridize(static_alloc=True, static_shape=False)
    for batch in (3, 5):
        out = net(_images(batch, 64)).asnumpy()
        assert out.shape == (batch, 24), "%s: output shape %s" % (name, out.shape)
        norms = np.linalg.norm(out, axis=1)
        assert np.allclose(norms, 1.0, atol=1e-4), "%s: embeddings not unit norm: %s" % (name, norms)
    again = net(_images(3, 64)).asnumpy()
    assert np.allclose(again, imperative, atol=1e-5), "%s: hybridized differs from imperative" % name


def test_unnormalised_option():
    net = model.build_network("googlenet", embed_dim=8, l2_normalize=False)
    model.initialize_network(net, [mx.cpu()], pretrained="none")
    norms = np.linalg.norm(net(_images(2, 64)).asnumpy(), axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3), "l2_normalize=False must return raw embeddings"


def test_input_normalization_matches_formula():
    block = model.InputNormalization()
    block.initialize()
    images = _images(2, 5, seed=1)
    got = block(images).asnumpy()
    x = images.asnumpy().astype(np.float64).transpose(0, 3, 1, 2) / 255.0
    mean = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    want = (x - mean) / std
    assert got.shape == (2, 3, 5, 5), "NHWC uint8 must become NCHW: %s" % (got.shape,)
    assert np.allclose(got, want, atol=1e-4), "normalisation differs by %g" % np.abs(got - want).max()


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError, match="googlenet"):
        model.get_backbone("vgg99")
    assert isinstance(model.get_backbone("GoogLeNet"), model.ZooBackbone), "names are case-insensitive"


def test_building_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    model.build_network("googlenet", 16)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir()), \
        "building a network must not download weights"


def test_zoo_weights_are_loaded_into_the_backbone(tmp_path):
    zoo = model_zoo.get_model("googlenet", pretrained=False)
    zoo.initialize(mx.init.Normal(0.5))
    zoo(mx.nd.zeros((1, 3, 224, 224)))  # the zoo head pools 7 x 7
    path = str(tmp_path / "googlenet-test.params")
    zoo.save_parameters(path)
    net = model.build_network("googlenet", 16)
    model.initialize_network(net, [mx.cpu(0), mx.cpu(1)], pretrained=path)
    want = zoo.inception5b.collect_params()
    got = net.backbone.features[15].collect_params()
    for (wname, wparam), (gname, gparam) in zip(sorted(want.items()), sorted(got.items())):
        for ctx in (mx.cpu(0), mx.cpu(1)):
            assert np.array_equal(gparam.data(ctx).asnumpy(), wparam.data().asnumpy()), \
                "%s not loaded on %s" % (gname, ctx)


def test_mismatched_weights_name_the_parameter(tmp_path):
    zoo = model_zoo.get_model("resnet18_v1", pretrained=False)
    zoo.initialize()
    zoo(mx.nd.zeros((1, 3, 32, 32)))
    path = str(tmp_path / "resnet.params")
    zoo.save_parameters(path)
    net = model.build_network("googlenet", 16)
    with pytest.raises(ValueError, match=r"parameter conv1\.0\.weight is missing"):
        model.initialize_network(net, [mx.cpu()], pretrained=path)
    (tmp_path / "junk.params").write_bytes(b"not a params file")
    with pytest.raises(ValueError, match="not an MXNet .params file"):
        model.initialize_network(model.build_network("googlenet", 16), [mx.cpu()],
                                 pretrained=str(tmp_path / "junk.params"))


def test_offline_imagenet_weights_give_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    import gluoncv.model_zoo.model_store as store

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(store, "download", offline)
    net = model.build_network("googlenet", 16)
    with pytest.raises(ValueError) as info:
        model.initialize_network(net, [mx.cpu()], pretrained="imagenet")
    message = str(info.value)
    assert "\n" not in message, "the error must be one line: %r" % message
    assert str(tmp_path / "models" / "googlenet-") in message, "must name the expected file: %r" % message
    assert "--pretrained=none" in message, "must name the flag that skips it: %r" % message
