"""Norm-SoftMax (NormFace): softmax cross-entropy over scaled cosines to class proxies."""
from ._checks import check_real
from ._flag import POSITIVE, LossFlag
from .proxy_base import PROXY_LR_MULT, ProxyLoss, mask_columns, weighted_softmax_cross_entropy

NS_SCALE = LossFlag("ns_scale", 23.0, float,
                    "norm_softmax: scale s of the cosine logits, 1 / temperature (the PS release: 23)",
                    range=POSITIVE)


class NormSoftmaxLoss(ProxyLoss):
    """Norm-SoftMax: a softmax classifier whose weights (the proxies) and inputs are L2-normalised.

    From "NormFace: L2 Hypersphere Embedding for Face Verification", Feng Wang, Xiang Xiang, Jian
    Cheng and Alan L. Yuille, ACM MM 2017, arXiv:1704.06369, and "Classification is a Strong
    Baseline for Deep Metric Learning", Andrew Zhai and Hua-Yan Wu, BMVC 2019, arXiv:1811.12649
    (temperature 1/s); the baseline of Proxy Synthesis (Gu, Ko and Kim, AAAI 2021).

    With x_i = X_i / |X_i|, p_c = P_c / |P_c| and the proxy y_i of row i:

        l(i) = -log( exp(s x_i . p_{y_i}) / sum over proxies c of exp(s x_i . p_c) )
        loss = (1 / B) * sum over i of l(i)

    With Proxy Synthesis the rows and proxies are PS's (``loss.proxy_synthesis``), the mean and the
    sum over c taken over those that take part.

    Parameters
    ----------
    scale : float, default 23.0
        s, the inverse temperature.
    num_classes, embed_dim, ps_mu, ps_alpha, num_instances, n_inner_pts, dtype
        See :class:`loss.proxy_base.ProxyLoss`.

    Inputs:
        - **embeddings**: (B, D), any norm (normalised here).
        - **labels**: (B,) class labels among the ids given to ``attach_classes``, any dtype.

    Outputs:
        - **loss**: (1,) the batch loss, of the proxies' dtype.
    """

    loss_name = "norm_softmax"
    flags = (NS_SCALE, PROXY_LR_MULT)

    def __init__(self, scale=23.0, **kwargs):
        self.scale = POSITIVE.check(check_real("scale", scale), "scale")
        super().__init__(**kwargs)

    @classmethod
    def options_from_flags(cls, args):
        return dict(cls.proxy_options(args), scale=args.ns_scale)

    def objective(self, F, x, proxies, targets, row_weights, column_weights):
        logits = mask_columns(F, self.scale * F.dot(x, proxies, transpose_b=True), column_weights)
        return weighted_softmax_cross_entropy(F, logits, targets, row_weights)

    def __repr__(self):
        return f"{self.__class__.__name__}(scale={self.scale}, {self._proxy_repr()})"
