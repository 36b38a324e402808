"""The exported network as an ONNX model, for runtimes other than MXNet (ONNX Runtime, TensorRT, ...).

MXNet's own exporter (``mxnet.onnx.export_model``, opset 13) converts the graph that
``model.export.export_network`` wrote: uint8 NHWC pixels in, embeddings out, the normalisation
inside. One operator needs help: the head's ``L2Normalization(mode='instance')``, which MXNet's
exporter refuses (it converts only the channel mode, which MXNet in turn refuses on a 2-D input).
:func:`_convert_l2_normalization` writes it as ONNX operators with MXNet's formula,
``x / sqrt(sum_j x_j^2 + eps)`` over every axis but the batch axis (eps = 1e-10), so a zero
embedding stays zero as in MXNet instead of becoming NaN as ONNX's ``LpNormalization`` would make it.

Run it with ONNX Runtime::

    import onnxruntime
    session = onnxruntime.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])
    embeddings = session.run(None, {'data': images_uint8_nhwc})[0]
"""
import logging
import os

import mxnet as mx
import numpy as np

logger = logging.getLogger(__name__)

OPSET = 13
MXNET_L2_EPS = 1e-10  # L2Normalization's default eps


def _require_onnx():
    try:
        import onnx  # noqa: F401  (MXNet's exporter imports it too)
    except ImportError:
        raise ValueError("ONNX export needs the onnx package: pip install onnx==1.16.2 "
                         "(pinned in requirements-common.txt)") from None


def _convert_l2_normalization(node, **kwargs):
    """MXNet ``L2Normalization`` (instance mode) → Mul, ReduceSum, Add, Sqrt, Div."""
    import onnx
    from mxnet.onnx.mx2onnx._op_translations._op_translations_opset12 import get_inputs

    name, inputs, attrs = get_inputs(node, kwargs)
    mode = attrs.get("mode", "instance")
    if mode != "instance":
        raise ValueError("ONNX export: L2Normalization mode %r is not used by this project's networks" % mode)
    eps = float(attrs.get("eps", MXNET_L2_EPS))
    x = inputs[0]

    def constant(suffix, values, dtype):
        return onnx.helper.make_node("Constant", [], [name + suffix], name=name + suffix,
                                     value=onnx.numpy_helper.from_array(np.array(values, dtype=dtype)))

    # Instance mode sums over every axis but the batch axis; the head's input is (N, D).
    return [
        constant("_axes", [1], np.int64),
        constant("_eps", eps, np.float32),
        onnx.helper.make_node("Mul", [x, x], [name + "_square"], name=name + "_square"),
        onnx.helper.make_node("ReduceSum", [name + "_square", name + "_axes"], [name + "_sum"],
                              keepdims=1, name=name + "_sum"),
        onnx.helper.make_node("Add", [name + "_sum", name + "_eps"], [name + "_plus_eps"], name=name + "_plus_eps"),
        onnx.helper.make_node("Sqrt", [name + "_plus_eps"], [name + "_norm"], name=name + "_norm"),
        onnx.helper.make_node("Div", [x, name + "_norm"], [name], name=name),
    ]


def _register_converters():
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph

    # The exporter looks converters up from the requested opset downwards; ours for opset 13
    # comes before MXNet's opset-12 one (MXNet 1.9 is the last release: this table will not move).
    MXNetGraph.registry_.setdefault(OPSET, {})["L2Normalization"] = _convert_l2_normalization


def export_onnx(symbol_file, params_file, onnx_file, image_size):
    """Convert an export of ``export_network`` to ``onnx_file``; any batch size, ``S x S`` images.

    Returns the path written. The input is named ``data`` (uint8, N x S x S x 3, RGB).
    """
    _require_onnx()
    _register_converters()
    symbol = mx.sym.load(symbol_file)
    # HybridBlock.export saves 'arg:NAME' and 'aux:NAME'; the exporter wants plain names.
    params = {key.split(":", 1)[1]: value for key, value in mx.nd.load(params_file).items()}
    import onnx
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph

    # MXNet's export_model declares the newest opset the onnx package knows, while its converters
    # were written for 12 and 13; the graph is built and declared at 13, with the IR version of
    # that opset (7), which every runtime since ONNX Runtime 1.6 reads.
    graph = MXNetGraph().create_onnx_graph_proto(
        symbol, params, [(1, image_size, image_size, 3)], [onnx.TensorProto.UINT8], opset_version=OPSET,
        dynamic=True, dynamic_input_shapes=[(None, image_size, image_size, 3)])
    # The weights are initializers; listed as graph inputs too (MXNet's habit) they would be
    # overridable inputs that a runtime cannot fold.
    weights = {tensor.name for tensor in graph.initializer}
    kept = [value for value in graph.input if value.name not in weights]
    del graph.input[:]
    graph.input.extend(kept)
    onnx_model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                        producer_name="ee-gluon (mxnet %s)" % mx.__version__)
    onnx_model.ir_version = 7
    onnx.checker.check_model(onnx_model)
    tmp_file = onnx_file + ".tmp"
    with open(tmp_file, "wb") as handle:
        handle.write(onnx_model.SerializeToString())
    os.replace(tmp_file, onnx_file)
    logger.info("exported the network as ONNX (opset %d) to %s", OPSET, onnx_file)
    return onnx_file
