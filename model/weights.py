"""Loading backbone weights: ImageNet weights from the GluonCV model store, or a local file.

Kept apart from building so that constructing a network never touches the network or disk.
"""
import contextlib
import io
import logging
import os
import re

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


# A parameter file written by main.py (``net.save_parameters`` of the whole embedding network)
# names the backbone's parameters "backbone.<structural name>".
NETWORK_FILE_PREFIX = "backbone."


def _saved_prefix(alias, names):
    """The network prefix that every name of a ``collect_params().save`` file starts with
    ("googlenet3_": the zoo alias and a counter), or "" when the names are relative to it."""
    match = re.match(r"%s\d+_" % re.escape(alias), names[0]) if names else None
    if match and all(name.startswith(match.group(0)) for name in names):
        return match.group(0)
    return ""


def file_names_of(backbone, names):
    """Map each name a parameter file uses for the backbone's parameters to that Parameter.

    ``names`` are the file's names with any "arg:"/"aux:" removed. The file is read the way it was
    written:

    - a network file of main.py (some name starts with "backbone."): "backbone." + the backbone's
      own structural name ("backbone.features.0.0.weight"); the head and input constants are left;
    - a zoo network's ``save_parameters`` (some name holds a "."): structural names of the zoo
      network ("conv1.0.weight"), as ``Block.load_parameters`` reads them;
    - otherwise the older prefixed names of ``collect_params().save``: as ``load_parameters`` does for
      a file without a ".", a name is the zoo parameter's name without the network prefix
      ("conv0_weight" for "googlenet0_conv0_weight", what ``save_params`` and
      ``collect_params().save(f, strip_prefix=net.prefix)`` write); when every name still carries a
      prefix of the zoo network's alias ("googlenet3_conv0_weight", a plain
      ``collect_params().save(f)``), that prefix is removed first, whatever its counter.
    """
    if any(name.startswith(NETWORK_FILE_PREFIX) for name in names):
        own = backbone._collect_params_with_prefix()
        return {NETWORK_FILE_PREFIX + name: param for name, param in own.items()}
    structured = backbone.zoo_structured_params()
    if any("." in name for name in names):
        return structured
    saved_prefix = _saved_prefix(backbone.zoo_alias, sorted(names))
    strip = len(backbone.zoo_prefix)
    return {saved_prefix + param.name[strip:]: param for param in structured.values()}


def load_backbone_weights(backbone, params_file, ctx):
    """Copy the feature-layer weights of a ``.params`` file into ``backbone``.

    The file is a zoo network's (ImageNet weights from the model store, saved with
    ``save_parameters`` or with ``collect_params().save``) or one written by main.py for the same
    backbone; see :func:`file_names_of`. The file's extra parameters (the ImageNet classifier, the
    embedding head) are ignored; a missing or mis-shaped feature parameter is an error naming that
    parameter.
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
    # Export files name parameters "arg:..." / "aux:..." (ParameterDict.load_dict removes them too).
    loaded = {name.split(":", 1)[-1]: value for name, value in loaded.items()}
    for name, param in sorted(file_names_of(backbone, list(loaded)).items()):
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
