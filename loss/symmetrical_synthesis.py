"""Symmetrical Synthesis: the mirror images of each positive pair about each other's direction."""
from mxnet.gluon import HybridBlock

from utils.flags import str2bool

from ._checks import check_bool, check_int, check_real
from ._flag import LossFlag
from ._ops import interleave_rows, pair_rows, symmetric_points
from .layout import check_symm_pairs, check_without_ee

# The flags of every symmetrical loss (after the losses' own in --help).
SYMM_RATIO = LossFlag("symm_ratio", 2.0, float,
                      "Symmetrical Synthesis: Q = symm_norm_ratio * (symm_ratio * R - P); 2 mirrors P")
SYMM_NORM_RATIO = LossFlag("symm_norm_ratio", 1.0, float, "Symmetrical Synthesis: scale of Q")
SYMM_NORM = LossFlag("symm_norm", False, str2bool,
                     "Symmetrical Synthesis: rescale each synthetic point to the norm of its basis")


def check_symm_args(num_instances, n_inner_pts, symm_ratio, symm_norm_ratio, symm_norm, loss_name):
    """Validate the arguments every Symm loss shares; returns them converted."""
    num_instances = check_int("num_instances", num_instances, minimum=1)
    check_symm_pairs(num_instances, loss_name)
    check_without_ee(check_int("n_inner_pts", n_inner_pts, minimum=0), loss_name)
    return (
        num_instances,
        check_real("symm_ratio", symm_ratio),
        check_real("symm_norm_ratio", symm_norm_ratio),
        check_bool("symm_norm", symm_norm),
    )


class SymmetricalSynthesis(HybridBlock):
    """Symmetrical Synthesis (Symm) of a batch of pairs.

    From "Symmetrical Synthesis for Deep Metric Learning", Geonmo Gu and Byungsoo Ko, AAAI 2020,
    arXiv:2001.11658.

    The batch holds N classes x 2 images: anchors A = rows 0, 2, 4, ... and positives P = rows 1, 3,
    5, .... For a basis A and a point P (|v| = sqrt(|v|^2 + 1e-12)):

        U = A / |A|,   R = A + ((P - A) . U) U,   Q(A, P) = c * (s * R - P)
        (with symm_norm: Q <- Q / |Q| * |A|)

    with s = ``symm_ratio`` (2) and c = ``symm_norm_ratio`` (1): Q(A, P) is P mirrored about the line
    through the origin along A. sym1 = Q(A, P), sym2 = Q(P, A). The synthetic point of row r is the
    mirror image of its partner r XOR 1 about row r, so

        Z = rows sym1[0], sym2[0], sym1[1], sym2[1], ...   (Z[2i] = sym1[i], Z[2i+1] = sym2[i])

    has the labels of the batch, and the output is [X; Z] (2B rows) with the labels tiled twice,
    the same layout as :class:`EmbeddingExpansion` with one synthetic point per row.

    Parameters
    ----------
    num_instances : int, default 2
        Images per class in a batch; must be 2.
    symm_ratio : float, default 2.0
        s above (the release's ``symm_ratio``).
    symm_norm_ratio : float, default 1.0
        c above (the release's ``symm_norm_ratio``).
    symm_norm : bool, default False
        Rescale every synthetic point to the norm of its basis.

    Inputs:
        - **embeddings**: (B, D), B even, rows (2i, 2i+1) a pair of one class; not normalised.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **candidates**: (2B, D) rows [X; Z].
        - **candidate_labels**: (2B,) the labels tiled twice.
    """

    flags = (SYMM_RATIO, SYMM_NORM_RATIO, SYMM_NORM)

    def __init__(self, num_instances=2, symm_ratio=2.0, symm_norm_ratio=1.0, symm_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.num_instances, self.symm_ratio, self.symm_norm_ratio, self.symm_norm = check_symm_args(
            num_instances, 0, symm_ratio, symm_norm_ratio, symm_norm, "Symmetrical Synthesis"
        )

    def synthesize(self, F, anchors, positives):
        """(sym1, sym2) = (Q(A, P), Q(P, A)) for (N, D) anchors and positives."""
        options = dict(ratio=self.symm_ratio, norm_ratio=self.symm_norm_ratio, norm=self.symm_norm)
        return (
            symmetric_points(F, anchors, positives, **options),
            symmetric_points(F, positives, anchors, **options),
        )

    def synthetic_rows(self, F, embeddings):
        """Z: row r is the mirror image of row r XOR 1 about row r, (B, D)."""
        sym1, sym2 = self.synthesize(F, *pair_rows(F, embeddings))
        return interleave_rows(F, sym1, sym2)

    def hybrid_forward(self, F, embeddings, labels):
        candidates = F.concat(embeddings, self.synthetic_rows(F, embeddings), dim=0)
        return candidates, F.concat(labels, labels, dim=0)

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(num_instances={self.num_instances}, symm_ratio={self.symm_ratio}, "
            f"symm_norm_ratio={self.symm_norm_ratio}, symm_norm={self.symm_norm})"
        )
