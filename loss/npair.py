"""Multi-class N-pair loss, with optional Embedding Expansion."""
from ._checks import check_real
from ._flag import LossFlag
from ._ops import (distinct_synthetic_points, pair_l2_regulariser, pair_labels, pair_rows, pick_max,
                   softmax_cross_entropy, target_matrix)
from .base import MetricLoss

NPAIR_REG = LossFlag("npair_reg", 0.002, float,
                     "lambda of the 0.25 * lambda * (mean |A|^2 + mean |P|^2) regulariser of npair, angular, "
                     "symm_npair and symm_angular (Sohn; TensorFlow npairs_loss: 0.002)")


class NPairLoss(MetricLoss):
    """Multi-class N-pair loss with its L2 regulariser, on unnormalised embeddings.

    From "Improved Deep Metric Learning with Multi-class N-pair Loss Objective", Kihyuk Sohn,
    NIPS 2016; computed as TensorFlow's ``npairs_loss`` (the Symmetrical Synthesis release's
    N-pair). With Embedding Expansion (Ko and Gu, CVPR 2020, arXiv:2003.02546) the synthetic points
    join the negatives.

    The batch holds pairs: anchors A = rows 0, 2, 4, ..., positives P = rows 1, 3, 5, ... (N = B/2),
    with labels y_i of pair i. Then

        L[i, j] = A_i . P_j                                        if y_i == y_j
        L[i, j] = max over c in C_j of A_i . c                     otherwise
        C_j     = {P_j}  without EE;  {P_j, S_1[2j], ..., S_n[2j]}  with EE (the n synthetic
                  points between A_j and P_j)
        T[i, j] = [y_i == y_j] / #{k : y_k == y_i}
        loss    = mean over i of ( -sum_j T[i, j] log softmax(L[i])_j )
                  + reg * 0.25 * (mean_i |A_i|^2 + mean_i |P_i|^2)

    Anchors and positives are originals; the hardest point of each negative pair is the negative
    logit (its gradient goes to that point alone). The embeddings are not L2-normalised, so EE's
    points are not normalised either: ``l2_norm`` must stay False when n_inner_pts > 0.

    Parameters
    ----------
    reg : float, default 0.002
        The regulariser's lambda (TensorFlow's ``reg_lambda``).
    num_instances : int, default 2
        Images per class in a batch; even.
    n_inner_pts : int, default 0
        Synthetic points per pair (Embedding Expansion); 0 disables EE.
    l2_norm : bool, default False
        Must be False when n_inner_pts > 0 (see above).

    Inputs:
        - **embeddings**: (B, D), B even, rows (2i, 2i+1) a pair of one class, not normalised.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **loss**: (1,) the batch loss, dtype of ``embeddings``.
    """

    loss_name = "npair"
    takes_ee = True
    pair_layout = "pairs"
    wants_unit_embeddings = False
    flags = (NPAIR_REG,)

    def __init__(self, reg=0.002, num_instances=2, n_inner_pts=0, l2_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.reg = check_real("reg", reg)
        self._attach_synthesis(num_instances, n_inner_pts, l2_norm)

    @classmethod
    def options_from_flags(cls, args):
        return dict(reg=args.npair_reg, l2_norm=args.ee_l2norm if args.n_inner_pts else False,
                    num_instances=args.num_instances, n_inner_pts=args.n_inner_pts)

    def hybrid_forward(self, F, embeddings, labels):
        anchors, positives = pair_rows(F, embeddings)
        labels_of_pairs = pair_labels(F, labels)
        logits = F.dot(anchors, positives, transpose_b=True)  # (N, N)
        targets = target_matrix(F, labels_of_pairs, like=logits)
        if self.synthesis is not None:
            n = self.n_inner_pts
            expanded, expanded_labels = self.synthesis(embeddings, labels)
            points, _ = distinct_synthetic_points(F, expanded, expanded_labels, n)  # (n N, D), k-major
            synthetic = F.reshape(F.dot(anchors, points, transpose_b=True), shape=(0, -4, n, -1))
            stacked = F.concat(F.expand_dims(logits, axis=1), synthetic, dim=1)  # (N, n + 1, N)
            logits = F.where(targets > 0, logits, pick_max(F, stacked, axis=1))
        loss = softmax_cross_entropy(F, logits, targets)
        return loss + pair_l2_regulariser(F, anchors, positives, self.reg)

    def __repr__(self):
        return f"{self.__class__.__name__}(reg={self.reg}, {self._synthesis_repr(l2_norm_default=False)})"
