"""Triplet margin loss with semi-hard negative mining, with optional Embedding Expansion."""
from ._candidates import negative_candidates, originals_block
from utils.flags import str2bool

from ._checks import check_bool, check_real
from ._flag import AT_LEAST_ZERO, LossFlag
from ._ops import identity_mask, pick_max, pick_min
from .base import MetricLoss
from .distance import pairwise_euclidean, same_label_mask

TRIPLET_MARGIN = LossFlag("triplet_margin", 0.2, float, "margin of triplet and symm_triplet (FaceNet: 0.2)",
                          range=AT_LEAST_ZERO)
TRIPLET_SQUARED = LossFlag("triplet_squared", True, str2bool,
                           "triplet and symm_triplet on squared Euclidean distances (FaceNet, TensorFlow), "
                           "else on Euclidean distances")


class TripletSemiHardLoss(MetricLoss):
    """Triplet loss with semi-hard negatives, averaged over the triplets that contribute.

    From "FaceNet: A Unified Embedding for Face Recognition and Clustering", Florian Schroff,
    Dmitry Kalenichenko and James Philbin, CVPR 2015, arXiv:1503.03832; the mining follows
    TensorFlow's ``triplet_semihard_loss``. With Embedding Expansion (Ko and Gu, CVPR 2020,
    arXiv:2003.02546) the synthetic points join the negatives.

    X are the B original rows with labels y, C = [X; synthetic points] the candidate rows with labels
    y_C (C = X without EE; see ``negative_candidates`` for the B + nB/2 distinct EE points), and

        d(a, b)   = sqrt(clip(|a|^2 + |b|^2 - 2 a.b, 1e-12, 1e12)), squared when ``squared``
                    (FaceNet's |a - b|^2)
        pairs     = ordered (a, p), a != p, both originals, y_a == y_p
        N(a)      = the rows c of C with y_c != y_a
        d_an(a,p) = min of d(X_a, C_c) over c in N(a) with d(X_a, C_c) > d(X_a, X_p)  (semi-hard);
                    if there is none, max of d(X_a, C_c) over c in N(a)       (TensorFlow's rule)
        l(a, p)   = relu(d(X_a, X_p) - d_an(a, p) + margin),   0 when N(a) is empty
        loss      = sum of l(a, p) / #{(a, p) : l(a, p) > 0},  exactly 0 when no l(a, p) > 0

    Anchors and positives are always originals; only the negatives come from C. The selected
    negative receives the whole gradient even if another candidate ties with it.

    Parameters
    ----------
    margin : float, default 0.2
        FaceNet's alpha.
    squared : bool, default True
        Use squared Euclidean distances (FaceNet, TensorFlow) instead of Euclidean ones.
    num_instances, n_inner_pts, l2_norm
        The EE set-up (2, 0, True; see :class:`MetricLoss`).

    Inputs:
        - **embeddings**: (B, D), L2-normalised; with EE rows (2i, 2i+1) share a class.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **loss**: (1,) the batch loss, dtype of ``embeddings``.
    """

    loss_name = "triplet"
    takes_ee = True
    flags = (TRIPLET_MARGIN, TRIPLET_SQUARED)

    def __init__(self, margin=0.2, squared=True, num_instances=2, n_inner_pts=0, l2_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.margin = AT_LEAST_ZERO.check(check_real("margin", margin), "margin")
        self.squared = check_bool("squared", squared)
        self._attach_synthesis(num_instances, n_inner_pts, l2_norm)

    @classmethod
    def options_from_flags(cls, args):
        return dict(margin=args.triplet_margin, squared=args.triplet_squared, l2_norm=args.ee_l2norm,
                    num_instances=args.num_instances, n_inner_pts=args.n_inner_pts)

    def hybrid_forward(self, F, embeddings, labels):
        candidates, candidate_labels = negative_candidates(F, self.synthesis, embeddings, labels)
        dist = pairwise_euclidean(F, embeddings, candidates)  # (B, M)
        if self.squared:
            dist = F.square(dist)
        is_neg = 1 - same_label_mask(F, labels, candidate_labels, like=dist)  # (B, M)
        dist_ap = originals_block(F, dist, labels)  # (B, B): d(X_a, X_p)
        is_pair = same_label_mask(F, labels, labels, like=dist_ap) - identity_mask(F, labels, dist_ap)

        # Semi-hard candidates of every (a, p): (B, B, M), entry (a, p, c).
        farther = F.broadcast_greater(F.expand_dims(dist, axis=1), F.expand_dims(dist_ap, axis=2))
        semi_hard = F.broadcast_mul(farther, F.expand_dims(is_neg, axis=1))
        dist_apc = F.broadcast_add(F.expand_dims(dist, axis=1), F.zeros_like(semi_hard))
        fill = F.reshape(F.BlockGrad(F.max(dist) + 1), shape=(1, 1, 1))
        closest = pick_min(F, F.where(semi_hard, dist_apc, F.broadcast_mul(F.ones_like(semi_hard), fill)), axis=2)
        # Without a semi-hard negative: the farthest negative of the anchor.
        farthest = pick_max(F, F.where(is_neg, dist, F.zeros_like(dist) - 1), axis=1)  # (B,)
        has_semi_hard = F.max(semi_hard, axis=2)  # (B, B)
        dist_an = F.where(has_semi_hard, closest, F.broadcast_mul(F.ones_like(closest), F.expand_dims(farthest, 1)))

        has_neg = F.max(is_neg, axis=1, keepdims=True)  # (B, 1)
        active = F.broadcast_mul(is_pair, has_neg)
        per_triplet = F.relu(dist_ap - dist_an + self.margin) * active
        count = F.sum(per_triplet > 0)
        return F.sum(per_triplet) / F.maximum(count, F.ones_like(count))

    def __repr__(self):
        return f"{self.__class__.__name__}(margin={self.margin}, squared={self.squared}, {self._synthesis_repr()})"
