"""CosFace (large margin cosine loss): Norm-SoftMax with an additive margin on the target cosine."""
from ._checks import check_real
from ._flag import AT_LEAST_ZERO, POSITIVE, LossFlag
from .proxy_base import PROXY_LR_MULT, ProxyLoss, mask_columns, weighted_softmax_cross_entropy

CF_SCALE = LossFlag("cf_scale", 64.0, float, "cosface: scale s of the cosine logits (paper: 64)", range=POSITIVE)
CF_MARGIN = LossFlag("cf_margin", 0.35, float, "cosface: margin m subtracted from the target cosine (paper: 0.35)",
                     range=AT_LEAST_ZERO)


class CosFaceLoss(ProxyLoss):
    """CosFace, the large margin cosine loss (LMCL).

    From "CosFace: Large Margin Cosine Loss for Deep Face Recognition", Hao Wang, Yitong Wang, Zheng
    Zhou, Xing Ji, Dihong Gong, Jingchao Zhou, Zhifeng Li and Wei Liu, CVPR 2018, arXiv:1801.09414
    (eq. 4); one of the softmax variants of Proxy Synthesis (Gu, Ko and Kim, AAAI 2021).

    With x_i = X_i / |X_i|, p_c = P_c / |P_c| and the proxy y_i of row i:

        l(i) = -log( exp(s (x_i . p_{y_i} - m)) / (exp(s (x_i . p_{y_i} - m)) + sum over c != y_i of exp(s x_i . p_c)) )
        loss = (1 / B) * sum over i of l(i)

    With Proxy Synthesis the rows and proxies are PS's (a synthetic row's target is its synthetic
    proxy, with the margin), the mean and the sums over those that take part.

    Parameters
    ----------
    scale : float, default 64.0
    margin : float, default 0.35
    num_classes, embed_dim, ps_mu, ps_alpha, num_instances, n_inner_pts, dtype
        See :class:`loss.proxy_base.ProxyLoss`.

    Inputs: **embeddings** (B, D), any norm; **labels** (B,) among the ids of ``attach_classes``.
    Output: **loss** (1,), of the proxies' dtype.
    """

    loss_name = "cosface"
    flags = (CF_SCALE, CF_MARGIN, PROXY_LR_MULT)

    def __init__(self, scale=64.0, margin=0.35, **kwargs):
        self.scale = POSITIVE.check(check_real("scale", scale), "scale")
        self.margin = AT_LEAST_ZERO.check(check_real("margin", margin), "margin")
        super().__init__(**kwargs)

    @classmethod
    def options_from_flags(cls, args):
        return dict(cls.proxy_options(args), scale=args.cf_scale, margin=args.cf_margin)

    def objective(self, F, x, proxies, targets, row_weights, column_weights):
        cos = F.dot(x, proxies, transpose_b=True)
        logits = mask_columns(F, self.scale * (cos - self.margin * targets), column_weights)
        return weighted_softmax_cross_entropy(F, logits, targets, row_weights)

    def __repr__(self):
        return f"{self.__class__.__name__}(scale={self.scale}, margin={self.margin}, {self._proxy_repr()})"
