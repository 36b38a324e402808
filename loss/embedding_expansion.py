"""Embedding Expansion: synthetic points on the segment between two positives."""
from mxnet.gluon import HybridBlock

from utils.flags import str2bool

from ._checks import check_bool, check_int
from ._flag import LossFlag, Range
from .layout import check_even_pairs

# EE's flags (the original release's, in main.py's "loss" group).
N_INNER_PTS = LossFlag("n_inner_pts", 2, int, "synthetic points per pair for Embedding Expansion; 0 disables EE",
                       range=Range(lambda v: v >= 0, "must be 0 (no EE) or more"))
EE_L2NORM = LossFlag("ee_l2norm", True, str2bool, "L2-normalise the synthetic points of EE")


class EmbeddingExpansion(HybridBlock):
    """Embedding Expansion (EE) of a batch of paired embeddings.

    From "Embedding Expansion: Augmentation in Embedding Space for Deep Metric Learning",
    Byungsoo Ko and Geonmo Gu, CVPR 2020, arXiv:2003.02546.

    Each row i is paired with its partner p(i) = i XOR 1 (rows 2i and 2i+1 swap). With
    n = n_inner_pts, the n points that divide the segment from X[i] to X[p(i)] into n + 1 equal
    parts are

        S_k[i] = (k * X[p(i)] + (n + 1 - k) * X[i]) / (n + 1),   k = 1 ... n,

    each L2-normalised (S_k[i] / sqrt(|S_k[i]|^2 + 1e-10)) when ``l2_norm`` is true. The output is
    the originals followed by the synthetic points, E = [X; S_1; ...; S_n], with the labels
    repeated n + 1 times, so row i + k*B of E is the k-th synthetic point of original i.

    The block has no parameters and reads no shape, so it hybridizes (also with
    ``static_alloc=True, static_shape=True``) and one hybridized block serves any even batch size.

    Parameters
    ----------
    num_instances : int
        Images per class in a batch, as drawn by the sampler. Must be even and positive; it is only
        validated here (the pairing itself needs nothing but the layout below).
    n_inner_pts : int
        Number n of synthetic points per pair, n >= 0. With n = 0 the inputs are returned
        unchanged (as copies).
    l2_norm : bool, default True
        L2-normalise each synthetic point (the original's ``ee_l2norm``).

    Inputs:
        - **embeddings**: (B, D) embeddings, B even, normally L2-normalised.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **expanded**: ((n + 1) B, D) rows [X; S_1; ...; S_n], dtype of ``embeddings``.
        - **expanded_labels**: ((n + 1) B,) the labels tiled n + 1 times.

    Precondition: rows 2i and 2i + 1 share a class (the sampler emits num_instances consecutive
    images per class with num_instances even). This is not checked; a batch that breaks it yields
    synthetic points between two classes labelled with one of them.
    """

    def __init__(self, num_instances, n_inner_pts, l2_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.num_instances = check_int("num_instances", num_instances, minimum=2)
        check_even_pairs(self.num_instances, "Embedding Expansion")
        self.n_inner_pts = check_int("n_inner_pts", n_inner_pts, minimum=0)
        self.l2_norm = check_bool("l2_norm", l2_norm)

    def hybrid_forward(self, F, embeddings, labels):
        n = self.n_inner_pts
        if n == 0:
            # A hybridized block must not return an input as an output: with static_alloc MXNet
            # then fails in backward ("storage_type_num_unknown_nodes"). Copy instead.
            return F.identity(embeddings), F.identity(labels)

        # (B, D) -> (B/2, 2, D) -> swap within each pair -> (B, D): row i becomes X[i XOR 1].
        partners = F.reshape(
            F.reverse(F.reshape(embeddings, shape=(-4, -1, 2, -2)), axis=1), shape=(-3, -2)
        )
        total = float(n + 1)
        points = [embeddings]
        for k in range(1, n + 1):
            inner = (partners * float(k) + embeddings * (total - k)) / total
            if self.l2_norm:
                inner = F.L2Normalization(inner, mode="instance")
            points.append(inner)
        expanded = F.concat(*points, dim=0)
        expanded_labels = F.concat(*([labels] * (n + 1)), dim=0)
        return expanded, expanded_labels

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(num_instances={self.num_instances}, "
            f"n_inner_pts={self.n_inner_pts}, l2_norm={self.l2_norm})"
        )
