"""The graph a trained network embeds with in ``--dtype`` (embed.py, evaluate.py).

float32 keeps the network as loaded: the operators training evaluates with. bfloat16 and float16:

1. each BatchNorm is folded into the convolution before it (``inference.batchnorm_folding``), which
   inference allows (at inference a BatchNorm is a per-channel affine map), so that the folded
   network runs no BatchNorm at all (what that saves: docs/performance.md, Inside the code);
2. the folded graph is converted by AMP's inference conversion (``amp.convert_hybrid_block``), as
   ``utils.precision.use_mixed_precision`` converts training's (the first convolution and the
   head's Dense layer stay float32), with the weights of the lower-precision layers cast once,
   ahead (``cast_optional_params``), instead of at every batch.

The result is a SymbolBlock with its own copy of the parameters, for inference only.
"""
import warnings

import mxnet as mx
from mxnet.contrib import amp

from utils.precision import float32_layers

from .batchnorm_folding import fold_batchnorm


def for_inference(net, dtype, contexts, fold=None):
    """A network that embeds like the loaded, hybridized ``net``, in ``dtype``, on ``contexts``.

    ``fold`` (default: for bfloat16 and float16, not for float32) folds the BatchNorms into their
    convolutions; float32 without folding returns ``net`` itself.
    """
    fold = dtype != "float32" if fold is None else fold
    if dtype == "float32" and not fold:
        return net
    if not net._active:
        raise ValueError("for_inference needs a hybridized network (net.hybridize() first)")
    # The Block's own trace; the input's shape and values are not used, only its being one array.
    inputs, graph = net._get_graph(mx.nd.zeros((1, 1, 1, 3), dtype="uint8"))
    params = {name: param._reduce() for name, param in net.collect_params().items()}
    if fold:
        graph, params = fold_batchnorm(graph, params)
    with warnings.catch_warnings():
        # A SymbolBlock's input has no dtype until the first batch arrives; MXNet warns about it.
        warnings.filterwarnings("ignore", message="Cannot decide type")
        block = mx.gluon.SymbolBlock(graph, inputs)
        block.collect_params().load_dict(params, ctx=list(contexts))
        if dtype != "float32":
            block = amp.convert_hybrid_block(block, target_dtype=dtype, excluded_sym_names=float32_layers(graph),
                                             ctx=list(contexts), cast_optional_params=True)
    block.hybridize(static_alloc=True)
    return block
