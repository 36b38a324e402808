"""Proxy-Anchor: each proxy an anchor, pulling the batch's images of its class and pushing the others."""
from ._checks import check_real
from ._flag import POSITIVE, LossFlag
from ._ops import masked_log1p_sum_exp
from .proxy_base import PROXY_LR_MULT, ProxyLoss

PA_ALPHA = LossFlag("pa_alpha", 32.0, float, "proxy_anchor: scale alpha (paper: 32)", range=POSITIVE)
PA_DELTA = LossFlag("pa_delta", 0.1, float, "proxy_anchor: margin delta (paper: 0.1)")


class ProxyAnchorLoss(ProxyLoss):
    """Proxy-Anchor loss.

    From "Proxy Anchor Loss for Deep Metric Learning", Sungyeon Kim, Dongwon Kim, Minsu Cho and
    Suha Kwak, CVPR 2020, arXiv:2003.13911 (eq. 4).

    With s(x, p) the cosine of embedding x and proxy p, P all proxies, P+ the proxies of the
    classes present in the batch, X_p+ the batch's images of p's class and X_p- the others:

        loss = 1/|P+| sum over p in P+ of log(1 + sum over x in X_p+ of exp(-alpha (s(x, p) - delta)))
             + 1/|P|  sum over p in P  of log(1 + sum over x in X_p- of exp( alpha (s(x, p) + delta)))

    With Proxy Synthesis the rows and proxies are PS's, P and the X sets restricted to those that
    take part (|P| = C + floor(mu B)).

    Parameters
    ----------
    alpha : float, default 32.0
    delta : float, default 0.1
    num_classes, embed_dim, ps_mu, ps_alpha, num_instances, n_inner_pts, dtype
        See :class:`loss.proxy_base.ProxyLoss`.

    Inputs:
        - **embeddings**: (B, D), any norm (normalised here).
        - **labels**: (B,) class labels among the ids given to ``attach_classes``, any dtype.

    Outputs:
        - **loss**: (1,) the batch loss, of the proxies' dtype.
    """

    loss_name = "proxy_anchor"
    flags = (PA_ALPHA, PA_DELTA, PROXY_LR_MULT)

    def __init__(self, alpha=32.0, delta=0.1, **kwargs):
        self.alpha = POSITIVE.check(check_real("alpha", alpha), "alpha")
        self.delta = check_real("delta", delta)
        super().__init__(**kwargs)

    @classmethod
    def options_from_flags(cls, args):
        return dict(cls.proxy_options(args), alpha=args.pa_alpha, delta=args.pa_delta)

    def objective(self, F, x, proxies, targets, row_weights, column_weights):
        cos = F.dot(x, proxies, transpose_b=True)  # (N, M)
        positives, negatives = targets, 1 - targets
        if row_weights is not None:
            taking_part = F.broadcast_mul(F.reshape(row_weights, shape=(-1, 1)),
                                          F.reshape(column_weights, shape=(1, -1)))
            positives, negatives = positives * taking_part, negatives * taking_part
        pos_terms = masked_log1p_sum_exp(F, -self.alpha * (cos - self.delta), positives, axis=0)  # (M,)
        neg_terms = masked_log1p_sum_exp(F, self.alpha * (cos + self.delta), negatives, axis=0)
        with_positives = F.sum(positives, axis=0) > 0
        proxies_taking_part = F.sum(F.ones_like(neg_terms)) if column_weights is None else F.sum(column_weights)
        return (F.sum(pos_terms) / F.maximum(F.sum(with_positives), 1.0)
                + F.sum(neg_terms) / proxies_taking_part)

    def __repr__(self):
        return (f"{self.__class__.__name__}(alpha={self.alpha}, delta={self.delta}, "
                f"{self._proxy_repr()})")
