"""Symmetrical Synthesis + angular loss."""
from ._checks import check_real
from ._flag import LossFlag
from .angular import ANGULAR_ALPHA, angular_logits, check_angle
from .npair import NPAIR_REG
from .symm_npair import SymmNPairLoss

SYMM_ANGULAR_WEIGHT = LossFlag("symm_angular_weight", 1.0, float,
                               "weight of the symm_angular loss in the total (Symm release: 1.0)")


class SymmAngularLoss(SymmNPairLoss):
    """Symmetrical Synthesis + angular loss (N-pair form), on unnormalised embeddings.

    From "Symmetrical Synthesis for Deep Metric Learning", Geonmo Gu and Byungsoo Ko, AAAI 2020,
    arXiv:2001.11658, as in its TensorFlow release; angular loss: Wang et al., ICCV 2017,
    arXiv:1708.01682.

    With A, P, sym1, sym2 as in :class:`SymmNPairLoss`, t = tan(alpha)^2 and the angular logits

        f(X, Y)[i, j] = 2 (1 + t) X_i . Y_i      if i == j
        f(X, Y)[i, j] = 4 t (X_i + Y_i) . Y_j    otherwise,

        L[i, j] = max of f(X, Y)[i, j] over the 12 ordered pairs
                  (A, P), (A, sym1), (A, sym2), (P, A), (P, sym1), (P, sym2),
                  (sym1, P), (sym1, A), (sym1, sym2), (sym2, P), (sym2, A), (sym2, sym1)
                  (the gradient goes to the maximal one)
        T[i, j] = [y_i == y_j] / #{k : y_k == y_i}
        loss    = weight * ( mean over i of ( -sum_j T[i, j] log softmax(L[i])_j )
                             + reg * 0.25 * (mean_i |A_i|^2 + mean_i |P_i|^2) )

    Parameters
    ----------
    alpha : float, default 45
        The angle bound in degrees, in (0, 90).
    reg : float, default 0.002
        The regulariser's lambda.
    weight : float, default 1.0
        Weight of the loss in the total (the Symm release's ``w_symm_angular``; the plain angular
        loss has 2.0).
    num_instances, n_inner_pts, symm_ratio, symm_norm_ratio, symm_norm
        The Symm set-up (2, 0, 2.0, 1.0, False; see :class:`MetricLoss`).

    Inputs:
        - **embeddings**: (B, D), rows (2i, 2i+1) a pair of one class, not normalised.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **loss**: (1,) the weighted batch loss, dtype of ``embeddings``.
    """

    loss_name = "symm_angular"
    flags = (ANGULAR_ALPHA, NPAIR_REG, SYMM_ANGULAR_WEIGHT)

    def __init__(self, alpha=45.0, reg=0.002, weight=1.0, num_instances=2, n_inner_pts=0, symm_ratio=2.0,
                 symm_norm_ratio=1.0, symm_norm=False, **kwargs):
        super().__init__(reg=reg, num_instances=num_instances, n_inner_pts=n_inner_pts, symm_ratio=symm_ratio,
                         symm_norm_ratio=symm_norm_ratio, symm_norm=symm_norm, **kwargs)
        self.alpha, self.sq_tan = check_angle(alpha)
        self.weight = check_real("weight", weight)

    @classmethod
    def options_from_flags(cls, args):
        return dict(num_instances=args.num_instances, n_inner_pts=args.n_inner_pts, symm_ratio=args.symm_ratio,
                    symm_norm_ratio=args.symm_norm_ratio, symm_norm=args.symm_norm, alpha=args.angular_alpha,
                    reg=args.npair_reg, weight=args.symm_angular_weight)

    def similarity_pairs(self, anchors, positives, sym1, sym2):
        """The 12 ordered pairs of the release, in its order."""
        a, p = anchors, positives
        return [(a, p), (a, sym1), (a, sym2), (p, a), (p, sym1), (p, sym2),
                (sym1, p), (sym1, a), (sym1, sym2), (sym2, p), (sym2, a), (sym2, sym1)]

    def pair_logits(self, F, x, y, eye):
        """The angular logit matrix f(X, Y)."""
        return angular_logits(F, x, y, self.sq_tan, eye)

    def __repr__(self):
        return (f"{self.__class__.__name__}(alpha={self.alpha}, reg={self.reg}, weight={self.weight}, "
                f"{self._synthesis_repr()})")
