"""The embedding network: device-side input normalisation, a backbone, and the embedding head."""
import mxnet as mx

from utils.imagenet import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB


class _Constant(mx.init.Initializer):
    """Fills a constant parameter with fixed values (serialisable, unlike a lambda)."""

    def __init__(self, values):
        super().__init__(values=list(values))
        self.values = list(values)

    def _init_weight(self, _, arr):
        arr[:] = mx.nd.array(self.values, dtype=arr.dtype).reshape(arr.shape)


class InputNormalization(mx.gluon.HybridBlock):
    """uint8 NHWC images → float32 NCHW normalised with the ImageNet mean and std.

    Data workers hand over uint8 pixels (4× less to copy than float32); the cast and the
    normalisation run here, on the device, as the network's first step:
    ``y = (x / 255 − mean) / std = (x − 255·mean) / (255·std)`` per channel.

    Inputs:
        - **images**: uint8 (or float) array, shape (N, H, W, 3), RGB, values in [0, 255].
    Outputs:
        - **normalised**: float32, shape (N, 3, H, W).
    """

    def __init__(self, mean=IMAGENET_MEAN_RGB, std=IMAGENET_STD_RGB, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.pixel_mean = self.params.get(
                "pixel_mean", shape=(1, 3, 1, 1), init=_Constant([255.0 * m for m in mean]),
                grad_req="null", differentiable=False,
            )
            self.pixel_scale = self.params.get(
                "pixel_scale", shape=(1, 3, 1, 1), init=_Constant([1.0 / (255.0 * s) for s in std]),
                grad_req="null", differentiable=False,
            )

    def hybrid_forward(self, F, images, pixel_mean, pixel_scale):
        x = F.transpose(F.cast(images, dtype="float32"), axes=(0, 3, 1, 2))
        return F.broadcast_mul(F.broadcast_sub(x, pixel_mean), pixel_scale)


class EmbeddingHead(mx.gluon.HybridBlock):
    """Global average pooling → Dense(embed_dim, Xavier magnitude 2) → optional L2 normalisation.

    The head of the Embedding Expansion release (Ko & Gu, CVPR 2020, arXiv:2003.02546):
    ``e = W · avgpool(f) + b``, returned as ``e / |e|`` when ``l2_normalize``.

    Parameters
    ----------
    embed_dim : int
        Size of the embedding.
    l2_normalize : bool
        Divide every row by its L2 norm (the HPHN/EE losses expect unit vectors; the Symm
        losses train on unnormalised embeddings).

    Inputs:
        - **features**: shape (N, C, H, W).
    Outputs:
        - **embeddings**: shape (N, embed_dim).
    """

    def __init__(self, embed_dim, l2_normalize=True, **kwargs):
        super().__init__(**kwargs)
        self.l2_normalize = l2_normalize
        with self.name_scope():
            self.pooling = mx.gluon.nn.GlobalAvgPool2D()
            self.embedding = mx.gluon.nn.Dense(
                embed_dim, weight_initializer=mx.init.Xavier(magnitude=2)
            )

    def hybrid_forward(self, F, features):
        embeddings = self.embedding(self.pooling(features))
        if self.l2_normalize:
            embeddings = F.L2Normalization(embeddings, mode="instance")
        return embeddings


class EmbeddingNetwork(mx.gluon.HybridBlock):
    """Images to embeddings: ``InputNormalization`` → backbone → ``EmbeddingHead``.

    Parameters
    ----------
    backbone : HybridBlock
        Feature extractor taking normalised NCHW float images.
    embed_dim : int
        Size of the embedding.
    l2_normalize : bool
        Whether the forward pass returns unit-norm embeddings (see ``EmbeddingHead``).

    Inputs:
        - **images**: uint8, shape (N, H, W, 3), RGB.
    Outputs:
        - **embeddings**: float32, shape (N, embed_dim).
    """

    def __init__(self, backbone, embed_dim, l2_normalize=True, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.normalize = InputNormalization()
            self.backbone = backbone
            self.head = EmbeddingHead(embed_dim, l2_normalize=l2_normalize)

    def hybrid_forward(self, F, images):
        return self.head(self.backbone(self.normalize(images)))
