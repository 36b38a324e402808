"""Proxy Synthesis (PS): synthetic classes made of mixed embeddings and mixed proxies.

From "Proxy Synthesis: Learning with Synthetic Classes for Deep Metric Learning", Geonmo Gu,
Byungsoo Ko and Han-Gyu Kim, AAAI 2021, arXiv:2103.15454 (the authors' release: one ratio per
batch, the mixed points and proxies L2-normalised again).

Given L2-normalised embeddings X (B, D) with one-hot targets T (B, C) over the proxies P (C, D),
one ratio lambda ~ Beta(alpha, alpha) per batch and, for every row i, a partner j(i) of another
class (drawn uniformly among the rows whose label differs from y_i), PS appends

    x^_i = normalise(lambda X_i + (1 - lambda) X_j(i))          (B rows)
    p^_i = normalise(lambda P_{y_i} + (1 - lambda) P_{y_j(i)})  (B proxies, class C + i)

so the proxy loss sees [X; x^] (2B, D), [P; p^] (C + B, D) and the block-diagonal targets
[[T, 0], [0, I_B]]. Only the first floor(mu B) synthetic classes take part (``mu`` in (0, 1]; the
paper's 1.0 uses all): the others, and any row without a partner of another class (a batch of one
class), get weight 0 in ``row_weights`` and ``column_weights`` (1 for the originals), which the
losses apply. The release pairs row i with row i - 1 and needs neighbours of different classes;
the partner drawn here works with the class-balanced sampler's runs of ``num_instances`` rows.

The randomness comes in as inputs: ``partner_noise`` (B, B) uniform in [0, 1) (partner j(i) =
argmax_j noise_ij [y_j != y_i]) and ``ratio`` (1,) = lambda, drawn by :func:`draw_noise` from
NumPy's global generator (whose state the checkpoints store, so a resumed run draws what an
uninterrupted one does), and a test can give its own.
"""
import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from ._checks import check_real
from ._flag import POSITIVE, LossFlag, Range

UNIT_INTERVAL = Range(lambda v: 0 <= v <= 1, "must be between 0 and 1 (the fraction mu of the batch size)")

PS_MU = LossFlag("ps_mu", 0.0, float,
                 "Proxy Synthesis (proxy losses): synthetic classes per batch as a fraction of the batch "
                 "size, in [0, 1]; 0 disables PS, the paper uses 1.0", range=UNIT_INTERVAL)
PS_ALPHA = LossFlag("ps_alpha", 0.4, float,
                    "Proxy Synthesis: the mixing ratio is drawn from Beta(alpha, alpha) (paper: 0.4)",
                    range=POSITIVE)


def draw_noise(batch_size, alpha, ctx, dtype="float32", rng=np.random):
    """``(partner_noise (B, B), ratio (1,))``: NDArrays of ``dtype`` on ``ctx``, drawn from ``rng``
    (uniform in [0, 1), then Beta(alpha, alpha))."""
    noise = rng.uniform(size=(batch_size, batch_size))
    ratio = rng.beta(alpha, alpha, size=(1,))
    return mx.nd.array(noise, ctx=ctx, dtype=dtype), mx.nd.array(ratio, ctx=ctx, dtype=dtype)


def _unit(F, x):
    return F.L2Normalization(x, mode="instance", eps=1e-12)


def _mix(F, a, b, ratio):
    return _unit(F, F.broadcast_mul(a, ratio) + F.broadcast_mul(b, 1 - ratio))


class ProxySynthesis(HybridBlock):
    """Appends PS's synthetic embeddings, proxies and targets (module docstring).

    Parameters
    ----------
    mu : float in (0, 1]
        Synthetic classes per batch, as a fraction of the batch size (floor(mu B) of them).
    alpha : float > 0
        Beta(alpha, alpha) of the ratio (used by :func:`draw_noise`).

    Inputs: ``embeddings`` (B, D) and ``proxies`` (C, D), unit rows; ``targets`` (B, C) one-hot;
    ``partner_noise`` (B, B) and ``ratio`` (1,), all of one dtype. Outputs: embeddings (2B, D), proxies (C + B, D),
    targets (2B, C + B), ``row_weights`` (2B,), ``column_weights`` (C + B,).
    """

    flags = (PS_MU, PS_ALPHA)

    def __init__(self, mu=1.0, alpha=0.4, **kwargs):
        super().__init__(**kwargs)
        self.mu = check_real("ps_mu", mu)
        if not 0 < self.mu <= 1:
            raise ValueError(f"ps_mu must be in (0, 1] for Proxy Synthesis (0 disables it), got {mu}.")
        self.alpha = POSITIVE.check(check_real("ps_alpha", alpha), "ps_alpha")

    def hybrid_forward(self, F, embeddings, proxies, targets, partner_noise, ratio):
        other_class = 1 - F.dot(targets, targets, transpose_b=True)  # (B, B): y_j != y_i
        scored = partner_noise * other_class
        partner = F.argmax(scored, axis=1)  # (B,)
        has_partner = F.max(scored, axis=1) > 0  # (B,) 0 or 1
        ratio = F.reshape(ratio, shape=(1, 1))
        own_proxies = F.dot(targets, proxies)  # (B, D): P_{y_i}
        mixed_x = _mix(F, embeddings, F.take(embeddings, partner), ratio)
        mixed_p = _mix(F, own_proxies, F.take(own_proxies, partner), ratio)

        index = F.contrib.arange_like(partner, axis=0)  # 0 .. B-1
        kept = (F.broadcast_lesser_equal(index + 1, self.mu * F.sum(F.ones_like(index)))
                * has_partner)  # (B,): the first floor(mu B) synthetic classes, with a partner
        eye = F.broadcast_equal(F.reshape(index, shape=(-1, 1)), F.reshape(index, shape=(1, -1)))
        top = F.concat(targets, F.zeros_like(other_class), dim=1)
        bottom = F.concat(F.zeros_like(targets), eye, dim=1)
        rows = F.ones_like(index)
        columns = F.ones_like(F.sum(proxies, axis=1))
        return (F.concat(embeddings, mixed_x, dim=0), F.concat(proxies, mixed_p, dim=0),
                F.concat(top, bottom, dim=0), F.concat(rows, kept, dim=0), F.concat(columns, kept, dim=0))

    def __repr__(self):
        return f"{self.__class__.__name__}(mu={self.mu}, alpha={self.alpha})"
