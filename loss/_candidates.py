"""The points a loss mines its negatives from: the originals, plus EE or Symm synthetic points."""
from ._checks import check_bool, check_int
from ._ops import distinct_synthetic_points
from .embedding_expansion import EmbeddingExpansion
from .symmetrical_synthesis import SymmetricalSynthesis


def build_expansion(num_instances, n_inner_pts, l2_norm):
    """An :class:`EmbeddingExpansion` when n_inner_pts > 0, else None (validating the arguments).

    Without EE any layout works, so an odd num_instances is only refused when n_inner_pts > 0
    (by :class:`EmbeddingExpansion`, with ``loss.layout.check_even_pairs``).
    """
    check_int("num_instances", num_instances, minimum=1)
    n_inner_pts = check_int("n_inner_pts", n_inner_pts, minimum=0)
    check_bool("l2_norm", l2_norm)
    if n_inner_pts == 0:
        return None
    return EmbeddingExpansion(num_instances, n_inner_pts, l2_norm)


def negative_candidates(F, synthesis, embeddings, labels):
    """Rows C = [X; synthetic points] and their labels; the B originals X come first.

    - ``synthesis`` None: C = X.
    - :class:`EmbeddingExpansion` with n points: C = [X; S_1[0::2]; ...; S_n[0::2]], the B + nB/2
      distinct points (row 2j+1 of S_k repeats row 2j of S_{n+1-k}, so it is left out and every
      synthetic point counts once).
    - :class:`SymmetricalSynthesis`: C = [X; Z], Z[2i] = sym1[i], Z[2i+1] = sym2[i].
    """
    if synthesis is None:
        return embeddings, labels
    if isinstance(synthesis, SymmetricalSynthesis):
        return synthesis(embeddings, labels)
    expanded, expanded_labels = synthesis(embeddings, labels)
    points, point_labels = distinct_synthetic_points(F, expanded, expanded_labels, synthesis.n_inner_pts)
    return F.concat(embeddings, points, dim=0), F.concat(labels, point_labels, dim=0)


def originals_block(F, matrix, labels):
    """The first B columns of a (B, M) matrix whose columns start with the B originals."""
    return F.slice_like(matrix, F.reshape(labels, shape=(1, -1)), axes=(1,))
