"""Clustering metrics of embeddings: k-means, NMI and pairwise F1, from contingency counts (never
O(N^2)).

k-means clusters the finite rows; rows that are not finite form one cluster of their own.
"""
import warnings

import numpy as np

from .embeddings import _label_codes, non_finite_rows
from .knn_search import _faiss

CLUSTER_BACKENDS = ("auto", "sklearn", "faiss")  # k-means of NMI and F1 (see cluster)


def _contingency(cluster_ids, labels):
    """Non-zero cells of the cluster × class contingency table, and the marginals.

    Dense bincount when C·K is small, otherwise a sort of the N pair codes: O(N + C·K) memory
    and time in the dense case, O(N log N) in the sparse one; never O(N²)."""
    cluster_ids = np.asarray(cluster_ids).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if cluster_ids.shape != labels.shape:
        raise ValueError("cluster_ids and labels must have the same length, got %d and %d"
                         % (cluster_ids.size, labels.size))
    c_codes, c_counts = _label_codes(cluster_ids)
    l_codes, l_counts = _label_codes(labels)
    n_l = l_counts.size
    pair = c_codes.astype(np.int64) * n_l + l_codes
    if c_counts.size * n_l <= 4 * labels.size + (1 << 20):
        cells = np.bincount(pair, minlength=c_counts.size * n_l)
        cells = cells[cells > 0]
    else:
        _, cells = np.unique(pair, return_counts=True)
    return cells.astype(np.float64), c_counts.astype(np.float64), l_counts.astype(np.float64)


def _entropy(counts, n):
    p = counts / n
    return float(-np.sum(p * np.log(p)))


def nmi(cluster_ids, labels):
    """Normalised mutual information, arithmetic normalisation: MI / ((H(C) + H(Y)) / 2).

    Equal to ``sklearn.metrics.normalized_mutual_info_score(labels, cluster_ids)`` including its
    conventions (1.0 when both sides have one group; 0.0 when MI = 0)."""
    cells, c_counts, l_counts = _contingency(cluster_ids, labels)
    n = float(c_counts.sum())
    if c_counts.size == l_counts.size and c_counts.size <= 1:
        return 1.0
    # MI = Σ p_ij log(p_ij / (p_i p_j)) = H(C) + H(Y) − H(C, Y), from the non-zero cells only.
    h_c, h_y, h_cy = _entropy(c_counts, n), _entropy(l_counts, n), _entropy(cells, n)
    mi = max(h_c + h_y - h_cy, 0.0)
    if mi <= 1e-15:
        return 0.0
    return mi / ((h_c + h_y) / 2.0)


def pairwise_f1(cluster_ids, labels):
    """Pairwise clustering F1 of DML papers (e.g. Song et al., CVPR 2016).

    Over unordered pairs of items: TP = pairs in the same cluster and the same class,
    precision = TP / (pairs in the same cluster), recall = TP / (pairs in the same class),
    F1 = 2PR / (P + R). Computed from contingency counts (Σ C(n, 2)), O(N + C·K), never
    O(N²). Returns 0.0 when there are no same-cluster pairs, no same-class pairs or TP = 0."""
    cells, c_counts, l_counts = _contingency(cluster_ids, labels)
    tp = float(np.sum(cells * (cells - 1) / 2))
    same_cluster = float(np.sum(c_counts * (c_counts - 1) / 2))
    same_class = float(np.sum(l_counts * (l_counts - 1) / 2))
    if tp == 0 or same_cluster == 0 or same_class == 0:
        return 0.0
    precision, recall = tp / same_cluster, tp / same_class
    return 2 * precision * recall / (precision + recall)


def _kmeans_faiss(x, n_clusters, seed, niter):
    faiss = _faiss(required=True)
    km = faiss.Kmeans(x.shape[1], n_clusters, niter=niter, seed=seed, verbose=False,
                      min_points_per_centroid=1,
                      max_points_per_centroid=max(256, x.shape[0] // n_clusters + 1))
    km.train(x)
    _, assign = km.index.search(x, 1)
    return assign.reshape(-1).astype(np.int64)


def _kmeans_sklearn(x, n_clusters, seed, niter):
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    if x.shape[0] * n_clusters <= 5e7:
        km = KMeans(n_clusters=n_clusters, n_init=1, random_state=seed, max_iter=max(niter, 100))
    else:
        # k-means++ seeding is O(N·K·D·log K) in small matrix products: far too slow at SOP
        # size (60k points, 11k clusters). Random seeding + Lloyd iterations (one BLAS product
        # per chunk) instead. MiniBatchKMeans was tried and rejected: slower, and most of its
        # clusters collapse (docs/performance.md, Inside the code).
        km = KMeans(n_clusters=n_clusters, init="random", n_init=1, random_state=seed,
                    max_iter=niter, algorithm="lloyd")
    with warnings.catch_warnings():
        # Fewer distinct points than clusters (embeddings that collapsed to a point) still get an
        # assignment; the training loop says that a network collapsed (train/loop.py), and
        # sklearn's ConvergenceWarning would be a second, bare line on stderr.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return km.fit_predict(x).astype(np.int64)


def cluster(embeddings, n_clusters, backend="auto", seed=0, niter=20):
    """k-means cluster ids (int64, shape (N,)) of the rows of ``embeddings``.

    Parameters
    ----------
    embeddings : ndarray, shape (N, D)
    n_clusters : int
        1 <= n_clusters <= N (the number of test classes for NMI / F1).
    backend : {'auto', 'sklearn', 'faiss'}
        'sklearn': ``KMeans`` (k-means++, up to max(niter, 100) iterations) when N·K <= 5e7,
        else random seeding and ``niter`` Lloyd iterations. 'faiss': ``faiss.Kmeans``
        (``niter`` iterations; needs ``pip install faiss-cpu==1.8.0.post1``). 'auto' is
        'sklearn', the faster of the two at SOP size, with the same NMI (docs/performance.md,
        Inside the code).
    seed : int
    niter : int

    Returns
    -------
    ndarray of int64, shape (N,)
    """
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n_clusters = int(n_clusters)
    if not 1 <= n_clusters <= x.shape[0]:
        raise ValueError("need 1 <= n_clusters <= N, got %d for N=%d" % (n_clusters, x.shape[0]))
    if backend not in CLUSTER_BACKENDS:
        raise ValueError("cluster backend must be %s or %r, got %r"
                         % (", ".join(map(repr, CLUSTER_BACKENDS[:-1])), CLUSTER_BACKENDS[-1], backend))
    if backend in ("auto", "sklearn"):
        return _kmeans_sklearn(x, n_clusters, seed, niter)
    return _kmeans_faiss(x, n_clusters, seed, niter)


def _cluster_finite(x, n_clusters, backend, seed):
    """Cluster ids of every row: k-means of the finite rows (at most as many clusters as there are
    such rows), and one further cluster holding every non-finite row."""
    bad = non_finite_rows(x)
    if not bad.any():
        return cluster(x, n_clusters, backend=backend, seed=seed)
    ids = np.zeros(x.shape[0], dtype=np.int64)  # no finite row at all: one cluster
    num_finite = int((~bad).sum())
    if num_finite:
        ids[~bad] = cluster(x[~bad], min(n_clusters, num_finite), backend=backend, seed=seed)
        ids[bad] = ids[~bad].max() + 1
    return ids
