"""Lifted structured loss (smooth form), with optional Embedding Expansion."""
from ._candidates import negative_candidates, originals_block
from ._checks import check_real
from ._flag import LossFlag
from ._ops import NEG_FILL, identity_mask
from .base import MetricLoss
from .distance import pairwise_euclidean, same_label_mask

LIFTED_MARGIN = LossFlag("lifted_margin", 1.0, float, "margin alpha of lifted and symm_lifted (Oh Song et al.: 1.0)")


class LiftedStructuredLoss(MetricLoss):
    """Lifted structured loss, smooth upper bound.

    From "Deep Metric Learning via Lifted Structured Feature Embedding", Hyun Oh Song, Yu Xiang,
    Stefanie Jegelka and Silvio Savarese, CVPR 2016, arXiv:1511.06452 (eq. 4). With Embedding
    Expansion (Ko and Gu, CVPR 2020, arXiv:2003.02546) the synthetic points join the negatives.

    X are the B original rows with labels y, C = [X; synthetic points] the candidate rows (C = X
    without EE; the B + nB/2 distinct EE points otherwise), and

        D(a, b) = sqrt(clip(|a|^2 + |b|^2 - 2 a.b, 1e-12, 1e12))
        P       = unordered pairs {i, j}, i != j, of originals with y_i == y_j
        N(i)    = the rows k of C with y_k != y_i
        J(i, j) = log( sum over k in N(i) of exp(margin - D(X_i, C_k))
                     + sum over l in N(j) of exp(margin - D(X_j, C_l)) ) + D(X_i, X_j)
        loss    = 1 / (2 |P|) * sum over {i, j} in P of relu(J(i, j))^2

    A pair with no negative at all (one class in the batch) contributes 0, and so does an empty P.
    The log-sum-exp is computed with each row's largest term factored out.

    Parameters
    ----------
    margin : float, default 1.0
        The paper's alpha.
    num_instances, n_inner_pts, l2_norm
        The EE set-up (2, 0, True; see :class:`MetricLoss`).

    Inputs:
        - **embeddings**: (B, D), L2-normalised; with EE rows (2i, 2i+1) share a class.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **loss**: (1,) the batch loss, dtype of ``embeddings``.
    """

    loss_name = "lifted"
    takes_ee = True
    flags = (LIFTED_MARGIN,)

    def __init__(self, margin=1.0, num_instances=2, n_inner_pts=0, l2_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.margin = check_real("margin", margin)
        self._attach_synthesis(num_instances, n_inner_pts, l2_norm)

    @classmethod
    def options_from_flags(cls, args):
        return dict(margin=args.lifted_margin, l2_norm=args.ee_l2norm, num_instances=args.num_instances,
                    n_inner_pts=args.n_inner_pts)

    def hybrid_forward(self, F, embeddings, labels):
        candidates, candidate_labels = negative_candidates(F, self.synthesis, embeddings, labels)
        dist = pairwise_euclidean(F, embeddings, candidates)  # (B, M)
        is_neg = 1 - same_label_mask(F, labels, candidate_labels, like=dist)
        dist_ap = originals_block(F, dist, labels)  # (B, B)
        is_pair = same_label_mask(F, labels, labels, like=dist_ap) - identity_mask(F, labels, dist_ap)

        # Per row i: m_i = largest masked exponent (a constant), s_i = sum exp(x_ik - m_i) over N(i).
        exponent = self.margin - dist
        fill = F.ones_like(exponent) * NEG_FILL
        shift = F.BlockGrad(F.max(F.where(is_neg, exponent, fill), axis=1, keepdims=True))  # (B, 1)
        sums = F.sum(F.exp(F.where(is_neg, F.broadcast_sub(exponent, shift), fill)), axis=1, keepdims=True)
        has_neg = F.max(is_neg, axis=1, keepdims=True)  # (B, 1)

        # J(i, j) = log(s_i e^{m_i} + s_j e^{m_j}) + D_ij, with M_ij = max(m_i, m_j) factored out.
        shift_t, sums_t, has_neg_t = (F.reshape(v, shape=(1, -1)) for v in (shift, sums, has_neg))
        top = F.broadcast_maximum(shift, shift_t)  # (B, B)
        inner = F.broadcast_mul(sums, F.exp(F.broadcast_sub(shift, top))) + F.broadcast_mul(
            sums_t, F.exp(F.broadcast_sub(shift_t, top))
        )
        any_neg = F.broadcast_maximum(has_neg, has_neg_t)  # (B, B)
        objective = F.log(inner + (1 - any_neg)) + top + dist_ap
        terms = F.square(F.relu(objective)) * is_pair * any_neg
        # Ordered pairs count each {i, j} twice: sum_ordered / 2 / (2 |P|), |P| = ordered / 2.
        num_ordered = F.sum(is_pair)
        return F.sum(terms) / (2 * F.maximum(num_ordered, F.ones_like(num_ordered)))

    def __repr__(self):
        return f"{self.__class__.__name__}(margin={self.margin}, {self._synthesis_repr()})"
