"""Export a trained embedding network as an MXNet symbol + parameters, usable without this code.

The exported graph is the whole ``EmbeddingNetwork``: uint8 NHWC RGB pixels in, embeddings out.
The cast to float, the ImageNet mean/std normalisation and (when the network was built with it)
the L2 normalisation are inside the graph, so a user only resizes images to ``S x S``::

    import mxnet as mx
    net = mx.gluon.SymbolBlock.imports('model-symbol.json', ['data'], 'model-0000.params')
    embeddings = net(mx.nd.array(images_uint8_nhwc, dtype='uint8'))   # (N, embed_dim)

The same graph is written as ``PREFIX.onnx`` for runtimes without MXNet (``model.onnx_export``)::

    import onnxruntime
    session = onnxruntime.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])
    embeddings = session.run(None, {'data': images_uint8_nhwc})[0]

``PREFIX-meta.json`` records what the graph expects and returns (see ``export_network``).
"""
import glob
import json
import logging
import os

import mxnet as mx

from utils.imagenet import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB

from .onnx_export import OPSET as ONNX_OPSET

logger = logging.getLogger(__name__)

META_FORMAT_VERSION = 1


SYMBOL_SUFFIX = "-symbol.json"


def exported_files(path_prefix, epoch=0):
    """``(symbol_file, params_file, meta_file)`` of an export under ``path_prefix``."""
    return ("%s%s" % (path_prefix, SYMBOL_SUFFIX), "%s-%04d.params" % (path_prefix, epoch),
            "%s-meta.json" % path_prefix)


def exported_onnx_file(path_prefix):
    """The ONNX model of an export under ``path_prefix``."""
    return "%s.onnx" % path_prefix


def export_prefix(symbol_file):
    """``PREFIX`` of ``PREFIX-symbol.json``, or None when ``symbol_file`` is no exported graph."""
    return symbol_file[: -len(SYMBOL_SUFFIX)] if symbol_file.endswith(SYMBOL_SUFFIX) else None


def exported_params_files(path_prefix):
    """Every ``PREFIX-NNNN.params`` beside an export, sorted."""
    return sorted(glob.glob(glob.escape(path_prefix) + "-[0-9][0-9][0-9][0-9].params"))


def _first_context(net):
    contexts = net.collect_params().list_ctx()
    return contexts[0]


def _metadata(net, image_size, embed_dim, symbol_file, params_file, onnx_file=None):
    """The content of ``PREFIX-meta.json`` (see :func:`export_network`)."""
    head = getattr(net, "head", None)
    backbone = getattr(net, "backbone", None)
    return {
        "format_version": META_FORMAT_VERSION,
        "symbol_file": os.path.basename(symbol_file),
        "params_file": os.path.basename(params_file),
        "input_names": ["data"],
        "onnx_file": os.path.basename(onnx_file) if onnx_file else None,
        "onnx_opset": ONNX_OPSET if onnx_file else None,
        "image_size": image_size,
        "embed_dim": embed_dim,
        "backbone": getattr(backbone, "zoo_name", None),
        "input": {"name": "data", "dtype": "uint8", "layout": "NHWC", "channels": "RGB",
                  "value_range": [0, 255], "shape": ["N", image_size, image_size, 3]},
        "output": {"dtype": "float32", "shape": ["N", embed_dim]},
        "normalization_inside": {"mean_rgb": list(IMAGENET_MEAN_RGB), "std_rgb": list(IMAGENET_STD_RGB),
                                 "formula": "(x / 255 - mean) / std"},
        "l2_normalized": bool(getattr(head, "l2_normalize", False)),
        "resize": "bilinear (OpenCV INTER_LINEAR) of the whole image to image_size x image_size",
        "mxnet_version": mx.__version__,
    }


def export_network(net, path_prefix, image_size, ctx=None, onnx=True):
    """Write ``PREFIX-symbol.json``, ``PREFIX-0000.params``, ``PREFIX.onnx`` and ``PREFIX-meta.json``.

    The network is hybridized (when it is not already), run once on a zero uint8 batch of shape
    (1, S, S, 3) to build its graph, and exported with ``HybridBlock.export``. Parameters held
    on several devices are averaged (identical after data-parallel training). The graph accepts
    any batch size; it was trained at ``S x S``.

    Parameters
    ----------
    net : model.EmbeddingNetwork
        Initialised (trained) network.
    path_prefix : str
        Prefix of the three files; its directory is created if missing.
    image_size : int
        Side S of the square training images, recorded in the metadata.
    ctx : mxnet.Context, optional
        Device of the dummy forward pass; default: the first device holding the parameters.
    onnx : bool
        Also convert the graph to ONNX (``model.onnx_export``), for runtimes without MXNet.

    Returns
    -------
    (str, str)
        ``(symbol_file, params_file)``; ``mx.gluon.SymbolBlock.imports(symbol_file, ['data'],
        params_file)`` loads them.

    The metadata file holds the ONNX file's name and opset, ``image_size``, ``embed_dim``, ``backbone``, ``input`` (name
    ``data``, uint8, NHWC, RGB, values 0-255), ``normalization_inside`` (mean/std of the
    ImageNet statistics, applied in the graph), ``l2_normalized`` (whether the outputs are unit
    vectors), the file names and the MXNet version.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError("image_size must be a positive integer, got %r" % (image_size,))
    ctx = ctx or _first_context(net)
    directory = os.path.dirname(os.path.abspath(path_prefix))
    os.makedirs(directory, exist_ok=True)
    if not getattr(net, "_active", False):
        net.hybridize()
    dummy = mx.nd.zeros((1, image_size, image_size, 3), dtype="uint8", ctx=ctx)
    out = net(dummy)
    embed_dim = int(out.shape[1])
    net.export(path_prefix, epoch=0)
    symbol_file, params_file, meta_file = exported_files(path_prefix)
    onnx_file = None
    if onnx:
        from .onnx_export import export_onnx  # imports onnx: only when asked
        onnx_file = export_onnx(symbol_file, params_file, exported_onnx_file(path_prefix), image_size)
    meta = _metadata(net, image_size, embed_dim, symbol_file, params_file, onnx_file)
    with open(meta_file + ".tmp", "w") as handle:
        json.dump(meta, handle, indent=2, sort_keys=True)
    os.replace(meta_file + ".tmp", meta_file)
    logger.info("exported the network to %s and %s (metadata %s)", symbol_file, params_file, meta_file)
    return symbol_file, params_file
