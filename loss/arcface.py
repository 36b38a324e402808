"""ArcFace (additive angular margin loss): Norm-SoftMax with a margin added to the target angle."""
import math

from ._checks import check_real
from ._flag import POSITIVE, LossFlag, Range
from .proxy_base import PROXY_LR_MULT, ProxyLoss, mask_columns, weighted_softmax_cross_entropy

ANGLE = Range(lambda v: 0 <= v < math.pi / 2, "must be an angle in radians in [0, pi/2)")
AF_SCALE = LossFlag("af_scale", 64.0, float, "arcface: scale s of the logits (paper: 64)", range=POSITIVE)
AF_MARGIN = LossFlag("af_margin", 0.5, float, "arcface: angular margin m in radians (paper: 0.5)", range=ANGLE)


class ArcFaceLoss(ProxyLoss):
    """ArcFace, the additive angular margin loss.

    From "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", Jiankang Deng, Jia Guo,
    Niannan Xue and Stefanos Zafeiriou, CVPR 2019, arXiv:1801.07698 (eq. 3, with the release's
    fallback past pi); one of the softmax variants of Proxy Synthesis (Gu, Ko and Kim, AAAI 2021).

    With x_i = X_i / |X_i|, p_c = P_c / |P_c|, cos_ic = x_i . p_c, theta = arccos(cos_{i y_i}):

        t(i) = cos(theta + m)              if theta + m <= pi (cos_{i y_i} >= cos(pi - m))
             = cos_{i y_i} - m sin(m)      otherwise (the release's monotonic fallback)
        l(i) = -log( exp(s t(i)) / (exp(s t(i)) + sum over c != y_i of exp(s cos_ic)) )
        loss = (1 / B) * sum over i of l(i)

    cos(theta + m) is computed as cos cos(m) - sqrt(1 - cos^2) sin(m), the root kept from 0 (its
    gradient at |cos| = 1 is then large but finite). With Proxy Synthesis as in
    :class:`loss.cosface.CosFaceLoss`.

    Parameters
    ----------
    scale : float, default 64.0
    margin : float in [0, pi/2), default 0.5
    num_classes, embed_dim, ps_mu, ps_alpha, num_instances, n_inner_pts, dtype
        See :class:`loss.proxy_base.ProxyLoss`.

    Inputs: **embeddings** (B, D), any norm; **labels** (B,) among the ids of ``attach_classes``.
    Output: **loss** (1,), of the proxies' dtype.
    """

    loss_name = "arcface"
    flags = (AF_SCALE, AF_MARGIN, PROXY_LR_MULT)

    def __init__(self, scale=64.0, margin=0.5, **kwargs):
        self.scale = POSITIVE.check(check_real("scale", scale), "scale")
        self.margin = ANGLE.check(check_real("margin", margin), "margin")
        super().__init__(**kwargs)

    @classmethod
    def options_from_flags(cls, args):
        return dict(cls.proxy_options(args), scale=args.af_scale, margin=args.af_margin)

    def objective(self, F, x, proxies, targets, row_weights, column_weights):
        cos = F.dot(x, proxies, transpose_b=True)
        sin = F.sqrt(F.clip(1 - F.square(cos), 1e-12, 1.0))
        shifted = cos * math.cos(self.margin) - sin * math.sin(self.margin)
        fallback = cos - self.margin * math.sin(self.margin)
        target = F.where(cos >= math.cos(math.pi - self.margin), shifted, fallback)
        logits = self.scale * (targets * target + (1 - targets) * cos)
        logits = mask_columns(F, logits, column_weights)
        return weighted_softmax_cross_entropy(F, logits, targets, row_weights)

    def __repr__(self):
        return f"{self.__class__.__name__}(scale={self.scale}, margin={self.margin}, {self._proxy_repr()})"
