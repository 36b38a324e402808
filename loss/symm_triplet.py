"""Semi-hard triplet loss whose negatives include the points of Symmetrical Synthesis."""
from .triplet import TripletSemiHardLoss


class SymmTripletLoss(TripletSemiHardLoss):
    """Symmetrical Synthesis + semi-hard triplet loss.

    Symmetrical Synthesis: Gu and Ko, AAAI 2020, arXiv:2001.11658; the triplet loss and its mining
    are those of :class:`TripletSemiHardLoss` (Schroff et al., CVPR 2015, arXiv:1503.03832).

    The batch is N classes x 2 images (rows 2i, 2i+1). With Z the (B, D) synthetic rows of
    :class:`SymmetricalSynthesis` (Z[2i] = sym1[i] = Q(A_i, P_i), Z[2i+1] = sym2[i] = Q(P_i, A_i),
    labelled like the pair), the candidate rows are C = [X; Z] and, exactly as for
    :class:`TripletSemiHardLoss`:

        pairs     = ordered (a, p), a != p, both originals, y_a == y_p
        N(a)      = rows c of C = [X; Z] with y_c != y_a
        d_an(a,p) = min of d(X_a, C_c) over c in N(a) with d(X_a, C_c) > d(X_a, X_p); if none,
                    max of d(X_a, C_c) over c in N(a)
        loss      = sum of relu(d(X_a, X_p) - d_an(a, p) + margin) / #(terms > 0), 0 if none

    (d squared Euclidean when ``squared``). The synthetic points only add negative candidates.
    Embeddings are not L2-normalised (as in the Symm release), so the margin is in the units of
    the raw embeddings.

    Parameters
    ----------
    margin : float, default 0.2
    squared : bool, default True
    num_instances, n_inner_pts, symm_ratio, symm_norm_ratio, symm_norm
        The Symm set-up (2, 0, 2.0, 1.0, False; see :class:`MetricLoss`).

    Inputs:
        - **embeddings**: (B, D), rows (2i, 2i+1) a pair of one class, not normalised.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **loss**: (1,) the batch loss.
    """

    loss_name = "symm_triplet"
    symmetrical = True

    def __init__(self, margin=0.2, squared=True, num_instances=2, n_inner_pts=0, symm_ratio=2.0,
                 symm_norm_ratio=1.0, symm_norm=False, **kwargs):
        self._check_symm(num_instances, n_inner_pts, symm_ratio, symm_norm_ratio, symm_norm)
        super().__init__(margin=margin, squared=squared, num_instances=num_instances, **kwargs)

    @classmethod
    def options_from_flags(cls, args):
        return dict(num_instances=args.num_instances, n_inner_pts=args.n_inner_pts, symm_ratio=args.symm_ratio,
                    symm_norm_ratio=args.symm_norm_ratio, symm_norm=args.symm_norm, margin=args.triplet_margin,
                    squared=args.triplet_squared)
