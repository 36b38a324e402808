"""Multi-similarity loss with its pair mining, with optional Embedding Expansion."""
from ._candidates import negative_candidates, originals_block
from ._checks import check_real
from ._flag import AT_LEAST_ZERO, POSITIVE, LossFlag
from ._ops import identity_mask, masked_log1p_sum_exp
from .base import MetricLoss
from .distance import same_label_mask

MS_ALPHA = LossFlag("ms_alpha", 2.0, float, "positive scale alpha of multi_similarity", range=POSITIVE)
MS_BETA = LossFlag("ms_beta", 50.0, float, "negative scale beta of multi_similarity", range=POSITIVE)
MS_BASE = LossFlag("ms_base", 0.5, float, "similarity margin lambda of multi_similarity")
MS_EPSILON = LossFlag("ms_epsilon", 0.1, float, "pair-mining margin epsilon of multi_similarity",
                      range=AT_LEAST_ZERO)


class MultiSimilarityLoss(MetricLoss):
    """Multi-similarity (MS) loss with MS pair mining.

    From "Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning", Xun Wang,
    Xintong Han, Weilin Huang, Dengke Dong and Matthew R. Scott, CVPR 2019, arXiv:1904.06627
    (eqs. 12-15; the anchor-skipping and the division by B follow the authors' release). With
    Embedding Expansion (Ko and Gu, CVPR 2020, arXiv:2003.02546) the synthetic points join the
    negatives.

    X are the B original rows with labels y, C = [X; synthetic points] the candidate rows (C = X
    without EE; the B + nB/2 distinct EE points otherwise), S(a, b) = a . b (the cosine similarity
    of L2-normalised rows), and for every original anchor i:

        P(i)    = originals j != i with y_j == y_i
        N(i)    = rows k of C with y_k != y_i
        kept negatives  N'(i) = {k in N(i) : S(X_i, C_k) + epsilon > min over j in P(i) of S(X_i, X_j)}
        kept positives  P'(i) = {j in P(i) : S(X_i, X_j) - epsilon < max over k in N(i) of S(X_i, C_k)}
        l(i) = 1/alpha * log(1 + sum over j in P'(i) of exp(-alpha (S(X_i, X_j) - base)))
             + 1/beta  * log(1 + sum over k in N'(i) of exp( beta  (S(X_i, C_k) - base)))
               if P'(i) and N'(i) are both non-empty, else 0
        loss = (1 / B) * sum over i of l(i)

    The mining thresholds select pairs only; no gradient flows through them.

    Parameters
    ----------
    alpha : float, default 2.0
        Scale of the positive term.
    beta : float, default 50.0
        Scale of the negative term.
    base : float, default 0.5
        The similarity margin lambda.
    epsilon : float, default 0.1
        Margin of the pair mining.
    num_instances, n_inner_pts, l2_norm
        The EE set-up (2, 0, True; see :class:`MetricLoss`).

    Inputs:
        - **embeddings**: (B, D), L2-normalised; with EE rows (2i, 2i+1) share a class.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **loss**: (1,) the batch loss, dtype of ``embeddings``.
    """

    loss_name = "multi_similarity"
    takes_ee = True
    flags = (MS_ALPHA, MS_BETA, MS_BASE, MS_EPSILON)

    def __init__(self, alpha=2.0, beta=50.0, base=0.5, epsilon=0.1, num_instances=2, n_inner_pts=0,
                 l2_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.alpha = POSITIVE.check(check_real("alpha", alpha), "alpha")
        self.beta = POSITIVE.check(check_real("beta", beta), "beta")
        self.base = check_real("base", base)
        self.epsilon = check_real("epsilon", epsilon)
        self._attach_synthesis(num_instances, n_inner_pts, l2_norm)

    @classmethod
    def options_from_flags(cls, args):
        return dict(alpha=args.ms_alpha, beta=args.ms_beta, base=args.ms_base, epsilon=args.ms_epsilon,
                    l2_norm=args.ee_l2norm, num_instances=args.num_instances, n_inner_pts=args.n_inner_pts)

    def hybrid_forward(self, F, embeddings, labels):
        candidates, candidate_labels = negative_candidates(F, self.synthesis, embeddings, labels)
        sim = F.dot(embeddings, candidates, transpose_b=True)  # (B, M)
        is_neg = 1 - same_label_mask(F, labels, candidate_labels, like=sim)
        sim_ap = originals_block(F, sim, labels)  # (B, B)
        is_pos = same_label_mask(F, labels, labels, like=sim_ap) - identity_mask(F, labels, sim_ap)

        # Mining thresholds (selection only): the hardest positive and the hardest negative.
        frozen = F.BlockGrad(sim)
        frozen_ap = F.BlockGrad(sim_ap)
        high = F.reshape(F.max(frozen) + 1, shape=(1, 1))
        low = F.reshape(F.min(frozen) - 1, shape=(1, 1))
        hardest_pos = F.min(F.where(is_pos, frozen_ap, F.broadcast_mul(F.ones_like(frozen_ap), high)),
                            axis=1, keepdims=True)  # (B, 1)
        hardest_neg = F.max(F.where(is_neg, frozen, F.broadcast_mul(F.ones_like(frozen), low)),
                            axis=1, keepdims=True)  # (B, 1)
        kept_neg = is_neg * F.broadcast_greater(frozen + self.epsilon, hardest_pos)
        kept_pos = is_pos * F.broadcast_lesser(frozen_ap - self.epsilon, hardest_neg)
        valid = (F.sum(kept_pos, axis=1) > 0) * (F.sum(kept_neg, axis=1) > 0)  # (B,)

        pos_term = masked_log1p_sum_exp(F, -self.alpha * (sim_ap - self.base), kept_pos) / self.alpha
        neg_term = masked_log1p_sum_exp(F, self.beta * (sim - self.base), kept_neg) / self.beta
        return F.mean((pos_term + neg_term) * valid)

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(alpha={self.alpha}, beta={self.beta}, base={self.base}, "
            f"epsilon={self.epsilon}, {self._synthesis_repr()})"
        )
