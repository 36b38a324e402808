"""Convolutional backbones taken from the GluonCV model zoo.

A backbone keeps only the feature layers of a zoo network (everything up to, and not including,
the classifier's pooling), so that the embedding head can sit on top. Building a backbone never
downloads anything; ImageNet weights are loaded by :func:`model.weights.load_backbone_weights`.
"""
import logging

import mxnet as mx
from gluoncv import model_zoo

logger = logging.getLogger(__name__)

# Feature layers of each zoo network, in forward order, as dotted attribute paths of the zoo
# network. The dotted path is also the prefix of the layer's parameters in the zoo's
# ``.params`` file, which is how ImageNet weights find their way into the backbone.
_GOOGLENET_LAYERS = (
    "conv1", "maxpool1", "conv2", "conv3", "maxpool2",
    "inception3a", "inception3b", "maxpool3",
    "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
    "inception5a", "inception5b",
)
# ResNet v1 ``features`` ends with its global pooling (index 8), which the head replaces.
_RESNET_V1_LAYERS = tuple("features.%d" % i for i in range(8))

# The smallest image side each backbone takes (measured: GoogLeNet's ceil-mode poolings need 31
# pixels; the ResNets run down to 1). tests/test_model.py checks that S runs and S - 1 does not.
MIN_IMAGE_SIZE = {"googlenet": 31, "resnet18_v1": 1, "resnet50_v1": 1}

BACKBONE_LAYERS = {
    "googlenet": _GOOGLENET_LAYERS,
    "resnet18_v1": _RESNET_V1_LAYERS,
    "resnet50_v1": _RESNET_V1_LAYERS,
}


def _resolve(block, dotted_path):
    """Return the child block at ``dotted_path`` ("features.3" indexes a Sequential)."""
    for part in dotted_path.split("."):
        block = block[int(part)] if part.isdigit() else getattr(block, part)
    return block


class ZooBackbone(mx.gluon.HybridBlock):
    """Feature layers of a GluonCV zoo network, run in sequence.

    The GoogLeNet configuration is the one of the Embedding Expansion release
    (Ko & Gu, "Embedding Expansion: Augmentation in Embedding Space for Deep Metric Learning",
    CVPR 2020, arXiv:2003.02546): Inception-v1 with BatchNorm, conv1 ... inception5b.

    Parameters
    ----------
    name : str
        Zoo network name, a key of ``BACKBONE_LAYERS``.

    Inputs:
        - **x**: float32 images, shape (N, 3, H, W), already normalised.
    Outputs:
        - **features**: shape (N, C, H', W') (C = 1024 for GoogLeNet, H' = ceil(H / 32)).
    """

    def __init__(self, name, **kwargs):
        super().__init__(**kwargs)
        if name not in BACKBONE_LAYERS:
            raise ValueError(
                "unknown backbone %r; choose one of: %s" % (name, ", ".join(sorted(BACKBONE_LAYERS)))
            )
        self.zoo_name = name
        self.layer_paths = BACKBONE_LAYERS[name]
        # pretrained=False: the constructor must never touch the network.
        zoo_net = model_zoo.get_model(name, pretrained=False)
        # The zoo network's name prefix ("googlenet0_") and its alias ("googlenet"): parameter
        # files written by ``collect_params().save`` name the parameters by them.
        self.zoo_prefix, self.zoo_alias = zoo_net.prefix, zoo_net._alias()
        with self.name_scope():
            self.features = mx.gluon.nn.HybridSequential(prefix="")
            for path in self.layer_paths:
                self.features.add(_resolve(zoo_net, path))

    def zoo_structured_params(self):
        """Map the zoo ``.params`` file's names ("conv1.0.weight") to this backbone's Parameters."""
        mapping = {}
        for path, layer in zip(self.layer_paths, self.features):
            for suffix, param in layer._collect_params_with_prefix().items():
                mapping["%s.%s" % (path, suffix)] = param
        return mapping

    def hybrid_forward(self, F, x):
        return self.features(x)
