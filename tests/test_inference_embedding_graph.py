"""inference.embedding_graph and inference.batchnorm_folding: the graph a trained network embeds with
in --dtype, and the BatchNorm folding it uses, against NumPy and the unfolded network."""
import json
import warnings

import mxnet as mx
import numpy as np
import pytest
from conftest import needs_bf16
from test_utils_precision import batch, build_net, convolution_weights, cosines

from inference.batch_embedding import embed_batch
from inference.batchnorm_folding import FOLDED_BIAS_SUFFIX, fold_batchnorm
from inference.embedding_graph import for_inference

CPU = [mx.cpu(0)]


def ops(symbol):
    return [node["op"] for node in json.loads(symbol.tojson())["nodes"] if node["op"] != "null"]


class ConvBN(mx.gluon.HybridBlock):
    """conv → BatchNorm, and optionally the conv's raw output added back (then it cannot fold)."""

    def __init__(self, use_bias, scale, reuse_conv_output=False):
        super().__init__()
        self.reuse = reuse_conv_output
        with self.name_scope():
            self.conv = mx.gluon.nn.Conv2D(4, 3, padding=1, use_bias=use_bias, in_channels=3)
            self.bn = mx.gluon.nn.BatchNorm(scale=scale, epsilon=1e-5, in_channels=4)

    def hybrid_forward(self, F, x):
        y = self.conv(x)
        return self.bn(y) + y if self.reuse else self.bn(y)


def conv_bn(use_bias, scale, reuse=False):
    rng = np.random.RandomState(0)
    block = ConvBN(use_bias, scale, reuse)
    block.initialize(mx.init.Normal(0.5))
    block.bn.gamma.set_data(mx.nd.array(rng.uniform(0.5, 2.0, 4)))
    block.bn.beta.set_data(mx.nd.array(rng.normal(0, 1, 4)))
    block.bn.running_mean.set_data(mx.nd.array(rng.normal(0, 1, 4)))
    block.bn.running_var.set_data(mx.nd.array(rng.uniform(0.1, 3.0, 4)))
    if use_bias:
        block.conv.bias.set_data(mx.nd.array(rng.normal(0, 1, 4)))
    block.hybridize()
    x = mx.nd.array(rng.normal(0, 1, (2, 3, 5, 5)))
    return block, x


def folded_of(block, x):
    inputs, graph = block._get_graph(x)
    params = {name: param.data() for name, param in block.collect_params().items()}
    return fold_batchnorm(graph, params), inputs


def symbol_block(symbol, inputs, params):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")  # the input's dtype, until called
        block = mx.gluon.SymbolBlock(symbol, inputs)
    block.collect_params().load_dict(params, ctx=mx.cpu())
    return block


@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("scale", [True, False])
def test_folded_weights_follow_the_formula_and_embed_alike(use_bias, scale):
    block, x = conv_bn(use_bias, scale)
    want = block(x).asnumpy()  # MXNet's BatchNorm operator, inference mode
    (symbol, params), inputs = folded_of(block, x)
    assert ops(symbol) == ["Convolution"], "the BatchNorm is gone: %s" % ops(symbol)
    # The formula, written out: s = gamma / sqrt(var + eps) (gamma = 1 when not scaled).
    gamma = block.bn.gamma.data().asnumpy() if scale else np.ones(4)
    s = gamma / np.sqrt(block.bn.running_var.data().asnumpy() + 1e-5)
    bias = block.conv.bias.data().asnumpy() if use_bias else 0.0
    w = block.conv.weight.data().asnumpy()
    conv_name = [n["name"] for n in json.loads(symbol.tojson())["nodes"] if n["op"] == "Convolution"][0]
    np.testing.assert_allclose(params[block.conv.weight.name].asnumpy(), w * s[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(params[conv_name + FOLDED_BIAS_SUFFIX].asnumpy(),
                               (bias - block.bn.running_mean.data().asnumpy()) * s + block.bn.beta.data().asnumpy(),
                               rtol=1e-5, atol=1e-6)
    assert not any("running" in name or "gamma" in name for name in params), "BatchNorm's parameters dropped"
    folded = symbol_block(symbol, inputs, params)
    np.testing.assert_allclose(folded(x).asnumpy(), want, rtol=1e-5, atol=1e-5)


def test_a_convolution_whose_output_is_read_twice_is_not_folded():
    block, x = conv_bn(False, True, reuse=True)
    want = block(x).asnumpy()
    (symbol, params), inputs = folded_of(block, x)
    assert "BatchNorm" in ops(symbol), "the raw output is needed by the sum: no folding"
    folded = symbol_block(symbol, inputs, params)
    np.testing.assert_allclose(folded(x).asnumpy(), want, rtol=1e-6)


@pytest.mark.parametrize("backbone", ["googlenet", "resnet18_v1"])
def test_float32_folding_embeds_like_the_network(backbone):
    net = build_net("float32", backbone, 32)
    images, _ = batch(size=4, image_size=64)
    want = net(images).asnumpy()
    folded = for_inference(net, "float32", CPU, fold=True)
    graph = folded._cached_graph[1]
    assert "BatchNorm" not in ops(graph), "%s: every BatchNorm follows a convolution" % backbone
    np.testing.assert_allclose(folded(images).asnumpy(), want, rtol=1e-4, atol=1e-5)


def test_float32_inference_is_the_network_itself():
    net = build_net("float32")
    assert for_inference(net, "float32", CPU) is net


@needs_bf16
@pytest.mark.parametrize("contexts", [[mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]])
def test_bfloat16_inference_casts_weights_once_and_embeds_close_to_float32(contexts):
    reference = build_net("float32", "googlenet", 32)
    images, _ = batch(size=8, image_size=64)
    want = reference(images).asnumpy()
    low = for_inference(reference, "bfloat16", contexts)
    assert low is not reference, "the inference network is a converted copy"
    dtypes = {name: np.dtype(param.dtype) for name, param in low.collect_params().items()}
    bf16 = {name for name, dtype in dtypes.items() if dtype.itemsize == 2}
    kept = {name for name, dtype in dtypes.items() if dtype == np.float32}
    first, others = convolution_weights(reference)
    assert {reference.head.embedding.weight.name, first} <= kept, \
        "the head's Dense and the first convolution stay float32"
    assert set(others) <= bf16, "the other convolutions' weights are stored in bfloat16"
    got = embed_batch(low, images, contexts)
    assert got.dtype == np.float32
    assert not np.array_equal(got, want), "bfloat16 must actually compute differently from float32"
    worst = cosines(got, want).min()
    assert worst > 0.99, "cosine of a bfloat16 row with its float32 row %.5f <= 0.99" % worst
    assert np.array_equal(reference(images).asnumpy(), want), "the loaded network is left as it was"
