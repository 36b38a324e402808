"""Angular loss (N-pair form), on unnormalised embeddings."""
import math

from ._checks import check_real
from ._flag import LossFlag, Range
from ._ops import identity_mask, pair_l2_regulariser, pair_labels, pair_rows, softmax_cross_entropy, target_matrix
from .base import MetricLoss
from .npair import NPAIR_REG

ANGLE_DEGREES = Range(lambda v: 0 < v < 90, "is in degrees, strictly between 0 and 90")
ANGULAR_ALPHA = LossFlag("angular_alpha", 45.0, float,
                         "angle bound alpha in degrees of angular and symm_angular (Wang et al.: 45)",
                         range=ANGLE_DEGREES)
ANGULAR_WEIGHT = LossFlag("angular_weight", 2.0, float, "weight of the angular loss in the total (Symm release: 2.0)")


def check_angle(alpha):
    """alpha in degrees, strictly between 0 and 90; returns (alpha, tan(alpha)^2)."""
    alpha = ANGLE_DEGREES.check(check_real("alpha", alpha), "alpha")
    return alpha, math.tan(math.radians(alpha)) ** 2


def angular_logits(F, x, y, sq_tan, eye):
    """f(X, Y)[i, j] = 2 (1 + t) X_i . Y_i on the diagonal, 4 t (X_i + Y_i) . Y_j off it (t = tan^2)."""
    diagonal = 2.0 * (1.0 + sq_tan) * F.dot(x, y, transpose_b=True)
    off_diagonal = 4.0 * sq_tan * F.dot(x + y, y, transpose_b=True)
    return diagonal * eye + off_diagonal * (1 - eye)


class AngularLoss(MetricLoss):
    """Angular loss in its N-pair form, with the N-pair regulariser.

    From "Deep Metric Learning with Angular Loss", Jian Wang, Feng Zhou, Shilei Wen, Xiao Liu and
    Yuanqing Lin, ICCV 2017, arXiv:1708.01682 (eq. 9), computed as in the Symmetrical Synthesis
    release (unnormalised embeddings, softmax cross-entropy with the N-pair targets, weight 2).

    Anchors A = rows 0, 2, 4, ..., positives P = rows 1, 3, 5, ... (N = B/2), labels y_i of pair i,
    t = tan(alpha)^2, and

        L[i, j] = 2 (1 + t) A_i . P_i          if i == j
        L[i, j] = 4 t (A_i + P_i) . P_j        otherwise
        T[i, j] = [y_i == y_j] / #{k : y_k == y_i}
        loss    = weight * ( mean over i of ( -sum_j T[i, j] log softmax(L[i])_j )
                             + reg * 0.25 * (mean_i |A_i|^2 + mean_i |P_i|^2) )

    With one pair per class the cross-entropy of row i is log(1 + sum over j != i of
    exp(4 t (A_i + P_i) . P_j - 2 (1 + t) A_i . P_i)), the paper's f_apn.

    Parameters
    ----------
    alpha : float, default 45
        The angle bound in degrees, in (0, 90).
    reg : float, default 0.002
        The regulariser's lambda.
    weight : float, default 2.0
        Weight of the loss in the total (the Symm release's ``w_angular``).
    num_instances : int, default 2
        Images per class in a batch; even.
    n_inner_pts : int, default 0
        Must be 0: the angular loss does not combine with Embedding Expansion.

    Inputs:
        - **embeddings**: (B, D), B even, rows (2i, 2i+1) a pair of one class, not normalised.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **loss**: (1,) the weighted batch loss, dtype of ``embeddings``.
    """

    loss_name = "angular"
    pair_layout = "pairs"
    wants_unit_embeddings = False
    flags = (ANGULAR_ALPHA, NPAIR_REG, ANGULAR_WEIGHT)

    def __init__(self, alpha=45.0, reg=0.002, weight=2.0, num_instances=2, n_inner_pts=0, **kwargs):
        super().__init__(**kwargs)
        self.alpha, self.sq_tan = check_angle(alpha)
        self.reg = check_real("reg", reg)
        self.weight = check_real("weight", weight)
        self.num_instances, _ = self._check_layout(num_instances, n_inner_pts)

    @classmethod
    def options_from_flags(cls, args):
        return dict(alpha=args.angular_alpha, reg=args.npair_reg, weight=args.angular_weight,
                    num_instances=args.num_instances, n_inner_pts=args.n_inner_pts)

    def logits(self, F, anchors, positives, eye):
        return angular_logits(F, anchors, positives, self.sq_tan, eye)

    def hybrid_forward(self, F, embeddings, labels):
        anchors, positives = pair_rows(F, embeddings)
        labels_of_pairs = pair_labels(F, labels)
        raw = F.dot(anchors, positives, transpose_b=True)
        eye = identity_mask(F, labels_of_pairs, raw)
        logits = self.logits(F, anchors, positives, eye)
        loss = softmax_cross_entropy(F, logits, target_matrix(F, labels_of_pairs, like=raw))
        return self.weight * (loss + pair_l2_regulariser(F, anchors, positives, self.reg))

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(alpha={self.alpha}, reg={self.reg}, weight={self.weight}, "
            f"num_instances={self.num_instances})"
        )
