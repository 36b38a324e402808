"""Proxy-NCA: NCA with one proxy per class, on normalised embeddings and proxies."""
from ._checks import check_real
from ._flag import POSITIVE, LossFlag
from ._ops import NEG_FILL
from .proxy_base import PROXY_LR_MULT, ProxyLoss, row_mean

NCA_SCALE = LossFlag("nca_scale", 10.0, float,
                     "proxy_nca: scale s of the squared distances (the PS release: 10, its README 12)",
                     range=POSITIVE)


class ProxyNCALoss(ProxyLoss):
    """Proxy-NCA loss, the original form: the positive proxy is left out of the denominator.

    From "No Fuss Distance Metric Learning using Proxies", Yair Movshovitz-Attias, Alexander
    Toshev, Thomas K. Leung, Sergey Ioffe and Saurabh Singh, ICCV 2017, arXiv:1703.07464 (eq. 4),
    on L2-normalised embeddings and proxies with a scale, as in Proxy Synthesis (Gu, Ko and Kim,
    AAAI 2021, arXiv:2103.15454). (The PS release keeps the positive in the denominator, the
    Proxy-NCA++ form; on unit vectors that is Norm-SoftMax with scale 2 s.)

    With x_i = X_i / |X_i|, p_c = P_c / |P_c|, d(i, c) = s |x_i - p_c|^2 and the proxy y_i of row i:

        l(i) = -log( exp(-d(i, y_i)) / sum over proxies z != y_i of exp(-d(i, z)) )
             = d(i, y_i) + log sum over z != y_i of exp(-d(i, z))
        loss = (1 / B) * sum over i of l(i)

    (l can be negative.) With Proxy Synthesis the rows and proxies are PS's, the mean and the sum
    over z taken over those that take part. Needs two proxies or more.

    Parameters
    ----------
    scale : float, default 10.0
        s.
    num_classes, embed_dim, ps_mu, ps_alpha, num_instances, n_inner_pts, dtype
        See :class:`loss.proxy_base.ProxyLoss`.

    Inputs:
        - **embeddings**: (B, D), any norm (normalised here).
        - **labels**: (B,) class labels among the ids given to ``attach_classes``, any dtype.

    Outputs:
        - **loss**: (1,) the batch loss, of the proxies' dtype.
    """

    loss_name = "proxy_nca"
    flags = (NCA_SCALE, PROXY_LR_MULT)

    def __init__(self, scale=10.0, **kwargs):
        self.scale = POSITIVE.check(check_real("scale", scale), "scale")
        super().__init__(**kwargs)

    @classmethod
    def options_from_flags(cls, args):
        return dict(cls.proxy_options(args), scale=args.nca_scale)

    def objective(self, F, x, proxies, targets, row_weights, column_weights):
        # |x - p|^2 = 2 - 2 x.p for unit rows.
        distance = self.scale * (2 - 2 * F.dot(x, proxies, transpose_b=True))  # (N, M)
        others = 1 - targets
        if column_weights is not None:
            others = F.broadcast_mul(others, F.reshape(column_weights, shape=(1, -1)))
        negated = F.where(others, -distance, F.ones_like(distance) * NEG_FILL)
        shift = F.BlockGrad(F.max(negated, axis=1, keepdims=True))
        log_sum = F.log(F.sum(F.exp(F.broadcast_sub(negated, shift)), axis=1)) + F.reshape(shift, shape=(-1,))
        positive = F.sum(targets * distance, axis=1)
        return row_mean(F, positive + log_sum, row_weights)

    def __repr__(self):
        return f"{self.__class__.__name__}(scale={self.scale}, {self._proxy_repr()})"
