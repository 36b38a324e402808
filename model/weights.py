"""Loading backbone weights: ImageNet weights from the GluonCV model store, or a local file.

Kept apart from building so that constructing a network never touches the network or disk.
"""
import contextlib
import io
import logging
import os

import mxnet as mx

logger = logging.getLogger(__name__)


def model_store_dir():
    """Where GluonCV keeps downloaded weights: ``$MXNET_HOME/models`` (default ``~/.mxnet/models``)."""
    home = os.environ.get("MXNET_HOME", os.path.join("~", ".mxnet"))
    return os.path.expanduser(os.path.join(home, "models"))


def expected_imagenet_file(zoo_name):
    """Path of the GluonCV ImageNet weights for ``zoo_name`` in the model store."""
    from gluoncv.model_zoo.model_store import short_hash

    return os.path.join(model_store_dir(), "%s-%s.params" % (zoo_name, short_hash(zoo_name)))


def fetch_imagenet_weights(zoo_name):
    """Return the local path of the ImageNet weights, downloading them when possible.

    Raises
    ------
    ValueError
        One line naming the expected file, where to put it, and the flag that skips it.
    """
    from gluoncv.model_zoo.model_store import get_model_file

    expected = expected_imagenet_file(zoo_name)
    try:
        # GluonCV prints its download progress; the user gets our one line instead.
        with contextlib.redirect_stdout(io.StringIO()):
            return get_model_file(zoo_name, root=model_store_dir())
    except Exception as error:  # network errors come in many types; all mean "not available"
        reason = type(error).__name__
        raise ValueError(
            "ImageNet weights for %s are not cached and could not be downloaded (%s): put %s there "
            "(it is GluonCV's model-store file), or pass --pretrained=PATH.params, or "
            "--pretrained=none to train from scratch" % (zoo_name, reason, expected)
        ) from None


def load_backbone_weights(backbone, params_file, ctx):
    """Copy the feature-layer weights of a zoo ``.params`` file into ``backbone``.

    The file's extra parameters (the ImageNet classifier) are ignored; a missing or mis-shaped
    feature parameter is an error naming that parameter.
    """
    if not os.path.isfile(params_file):
        raise ValueError("pretrained weights file %s does not exist; check --pretrained" % params_file)
    try:
        loaded = mx.nd.load(params_file)
    except mx.base.MXNetError:
        raise ValueError(
            "%s is not an MXNet .params file; pass a GluonCV %s weights file to --pretrained"
            % (params_file, backbone.zoo_name)
        ) from None
    if not isinstance(loaded, dict):
        raise ValueError("%s holds no named parameters; it is not a .params file" % params_file)
    # Files saved with save_parameters use structural names; strip "arg:"/"aux:" of export files.
    loaded = {name.split(":", 1)[-1]: value for name, value in loaded.items()}
    for name, param in sorted(backbone.zoo_structured_params().items()):
        if name not in loaded:
            raise ValueError(
                "pretrained file %s does not match backbone %s: parameter %s is missing"
                % (params_file, backbone.zoo_name, name)
            )
        value = loaded[name]
        if param.shape is not None and all(param.shape) and tuple(value.shape) != tuple(param.shape):
            raise ValueError(
                "pretrained file %s does not match backbone %s: parameter %s has shape %s, expected %s"
                % (params_file, backbone.zoo_name, name, value.shape, param.shape)
            )
        param._load_init(value.astype(param.dtype), ctx)
    logger.info("loaded %s backbone weights from %s", backbone.zoo_name, params_file)
