"""Symmetrical Synthesis + N-pair loss."""
from ._checks import check_real
from ._ops import (identity_mask, pair_l2_regulariser, pair_labels, pair_rows, pick_max, softmax_cross_entropy,
                   target_matrix)
from .base import MetricLoss
from .npair import NPAIR_REG


class SymmNPairLoss(MetricLoss):
    """Symmetrical Synthesis + multi-class N-pair loss, on unnormalised embeddings.

    From "Symmetrical Synthesis for Deep Metric Learning", Geonmo Gu and Byungsoo Ko, AAAI 2020,
    arXiv:2001.11658, as in its TensorFlow release; N-pair: Sohn, NIPS 2016.

    The batch is N classes x 2 images: A = rows 0, 2, 4, ..., P = rows 1, 3, 5, ..., labels y_i of
    pair i; sym1 = Q(A, P), sym2 = Q(P, A) (:class:`SymmetricalSynthesis`). With the six pairs
    (X, Y) of {A, P, sym1, sym2} taken in this order,

        (A, P), (A, sym1), (A, sym2), (P, sym1), (P, sym2), (sym1, sym2),

        L[i, j] = max over the six pairs of X_i . Y_j   (the gradient goes to the maximal one)
        T[i, j] = [y_i == y_j] / #{k : y_k == y_i}
        loss    = mean over i of ( -sum_j T[i, j] log softmax(L[i])_j )
                  + reg * 0.25 * (mean_i |A_i|^2 + mean_i |P_i|^2)

    The regulariser is on the original (unnormalised) A and P.

    Parameters
    ----------
    reg : float, default 0.002
        The regulariser's lambda.
    num_instances, n_inner_pts, symm_ratio, symm_norm_ratio, symm_norm
        The Symm set-up (2, 0, 2.0, 1.0, False; see :class:`MetricLoss`).

    Inputs:
        - **embeddings**: (B, D), rows (2i, 2i+1) a pair of one class, not normalised.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **loss**: (1,) the batch loss, dtype of ``embeddings``.
    """

    loss_name = "symm_npair"
    symmetrical = True
    flags = (NPAIR_REG,)

    def __init__(self, reg=0.002, num_instances=2, n_inner_pts=0, symm_ratio=2.0, symm_norm_ratio=1.0,
                 symm_norm=False, **kwargs):
        super().__init__(**kwargs)
        symm_args = self._check_symm(num_instances, n_inner_pts, symm_ratio, symm_norm_ratio, symm_norm)
        self.reg = check_real("reg", reg)
        self.weight = 1.0
        self._attach_synthesis(symm_args[0])

    @classmethod
    def options_from_flags(cls, args):
        return dict(num_instances=args.num_instances, n_inner_pts=args.n_inner_pts, symm_ratio=args.symm_ratio,
                    symm_norm_ratio=args.symm_norm_ratio, symm_norm=args.symm_norm, reg=args.npair_reg)

    def similarity_pairs(self, anchors, positives, sym1, sym2):
        """The (X, Y) pairs whose logit matrices are maxed over, in order."""
        return [(anchors, positives), (anchors, sym1), (anchors, sym2), (positives, sym1),
                (positives, sym2), (sym1, sym2)]

    def pair_logits(self, F, x, y, eye):
        """The logit matrix of one pair: X Y^T (``eye``, the (N, N) identity, is unused here)."""
        return F.dot(x, y, transpose_b=True)

    def hybrid_forward(self, F, embeddings, labels):
        anchors, positives = pair_rows(F, embeddings)
        labels_of_pairs = pair_labels(F, labels)
        sym1, sym2 = self.synthesis.synthesize(F, anchors, positives)
        base = F.dot(anchors, positives, transpose_b=True)
        eye = identity_mask(F, labels_of_pairs, base)
        matrices = [self.pair_logits(F, x, y, eye) for x, y in self.similarity_pairs(anchors, positives, sym1, sym2)]
        stacked = F.concat(*[F.expand_dims(m, axis=2) for m in matrices], dim=2)  # (N, N, K)
        logits = pick_max(F, stacked, axis=2)
        loss = softmax_cross_entropy(F, logits, target_matrix(F, labels_of_pairs, like=base))
        return self.weight * (loss + pair_l2_regulariser(F, anchors, positives, self.reg))

    def __repr__(self):
        return f"{self.__class__.__name__}(reg={self.reg}, {self._synthesis_repr()})"
