"""Networks: a registry of backbones and the embedding network built on them.

``build_network`` makes the network (no download, no initialisation); ``initialize_network``
initialises it on the devices and loads the backbone weights that ``--pretrained`` names.
"""
import mxnet as mx

from utils.flags import registry_key

from .backbones import BACKBONE_LAYERS, MIN_IMAGE_SIZE, ZooBackbone
from .embedding import EmbeddingHead, EmbeddingNetwork, InputNormalization
from .weights import expected_imagenet_file, fetch_imagenet_weights, load_backbone_weights

BACKBONES = {name: ZooBackbone for name in BACKBONE_LAYERS}


def normalize_backbone_name(name):
    """The registry key of a backbone name (``utils.flags.registry_key``)."""
    return registry_key(name)


def get_backbone(name):
    """Build the backbone registered as ``name`` (no weights are loaded)."""
    key = normalize_backbone_name(name)
    if key not in BACKBONES:
        raise ValueError(
            "unknown backbone %r; choose one of: %s" % (name, ", ".join(sorted(BACKBONES)))
        )
    return BACKBONES[key](key)


def check_image_size(backbone, image_size):
    """One-line ValueError when ``image_size`` is below the smallest side ``backbone`` takes."""
    low = MIN_IMAGE_SIZE.get(normalize_backbone_name(backbone), 1)
    if image_size < low:
        raise ValueError("--image_size %d is too small for %s: its poolings need at least %d x %d pixels; "
                         "pass --image_size=%d or more" % (image_size, backbone, low, low, low))


def build_network(backbone="googlenet", embed_dim=512, l2_normalize=True):
    """The embedding network of ``backbone`` with an ``embed_dim`` head; nothing is initialised."""
    if int(embed_dim) < 1:
        raise ValueError("embed_dim must be a positive integer, got %r" % (embed_dim,))
    return EmbeddingNetwork(get_backbone(backbone), int(embed_dim), l2_normalize=l2_normalize)


def initialize_network(net, ctx, pretrained="imagenet"):
    """Initialise ``net`` on the context list ``ctx`` and load backbone weights.

    Parameters
    ----------
    pretrained : str
        ``imagenet`` (GluonCV model store, downloaded to ``$MXNET_HOME/models`` when online),
        a path to a ``.params`` file (of the zoo network however it was saved, or written by
        main.py for the same backbone; see ``model.weights.file_names_of``), or ``none`` (random
        initialisation).
    """
    ctx = ctx if isinstance(ctx, (list, tuple)) else [ctx]
    spec = str(pretrained).strip()
    # Resolve the weights before allocating anything, so an offline failure is immediate.
    params_file = None
    if spec.lower() == "imagenet":
        params_file = fetch_imagenet_weights(net.backbone.zoo_name)
    elif spec.lower() not in ("none", ""):
        params_file = spec
    # Backbone without weights: He-style initialisation suits its ReLU convolutions.
    net.backbone.initialize(mx.init.Xavier(magnitude=2), ctx=ctx)
    net.normalize.initialize(ctx=ctx)
    net.head.initialize(ctx=ctx)
    if params_file is not None:
        load_backbone_weights(net.backbone, params_file, ctx)
    return net


def materialize(net, ctx, image_size):
    """Finish the deferred initialisation of ``net`` on every context of ``ctx`` with one forward
    pass of a blank uint8 image in inference mode (BatchNorm statistics are not touched), so its
    parameters can be saved before training. The initialisers draw the same numbers as they would
    at the first training batch, as long as nothing else draws from MXNet's generator between."""
    for context in (ctx if isinstance(ctx, (list, tuple)) else [ctx]):
        net(mx.nd.zeros((1, image_size, image_size, 3), dtype="uint8", ctx=context))
    return net


__all__ = [
    "BACKBONES", "EmbeddingHead", "EmbeddingNetwork", "InputNormalization", "ZooBackbone",
    "build_network", "expected_imagenet_file", "get_backbone", "initialize_network", "materialize",
    "load_backbone_weights", "normalize_backbone_name",
]
