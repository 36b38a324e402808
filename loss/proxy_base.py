"""What the proxy losses (norm_softmax, proxy_nca, proxy_anchor, cosface, arcface) share: class
proxies (Gluon Parameters of the loss block), the training classes they stand for, and Proxy
Synthesis.

A proxy loss learns one proxy per training class, P (C, D), beside the network. C is known once
the data is read, after the loss is built from the flags, so the proxies come in a second,
explicit step::

    loss_fn = build_loss_from_args(args)             # no proxies yet
    loss_fn.attach_classes(train_class_ids, embed_dim)   # then initialise it on one device

``attach_classes`` keeps the sorted training class ids as a constant (``class_ids``); a label y is
proxy c where class_ids[c] == y, so labels need not be 0 .. C-1 (the datasets number their classes
from 1, or from the middle of a range). ``train.parts`` does it, adds the proxies to the Trainer
(their learning rate times ``--proxy_lr_mult``) and saves them in every checkpoint; the exported
and evaluated network never holds them.

Every proxy loss L2-normalises the embeddings and the proxies, optionally appends PS's synthetic
classes (:class:`loss.proxy_synthesis.ProxySynthesis`, ``ps_mu > 0``), and computes its
``objective(F, X, P, T, row_weights, column_weights)`` on unit rows X (N, D), P (M, D), one-hot
targets T (N, M) and the weights of the rows and proxies that take part (None without PS: all).
"""
import mxnet as mx
import numpy as np

from ._checks import check_int, check_real
from ._flag import POSITIVE, LossFlag
from .base import MetricLoss
from .proxy_synthesis import UNIT_INTERVAL, ProxySynthesis, draw_noise

PROXY_LR_MULT = LossFlag("proxy_lr_mult", 100.0, float,
                         "proxy losses: the class proxies' learning rate is --lr times this "
                         "(Proxy-Anchor's recipe: 100)", range=POSITIVE)

# Kaiming normal over the proxies' fan-out, C (Proxy-Anchor's initialisation).
PROXY_INIT = mx.init.Xavier(rnd_type="gaussian", factor_type="out", magnitude=2)


class ProxyLoss(MetricLoss):
    """Base of the proxy losses: proxies, class ids, PS (module docstring).

    Parameters (shared by every proxy loss)
    ---------------------------------------
    num_classes, embed_dim : int, optional
        When both are given, the proxies are made at once for classes 0 .. num_classes - 1
        (else :meth:`attach_classes` later).
    ps_mu, ps_alpha : float
        Proxy Synthesis (0.0: off; paper 1.0 and 0.4).
    num_instances, n_inner_pts
        The batch layout: any num_instances; no Embedding Expansion (n_inner_pts 0).
    dtype : str
        Of the proxies; the embeddings are cast to it (float32; float64 for exact tests).
    """

    uses_proxies = True
    wants_unit_embeddings = True
    needs_negatives = False
    flags = (PROXY_LR_MULT,)

    def __init__(self, num_classes=None, embed_dim=None, ps_mu=0.0, ps_alpha=0.4, num_instances=1,
                 n_inner_pts=0, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        self.num_instances, _ = self._check_layout(num_instances, n_inner_pts)
        self.synthesis = None
        self.dtype = dtype
        ps_mu = UNIT_INTERVAL.check(check_real("ps_mu", ps_mu), "ps_mu")
        with self.name_scope():
            self.ps = ProxySynthesis(ps_mu, ps_alpha) if ps_mu > 0 else None
        self.ps_alpha = check_real("ps_alpha", ps_alpha)
        self.class_ids = self.proxies = None
        if num_classes is not None and embed_dim is not None:
            self.attach_classes(np.arange(check_int("num_classes", num_classes, minimum=1)), embed_dim)

    @classmethod
    def synthesis_flags(cls):
        return ProxySynthesis.flags

    @classmethod
    def proxy_options(cls, args):
        """The shared constructor options from the flags (each loss adds its own)."""
        return dict(ps_mu=args.ps_mu, ps_alpha=args.ps_alpha, num_instances=args.num_instances,
                    n_inner_pts=args.n_inner_pts)

    @property
    def num_classes(self):
        return None if self.class_ids is None else self.class_ids.shape[0]

    def attach_classes(self, class_ids, embed_dim):
        """Make the proxies (C, embed_dim) of the training classes ``class_ids`` (C distinct labels),
        once; initialise them afterwards (``initialize(ctx=...)``; Kaiming normal, fan-out)."""
        ids = np.unique(np.asarray(class_ids).ravel())
        if self.class_ids is not None:
            raise ValueError(f"{self.loss_name} already has proxies for {self.num_classes} classes; build a new loss.")
        if ids.size < 1 or ids.size != np.asarray(class_ids).size:
            raise ValueError(f"{self.loss_name} needs distinct training class ids, got {ids.size} distinct of "
                             f"{np.asarray(class_ids).size}.")
        embed_dim = check_int("embed_dim", embed_dim, minimum=1)
        with self.name_scope():
            self.class_ids = self.params.get_constant("class_ids", mx.nd.array(ids, dtype="float32"))
            self.proxies = self.params.get("proxies", shape=(ids.size, embed_dim), init=PROXY_INIT,
                                           dtype=self.dtype)

    def forward(self, embeddings, labels, partner_noise=None, ratio=None):
        """``(embeddings (B, D), labels (B,))`` -> (1,); with PS, its noise is drawn from NumPy's
        global generator unless given (``loss.proxy_synthesis.draw_noise``)."""
        if self.proxies is None:
            raise ValueError(f"{self.loss_name} has no proxies yet; call attach_classes(class_ids, embed_dim) "
                             "and initialize() first.")
        if self.ps is None:
            return super().forward(embeddings, labels)
        if partner_noise is None:
            partner_noise, ratio = draw_noise(embeddings.shape[0], self.ps_alpha, embeddings.context, self.dtype)
        return super().forward(embeddings, labels, partner_noise, ratio)

    def hybrid_forward(self, F, embeddings, labels, partner_noise=None, ratio=None, proxies=None,
                       class_ids=None):
        x = F.L2Normalization(F.cast(embeddings, dtype=self.dtype), mode="instance", eps=1e-12)
        p = F.L2Normalization(proxies, mode="instance", eps=1e-12)
        same = F.broadcast_equal(F.reshape(F.cast(labels, dtype="float32"), shape=(-1, 1)),
                                 F.reshape(F.cast(class_ids, dtype="float32"), shape=(1, -1)))
        logits_like = F.dot(x, p, transpose_b=True)
        targets = F.where(same, F.ones_like(logits_like), F.zeros_like(logits_like))  # (B, C)
        if self.ps is None:
            return self.objective(F, x, p, targets, None, None)
        x, p, targets, rows, columns = self.ps(x, p, targets, partner_noise, ratio)
        return self.objective(F, x, p, targets, rows, columns)

    def objective(self, F, x, proxies, targets, row_weights, column_weights):
        """The loss on unit rows (module docstring); (1,)."""
        raise NotImplementedError

    def _proxy_repr(self):
        ps = f"ps_mu={self.ps.mu}, ps_alpha={self.ps_alpha}" if self.ps else "ps_mu=0.0"
        return f"num_classes={self.num_classes}, {ps}"


def row_mean(F, values, row_weights):
    """mean of ``values`` (N,) over the rows that take part (all when ``row_weights`` is None), (1,)."""
    if row_weights is None:
        return F.mean(values, axis=0, keepdims=True).reshape((1,))
    return F.sum(values * row_weights, axis=0, keepdims=True).reshape((1,)) / F.sum(row_weights).reshape((1,))


def weighted_softmax_cross_entropy(F, logits, targets, row_weights):
    """:func:`row_mean` of -sum_j T_ij log softmax(logits_i)_j: the cross-entropy of the softmax
    losses (Norm-SoftMax, CosFace, ArcFace) over the rows that take part, (1,)."""
    return row_mean(F, -F.sum(targets * F.log_softmax(logits, axis=1), axis=1), row_weights)


def mask_columns(F, logits, column_weights, fill=-1e4):
    """``logits`` with the proxies that do not take part pushed to ``fill`` (out of any softmax)."""
    if column_weights is None:
        return logits
    return F.broadcast_add(logits, F.reshape((column_weights - 1) * (-fill), shape=(1, -1)))
