"""Scalar and image summaries that carry a description (the ⓘ on their TensorBoard card).

tensorboardX writes a described scalar as a ``simple_value`` and an image as an ``image`` value;
TensorBoard's fast loader (the Rust data server, the default when installed) drops the description
of such values. Written as tensors with the scalars or images plugin's metadata, as TensorBoard's
own summary ops write them, both of TensorBoard's loaders keep it; the values read back the same.
"""
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboardX.proto.tensor_pb2 import TensorProto
from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboardX.summary import image as _image_value


def _metadata(plugin, description):
    return SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=plugin),
                           summary_description=description)


def scalar(tag, value, description):
    """A ``Summary`` of one float ``value`` under ``tag`` (the scalars plugin's)."""
    tensor = TensorProto(dtype="DT_FLOAT", float_val=[float(value)], tensor_shape=TensorShapeProto())
    return Summary(value=[Summary.Value(tag=tag, metadata=_metadata("scalars", description), tensor=tensor)])


def image(tag, picture, description):
    """A ``Summary`` of the uint8 (H, W, 3) ``picture`` as PNG under ``tag`` (the images plugin's:
    a tensor of width, height and the encoded image)."""
    encoded = _image_value(tag, picture, dataformats="HWC").value[0].image
    tensor = TensorProto(dtype="DT_STRING",
                         string_val=[str(encoded.width).encode("ascii"), str(encoded.height).encode("ascii"),
                                     encoded.encoded_image_string],
                         tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=3)]))
    return Summary(value=[Summary.Value(tag=tag, metadata=_metadata("images", description), tensor=tensor)])
