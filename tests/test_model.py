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


def _zoo_with_weights(name, seed):
    """A zoo network (never downloaded) with random, distinct weights and running statistics."""
    zoo = model_zoo.get_model(name, pretrained=False)
    zoo.initialize(mx.init.Normal(0.5))
    zoo(mx.nd.zeros((1, 3, 224, 224)))  # finish deferred shapes (GoogLeNet's head pools 7 x 7)
    rng = np.random.default_rng(seed)
    for param in zoo.collect_params().values():
        param.set_data(mx.nd.array(rng.normal(size=param.shape) + 1.0, dtype=param.dtype))
    return zoo


# The three ways a zoo network's parameters get written: structural names (save_parameters), names
# relative to the network prefix (the deprecated save_params, older model-store files), and full
# names (a plain collect_params().save).
ZOO_WRITERS = {
    "save_parameters": lambda zoo, path: zoo.save_parameters(path),
    "save_params": lambda zoo, path: zoo.collect_params().save(path, strip_prefix=zoo.prefix),
    "collect_params_save": lambda zoo, path: zoo.collect_params().save(path),
}


@pytest.mark.parametrize("writer", sorted(ZOO_WRITERS))
@pytest.mark.parametrize("name", ["googlenet", "resnet18_v1"])
def test_zoo_weights_load_however_they_were_saved(tmp_path, name, writer):
    zoo = _zoo_with_weights(name, seed=1)
    path = str(tmp_path / ("%s-%s.params" % (name, writer)))
    ZOO_WRITERS[writer](zoo, path)
    keys = list(mx.nd.load(path))
    assert any("." in k for k in keys) == (writer == "save_parameters"), "writer %s wrote %s" % (writer, keys[:3])
    model_zoo.get_model(name, pretrained=False)  # one more zoo network: the prefix counters move on
    net = model.build_network(name, 16)
    assert net.backbone.zoo_prefix != zoo.prefix, "the test should load into a differently prefixed network"
    model.initialize_network(net, [mx.cpu(0)], pretrained=path)
    # Every feature parameter holds the source's value under the same structural name.
    source = zoo._collect_params_with_prefix()
    got = net.backbone.zoo_structured_params()
    assert got, "no backbone parameters"
    for key, param in got.items():
        assert np.array_equal(param.data().asnumpy(), source[key].data().asnumpy()), \
            "%s (%s): %s not loaded" % (name, writer, key)
    if writer != "collect_params_save":
        # Gluon's own loader reads these two files: the backbone matches what it loads.
        reference = model_zoo.get_model(name, pretrained=False)
        reference.load_parameters(path, ctx=mx.cpu())
        loaded = reference._collect_params_with_prefix()
        for key, param in got.items():
            assert np.array_equal(param.data().asnumpy(), loaded[key].data().asnumpy()), \
                "%s (%s): %s differs from load_parameters" % (name, writer, key)


@pytest.mark.parametrize("name", ["googlenet", "resnet18_v1"])
def test_a_network_file_of_main_is_a_valid_pretrained(tmp_path, name):
    # main.py saves the whole embedding network (net.save_parameters): "backbone.features.0.0.weight", ...
    trained = model.build_network(name, embed_dim=16)
    model.initialize_network(trained, [mx.cpu()], pretrained="none")
    model.materialize(trained, [mx.cpu()], 32)
    path = str(tmp_path / "model_best.params")
    trained.save_parameters(path)
    net = model.build_network(name, embed_dim=8)  # another head: only the backbone is taken
    model.initialize_network(net, [mx.cpu(0), mx.cpu(1)], pretrained=path)
    want = trained.backbone._collect_params_with_prefix()
    for key, param in net.backbone._collect_params_with_prefix().items():
        for ctx in (mx.cpu(0), mx.cpu(1)):
            assert np.array_equal(param.data(ctx).asnumpy(), want[key].data().asnumpy()), \
                "%s: backbone %s not loaded on %s" % (name, key, ctx)
    images = _images(2, 32)
    features = [n.backbone(n.normalize(images)).asnumpy() for n in (trained, net)]
    assert np.allclose(features[0], features[1], atol=1e-5), "%s: same backbone, different features" % name
    other = "resnet18_v1" if name == "googlenet" else "googlenet"
    with pytest.raises(ValueError, match=r"does not match backbone %s: parameter backbone\.features\." % other):
        model.initialize_network(model.build_network(other, 8), [mx.cpu()], pretrained=path)


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
