"""Lifted structured loss whose negatives include the points of Symmetrical Synthesis."""
from .lifted import LiftedStructuredLoss


class SymmLiftedLoss(LiftedStructuredLoss):
    """Symmetrical Synthesis + lifted structured loss (smooth form).

    Symmetrical Synthesis: Gu and Ko, AAAI 2020, arXiv:2001.11658; the loss is that of
    :class:`LiftedStructuredLoss` (Oh Song et al., CVPR 2016, arXiv:1511.06452).

    The batch is N classes x 2 images (rows 2i, 2i+1). With Z the (B, D) synthetic rows of
    :class:`SymmetricalSynthesis` (Z[2i] = sym1[i] = Q(A_i, P_i), Z[2i+1] = sym2[i] = Q(P_i, A_i),
    labelled like the pair) and C = [X; Z]:

        N(i)    = rows k of C = [X; Z] with y_k != y_i
        J(i, j) = log( sum over k in N(i) of exp(margin - D(X_i, C_k))
                     + sum over l in N(j) of exp(margin - D(X_j, C_l)) ) + D(X_i, X_j)
        loss    = 1 / (2 |P|) * sum over positive pairs {i, j} of originals of relu(J(i, j))^2

    so each anchor's soft-hardest negative is taken over the originals and the mirror images of
    the other pairs. Embeddings are not L2-normalised (as in the Symm release).

    Parameters
    ----------
    margin : float, default 1.0
    num_instances, n_inner_pts, symm_ratio, symm_norm_ratio, symm_norm
        The Symm set-up (2, 0, 2.0, 1.0, False; see :class:`MetricLoss`).

    Inputs:
        - **embeddings**: (B, D), rows (2i, 2i+1) a pair of one class, not normalised.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **loss**: (1,) the batch loss.
    """

    loss_name = "symm_lifted"
    symmetrical = True

    def __init__(self, margin=1.0, num_instances=2, n_inner_pts=0, symm_ratio=2.0, symm_norm_ratio=1.0,
                 symm_norm=False, **kwargs):
        self._check_symm(num_instances, n_inner_pts, symm_ratio, symm_norm_ratio, symm_norm)
        super().__init__(margin=margin, num_instances=num_instances, **kwargs)

    @classmethod
    def options_from_flags(cls, args):
        return dict(num_instances=args.num_instances, n_inner_pts=args.n_inner_pts, symm_ratio=args.symm_ratio,
                    symm_norm_ratio=args.symm_norm_ratio, symm_norm=args.symm_norm, margin=args.lifted_margin)
