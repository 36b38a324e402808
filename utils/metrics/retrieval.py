"""Retrieval metrics as pure functions of NumPy arrays: Recall@K, MAP@R and R-precision.

Query set = gallery set, and a query never retrieves itself: neighbours are searched among the
other rows only, with one exact kNN (``utils.metrics.knn_search``) for every metric. A row that is
not finite is left out of the gallery and counts as a miss as a query.
"""
import numpy as np

from .embeddings import _check, _label_codes, non_finite_rows
from .knn_search import _knn_blocks
from .names import DEFAULT_RECALLK


def _parse_ks(ks):
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError("recall ranks must be positive integers, got %r" % (ks,))
    return ks


_METRIC_NAMES = ("recall", "map_at_r", "r_precision")


def recall_at_k(embeddings, labels, ks=DEFAULT_RECALLK, block_size=1024):
    """Recall@K: the fraction of queries with at least one same-label item among their K nearest.

    The ``R@k`` of :func:`retrieval_metrics` (one exact kNN, ties to the smaller index), keyed by k.

    Parameters
    ----------
    embeddings : ndarray, shape (N, D)
    labels : ndarray, shape (N,)
    ks : iterable of int

    Returns
    -------
    dict
        ``{k: recall}`` with float values in [0, 1], in the order of ``ks``.
    """
    ks = _parse_ks(ks)
    values = retrieval_metrics(embeddings, labels, ks, metrics=("recall",), block_size=block_size)
    return {k: values["R@%d" % k] for k in ks}


def retrieval_metrics(embeddings, labels, ks=DEFAULT_RECALLK, metrics=_METRIC_NAMES, knn="numpy",
                      block_size=None):
    """Recall@K, MAP@R and R-precision from one exact kNN search.

    Query set = gallery set; a query never retrieves itself. For query i, R_i is the number of
    *other* gallery items with its label. Neighbours are searched once for K = max(max ks, max R_i),
    capped at N − 1, and the metrics are accumulated block by block (memory O(block × N)).

    * ``R@k``: fraction of all N queries with a same-label item among their k nearest (queries
      with R = 0 count as misses, as in :func:`recall_at_k`).
    * ``MAP@R`` (Musgrave et al., ECCV 2020): mean over queries of
      (1/R) Σ_{j=1..R} P@j · rel(j), looking at the first R neighbours only.
    * ``RP`` (R-precision): mean over queries of (#same-label among the first R) / R.
      For MAP@R and RP, queries with R = 0 are excluded (undefined); if every query has R = 0
      they are NaN.

    Rows that are not finite (:func:`non_finite_rows`) are not in the gallery (R counts finite
    items only), and as queries they are misses: 0 in every R@k, and 0 in MAP@R and RP when their R
    is positive. All finite, this is the plain definition above.

    Returns a flat dict such as ``{'R@1': …, 'R@2': …, 'MAP@R': …, 'RP': …}`` (floats).
    """
    embeddings, labels = _check(embeddings, labels)
    metrics = tuple(metrics)
    unknown = set(metrics) - set(_METRIC_NAMES)
    if unknown:
        raise ValueError("unknown retrieval metrics %s; choose from %s" % (sorted(unknown), _METRIC_NAMES))
    num = embeddings.shape[0]
    codes, _ = _label_codes(labels)
    finite = ~non_finite_rows(embeddings)
    gallery_codes = codes[finite]
    # R_i of every query: the finite items of its class, itself excluded when it is one of them.
    r_all = np.bincount(gallery_codes, minlength=codes.max() + 1)[codes] - finite
    want_recall = "recall" in metrics
    want_r = "map_at_r" in metrics or "r_precision" in metrics
    ks = _parse_ks(ks) if want_recall else []

    hits_at = np.zeros(len(ks), dtype=np.int64)
    ap_sum = rp_sum = 0.0
    num_gallery = int(finite.sum())
    if num_gallery >= 2:  # else no query has a neighbour: every query is a miss
        hits_at, ap_sum, rp_sum = _retrieval_sums(embeddings[finite], gallery_codes, r_all[finite], ks,
                                                  want_r, knn, block_size)
    out = {}
    for kk, h in zip(ks, hits_at):
        out["R@%d" % kk] = float(h) / num
    n_valid = int((r_all > 0).sum())
    if "map_at_r" in metrics:
        out["MAP@R"] = ap_sum / n_valid if n_valid else float("nan")
    if "r_precision" in metrics:
        out["RP"] = rp_sum / n_valid if n_valid else float("nan")
    return out


def _retrieval_sums(embeddings, codes, r_all, ks, want_r, knn, block_size):
    """Hits at each k, and the sums of AP@R and R-precision over the queries with R > 0, for
    ``embeddings`` (at least two rows) as both queries and gallery."""
    num = embeddings.shape[0]
    need = max(ks) if ks else 1
    if want_r:
        need = max(need, int(r_all.max()))
    k = max(1, min(need, num - 1))
    hits_at = np.zeros(len(ks), dtype=np.int64)
    ap_sum = rp_sum = 0.0
    ranks = np.arange(1, k + 1, dtype=np.float64)
    for start, stop, nbr in _knn_blocks(embeddings, k, knn=knn, block_size=block_size):
        rel = codes[nbr] == codes[start:stop, None]
        if ks:
            first = np.where(rel.any(axis=1), rel.argmax(axis=1) + 1, np.iinfo(np.int64).max)
            hits_at += np.array([(first <= kk).sum() for kk in ks], dtype=np.int64)
        if want_r:
            r = r_all[start:stop]
            keep = r > 0
            rel_r = rel[keep] & (ranks[None, :] <= r[keep, None])
            cum = np.cumsum(rel_r, axis=1)
            rk = r[keep].astype(np.float64)
            ap_sum += float(np.sum((cum / ranks) * rel_r, axis=1).dot(1.0 / rk))
            rp_sum += float((cum[:, -1] / rk).sum())
    return hits_at, ap_sum, rp_sum


def map_at_r(embeddings, labels, knn="numpy", block_size=None):
    """MAP@R (Musgrave et al., "A Metric Learning Reality Check", ECCV 2020).

    Query = gallery, self excluded; R = number of other same-label items; queries with R = 0
    are excluded from the mean. See :func:`retrieval_metrics`."""
    return retrieval_metrics(embeddings, labels, ks=(1,), metrics=("map_at_r",), knn=knn,
                             block_size=block_size)["MAP@R"]


def r_precision(embeddings, labels, knn="numpy", block_size=None):
    """R-precision: mean of (#same-label among the R nearest others) / R, R = number of other
    same-label items; queries with R = 0 are excluded. See :func:`retrieval_metrics`."""
    return retrieval_metrics(embeddings, labels, ks=(1,), metrics=("r_precision",), knn=knn,
                             block_size=block_size)["RP"]
