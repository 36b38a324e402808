"""Load a trained network, for every tool: a ``.params`` checkpoint with its run's args.json, an
export (``PREFIX-symbol.json``, see ``model.export``), or its ONNX model (``PREFIX.onnx``, run by
ONNX Runtime).

A ``.params`` checkpoint is rebuilt as its run built it: backbone, embed_dim and image_size from
the args.json beside it (``utils.run.folder``), or from the caller where it has none, and the L2
normalisation of the head as the run's loss wants it (``loss.wants_unit_embeddings``): an
npair or symm_* run gives the same raw embeddings through its ``.params`` as through its export.
"""
import json
import logging
import os
import warnings

import mxnet as mx

from loss import wants_unit_embeddings
from model.export import SYMBOL_SUFFIX, export_prefix, exported_files, exported_params_files
from utils.environment import allow_deep_hybridization
from utils.errors import one_line
from utils.precision import check_dtype
from utils.run import folder as run_folder

from .embedding_graph import for_inference

logger = logging.getLogger(__name__)

NETWORK_FIELDS = ("backbone", "embed_dim", "image_size")


def load_network(checkpoint, ctx, backbone=None, embed_dim=None, image_size=None, dtype="float32"):
    """``(net, image_size)`` of ``checkpoint``: a .params file saved by main.py or an exported
    PREFIX-symbol.json. ``backbone``, ``embed_dim`` and ``image_size`` override the run's; the
    network is hybridized on ``ctx`` and computes in ``dtype`` (``inference.embedding_graph``;
    the checkpoint holds float32 parameters whatever the run's --dtype). Bad input: a one-line
    ValueError."""
    check_dtype_applies(checkpoint, dtype)
    if not os.path.isfile(checkpoint):
        raise ValueError("--checkpoint %s does not exist" % checkpoint)
    check_dtype(dtype, ctx)
    net, image_size = _load(checkpoint, ctx, backbone, embed_dim, image_size)
    if dtype != "float32":
        net = for_inference(net, dtype, ctx)
        logger.info("embedding in %s", dtype)
    return net, image_size


def check_dtype_applies(checkpoint, dtype):
    """Refuse ``--dtype`` with an ONNX ``checkpoint`` (ONNX Runtime runs the model as exported).

    A conflict of flags, refused from the command line alone: before the file is looked at and
    before the devices are asked whether they can run ``dtype``, so that it is the same refusal on
    every machine. No ``checkpoint`` (None) passes."""
    if dtype != "float32" and checkpoint is not None and checkpoint.endswith(".onnx"):
        raise ValueError("--dtype=%s applies to MXNet networks; an ONNX model runs in ONNX Runtime as "
                         "it was exported (float32): drop --dtype or pass the .params checkpoint" % dtype)


def _load(checkpoint, ctx, backbone, embed_dim, image_size):
    allow_deep_hybridization()
    given = dict(backbone=backbone, embed_dim=embed_dim, image_size=image_size)
    if export_prefix(checkpoint) is not None:
        return _load_export(checkpoint, given, ctx)
    if checkpoint.endswith(".params"):
        return _load_params(checkpoint, given, ctx)
    if checkpoint.endswith(".onnx"):
        return _load_onnx(checkpoint, given)
    raise ValueError("--checkpoint must be a .params file saved by main.py, an exported "
                     "PREFIX%s or PREFIX.onnx, got %s" % (SYMBOL_SUFFIX, checkpoint))


def check_params_file(path):
    """One-line ValueError unless ``path`` is an MXNet parameter file (``net.save_parameters``)."""
    try:
        params = mx.nd.load(path)
    except mx.base.MXNetError as error:
        raise ValueError("%s is not a parameter file saved by main.py (%s)"
                         % (path, one_line(error))) from None
    if not isinstance(params, dict) or not params:
        raise ValueError("%s holds no named parameters; it was not saved by net.save_parameters" % path)


def _read_meta(meta_file):
    try:
        with open(meta_file) as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError("cannot read export metadata %s: %s" % (meta_file, error)) from None


def _exported_image_size(meta_file, given, what):
    """The image side of an export: ``--image_size`` or its metadata's; the other network flags are
    fixed by the graph (a warning when given)."""
    meta = _read_meta(meta_file) if os.path.isfile(meta_file) else {}
    image_size = given["image_size"] or meta.get("image_size")
    if not image_size:
        raise ValueError("%s is missing; pass --image_size, the side the network was trained at" % meta_file)
    for name in ("backbone", "embed_dim"):
        if given[name] is not None:
            logger.warning("--%s is ignored for %s (its graph fixes it)", name, what)
    return int(image_size)


def _load_export(symbol_file, given, ctx):
    """An exported network through ``SymbolBlock.imports``."""
    prefix = export_prefix(symbol_file)
    _, params_file, meta_file = exported_files(prefix)
    if not os.path.isfile(params_file):
        candidates = exported_params_files(prefix)
        if len(candidates) != 1:
            raise ValueError("no parameters %s beside the exported symbol %s" % (params_file, symbol_file))
        params_file = candidates[0]
    image_size = _exported_image_size(meta_file, given, "an exported network")
    try:
        with warnings.catch_warnings():
            # The imported input has no dtype until the first batch arrives; MXNet warns about it.
            warnings.filterwarnings("ignore", message="Cannot decide type")
            net = mx.gluon.SymbolBlock.imports(symbol_file, ["data"], params_file, ctx=ctx)
    except (mx.base.MXNetError, AssertionError, ValueError, OSError) as error:
        raise ValueError("cannot load the exported network %s with %s: %s"
                         % (symbol_file, params_file, one_line(error))) from None
    net.hybridize(static_alloc=True)
    logger.info("exported network %s (%s), image size %d", symbol_file, params_file, image_size)
    return net, int(image_size)


class OnnxNetwork:
    """An exported ONNX model behind the call the tools make of a network: uint8 NHWC images (an
    NDArray) in, embeddings (an NDArray on the CPU) out; ONNX Runtime runs it on the CPU."""

    def __init__(self, onnx_file):
        try:
            import onnxruntime
        except ImportError:
            raise ValueError("running %s needs onnxruntime: pip install onnxruntime==1.18.1 (pinned in "
                             "requirements-common.txt)" % onnx_file) from None
        try:
            self.session = onnxruntime.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise ValueError("cannot load the ONNX model %s: %s" % (onnx_file, one_line(error))) from None
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images):
        return mx.nd.array(self.session.run(None, {self.input_name: images.asnumpy()})[0])

    def hybridize(self, *args, **kwargs):
        """Nothing to do: ONNX Runtime optimises the graph when it loads it."""


def _load_onnx(onnx_file, given):
    """An exported ONNX model (``PREFIX.onnx`` beside ``PREFIX-meta.json``)."""
    image_size = _exported_image_size(exported_files(onnx_file[: -len(".onnx")])[2], given, "an ONNX model")
    net = OnnxNetwork(onnx_file)
    logger.info("ONNX model %s (ONNX Runtime, CPU), image size %d", onnx_file, image_size)
    return net, int(image_size)


def _network_config(params_file, given):
    """``(config, args_file, saved)``: the network fields, the flags over the run's args.json."""
    args_file, saved = run_folder.args_beside(params_file)
    config = {name: given[name] if given[name] is not None else saved.get(name) for name in NETWORK_FIELDS}
    missing = [name for name, value in config.items() if value is None]
    if missing:
        raise ValueError("%s has no %s; pass %s" % (
            args_file if saved else "no args.json beside " + params_file + " and it",
            ", ".join(missing), " ".join("--%s" % name for name in missing)))
    # The run's loss decides the head's normalisation (the default loss wants unit vectors).
    config["l2_normalize"] = wants_unit_embeddings(saved["loss"]) if saved.get("loss") else True
    return config, args_file, saved


def _load_params(params_file, given, ctx):
    """A ``.params`` checkpoint into the network its run (or the flags) describe."""
    import model  # GluonCV is imported only for this kind of checkpoint

    check_params_file(params_file)
    config, args_file, saved = _network_config(params_file, given)
    net = model.build_network(config["backbone"], int(config["embed_dim"]), l2_normalize=config["l2_normalize"])
    try:
        net.load_parameters(params_file, ctx=ctx)
    except (mx.base.MXNetError, AssertionError, ValueError, OSError) as error:
        raise ValueError("cannot load %s into a %s network with embed_dim %s: %s; check --backbone "
                         "and --embed_dim" % (params_file, config["backbone"], config["embed_dim"],
                                              one_line(error))) from None
    net.hybridize(static_alloc=True)
    logger.info("checkpoint %s: %s, embed_dim %s, image size %s%s", params_file, config["backbone"],
                config["embed_dim"], config["image_size"], " (from %s)" % args_file if saved else "")
    return net, int(config["image_size"])
