"""Retrieval metrics as pure functions of NumPy arrays.

Query set = gallery set, and a query never retrieves itself: neighbours are searched among the
other rows only. Distances are Euclidean; on unit vectors this orders neighbours exactly as cosine
similarity does. Nothing here holds an N × N matrix: queries are processed in blocks. One exact
kNN (:func:`knn`) serves every metric; equal distances go to the smaller index.

A row with a NaN or infinite entry (a network whose parameters broke) is no point: it is left out
of the gallery, and as a query it retrieves nothing, so it counts as a miss in every retrieval
metric; k-means clusters the finite rows and puts such rows in one cluster of their own.
"""
import importlib

import numpy as np


def _parse_ks(ks):
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError("recall ranks must be positive integers, got %r" % (ks,))
    return ks


def nearest_neighbors(embeddings, k, block_size=1024):
    """Indices of the ``k`` nearest other rows of every row, nearest first: :func:`knn` (exact,
    blocked, the query excluded by index, equal distances to the smaller index).

    Parameters
    ----------
    embeddings : ndarray, shape (N, D)
    k : int
        Number of neighbours, at most N − 1.
    block_size : int
        Queries per block.

    Returns
    -------
    ndarray of int64, shape (N, k)
    """
    return knn(embeddings, k, block_size=block_size)


def recall_at_k(embeddings, labels, ks=(1, 2, 4, 8), block_size=1024):
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


# ---------------------------------------------------------------------------------------------
# Issue 4: exact blocked kNN with a running top-K, MAP@R / R-precision, clustering metrics.
# ---------------------------------------------------------------------------------------------

FAISS_MISSING = "faiss is not installed; pip install faiss-cpu==1.8.0.post1 or use --knn=numpy"

def _faiss(required):
    """The faiss module, or None when it is not installed (ValueError when ``required``)."""
    try:
        return importlib.import_module("faiss")
    except ImportError:
        if required:
            raise ValueError(FAISS_MISSING)
        return None


def _auto_block_size(num, block_size):
    if block_size is None:
        # One float32 score block of about 256 MiB.
        block_size = (1 << 26) // max(num, 1)
    return int(max(1, min(block_size, max(num, 1))))


def _sort_keys(scores, cols):
    """int64 keys that sort ascending by (score descending, column ascending), exactly.

    The float32 score is mapped to an order-preserving int32 and put in the high 32 bits; the
    column index fills the low 32 bits, so keys are unique and ties are broken by the index."""
    # + 0.0 turns -0.0 into +0.0, so that the two zeros tie as they do in a float comparison.
    bits = (np.asarray(scores, dtype=np.float32) + np.float32(0.0)).view(np.int32)
    ordered = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))  # ascending with the float value
    return (-(ordered.astype(np.int64)) << 32) | cols


def _select_keys(keys, k):
    """The ``k`` smallest keys along the last axis, sorted."""
    if k < keys.shape[-1]:
        keys = np.partition(keys, k - 1, axis=-1)[..., :k]
    return np.sort(keys, axis=-1)


def _topk_rows(scores, k, mask_buf=None):
    """Columns of the ``k`` largest entries of every row of ``scores`` (b, n), best first, ties
    by the smaller column. Exact.

    Instead of an O(n) argpartition of every full row (which costs about twice the matrix
    product at SOP size), a per-row threshold ``t`` is computed that provably has at least
    ``k`` entries >= t: the first G·⌊n/G⌋ columns are split into G >= k strided groups, and t
    is the k-th largest of the G group maxima (k distinct groups have a maximum >= t). An entry
    below t is beaten by at least k entries, so only entries >= t (about 1.1-1.2 k per row,
    any column) are candidates; those are selected exactly, row by row."""
    b, n = scores.shape
    groups = max(4 * k, 256)
    per_group = n // groups
    if per_group < 4:
        cols = np.broadcast_to(np.arange(n, dtype=np.int64), (b, n))
        return _select_keys(_sort_keys(scores, cols), k) & np.int64(0xFFFFFFFF)
    main = per_group * groups
    # Maximum over the strided groups: a reduction whose inner loop runs along G contiguous
    # floats, much faster than a reduction over short contiguous groups.
    gmax = scores[:, :main].reshape(b, per_group, groups).max(axis=1)
    thresh = np.partition(gmax, groups - k, axis=1)[:, groups - k]
    if mask_buf is None or mask_buf.size < b * n:
        mask_buf = np.empty(b * n, dtype=bool)
    mask = mask_buf[: b * n].reshape(b, n)
    np.greater_equal(scores, thresh[:, None], out=mask)
    out = np.empty((b, k), dtype=np.int64)
    for row in range(b):
        # A Python loop over rows beats a vectorised nonzero + scatter into a padded key
        # matrix: few candidates per row, and no int64 index arithmetic over the whole block.
        cols = np.flatnonzero(mask[row])
        out[row] = _select_keys(_sort_keys(scores[row, cols], cols), k)
    return out & np.int64(0xFFFFFFFF)


def _knn_blocks_numpy(embeddings, k, block_size, inner_product=False):
    """Yield ``(start, stop, neighbours)`` for consecutive query blocks (exact kNN, self excluded).

    One float32 matrix product per block (BLAS uses all its threads); memory O(block × N).
    Euclidean order uses the score ``q·g − |g|²/2`` (same order as the distance); with
    ``inner_product`` the score is ``q·g`` (cosine order for unit vectors)."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    num = x.shape[0]
    half_sq = None if inner_product else 0.5 * np.einsum("ij,ij->i", x, x)
    buf = np.empty((min(block_size, num), num), dtype=np.float32)
    mask_buf = np.empty(buf.size, dtype=bool)  # reused: no page faults per block
    for start in range(0, num, block_size):
        stop = min(start + block_size, num)
        scores = buf[: stop - start]
        np.matmul(x[start:stop], x.T, out=scores)
        if half_sq is not None:
            scores -= half_sq[None, :]
        rows = np.arange(stop - start)
        scores[rows, rows + start] = -np.inf
        yield start, stop, _topk_rows(scores, k, mask_buf)


def _knn_blocks_faiss(embeddings, k, block_size, inner_product=False):
    """Same contract as :func:`_knn_blocks_numpy`, with an exact faiss flat index."""
    faiss = _faiss(required=True)
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    num, dim = x.shape
    index = faiss.IndexFlatIP(dim) if inner_product else faiss.IndexFlatL2(dim)
    index.add(x)
    for start in range(0, num, block_size):
        stop = min(start + block_size, num)
        _, found = index.search(x[start:stop], k + 1)
        # Remove the query itself by index; if a duplicate pushed it out, drop the last column.
        is_self = found == np.arange(start, stop)[:, None]
        is_self[~is_self.any(axis=1), -1] = True
        yield start, stop, found[~is_self].reshape(stop - start, k).astype(np.int64)


def _is_unit(x):
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    return bool(np.all(np.abs(norms - 1.0) < 1e-5))


def _knn_blocks(embeddings, k, knn="numpy", block_size=None):
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    num = x.shape[0]
    if not 1 <= k <= num - 1:
        raise ValueError("need 1 <= k <= N - 1 neighbours, got k=%d for N=%d" % (k, num))
    block_size = _auto_block_size(num, block_size)
    if knn == "numpy":
        return _knn_blocks_numpy(x, k, block_size)
    if knn == "faiss":
        _faiss(required=True)
        return _knn_blocks_faiss(x, k, block_size, inner_product=_is_unit(x))
    raise ValueError("knn must be 'numpy' or 'faiss', got %r" % (knn,))


def knn(embeddings, k, knn="numpy", block_size=None):
    """Exact k nearest other rows (Euclidean; self excluded), nearest first, ties by index
    (numpy backend). ``knn='faiss'`` uses an exact flat index (IP on unit vectors, else L2).

    Returns int64 array (N, k)."""
    x = np.asarray(embeddings)
    out = np.empty((x.shape[0], k), dtype=np.int64)
    for start, stop, nbr in _knn_blocks(x, k, knn=knn, block_size=block_size):
        out[start:stop] = nbr
    return out


def knn_of_queries(queries, gallery, k, exclude=None):
    """Exact k nearest gallery rows of each query row (Euclidean), nearest first, ties by the
    smaller gallery index: the top-K selection of :func:`knn` for queries that are not the
    gallery (a few fixed queries, or images searched in a gallery).

    ``exclude[i]`` (int, -1 for none) is a gallery row that query ``i`` never retrieves (the query
    itself when it is a gallery row). Returns a list with an int64 array of at most ``k`` indices
    per query (fewer when the gallery holds fewer other rows).
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    g = np.ascontiguousarray(gallery, dtype=np.float32)
    exclude = np.full(q.shape[0], -1, dtype=np.int64) if exclude is None else np.asarray(exclude, np.int64)
    k = int(min(k, g.shape[0]))
    if q.shape[0] == 0 or k < 1:
        return [np.zeros(0, dtype=np.int64) for _ in range(q.shape[0])]
    scores = q @ g.T - 0.5 * np.einsum("ij,ij->i", g, g)[None, :]
    rows = np.flatnonzero(exclude >= 0)
    scores[rows, exclude[rows]] = -np.inf
    top = _topk_rows(scores, k)
    return [row[np.isfinite(score[row])] for row, score in zip(top, scores)]


def _check(embeddings, labels):
    labels = np.asarray(labels).reshape(-1)
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or embeddings.shape[0] != labels.shape[0]:
        raise ValueError(
            "embeddings must be (N, D) with one label per row, got %s and %d labels"
            % (embeddings.shape, labels.shape[0])
        )
    if embeddings.shape[0] < 2:
        raise ValueError("need at least two embeddings, got %d" % embeddings.shape[0])
    return embeddings, labels


def _label_codes(labels):
    uniq, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return codes.reshape(-1), counts


_METRIC_NAMES = ("recall", "map_at_r", "r_precision")


def non_finite_rows(embeddings):
    """Boolean mask (N,) of the rows holding a NaN or an infinity."""
    return ~np.isfinite(np.asarray(embeddings)).all(axis=1)


def retrieval_metrics(embeddings, labels, ks=(1, 2, 4, 8), metrics=_METRIC_NAMES, knn="numpy",
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


# ---------------------------------------------------------------------------------------------
# Clustering
# ---------------------------------------------------------------------------------------------

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

    if x.shape[0] * n_clusters <= 5e7:
        km = KMeans(n_clusters=n_clusters, n_init=1, random_state=seed, max_iter=max(niter, 100))
    else:
        # k-means++ seeding is O(N·K·D·log K) in small matrix products: far too slow at SOP
        # size (60k points, 11k clusters). Random seeding + Lloyd iterations (one BLAS product
        # per chunk) takes 20-30 s there on 2 cores. MiniBatchKMeans was tried and rejected:
        # slower (58 s) and most of its 11k clusters collapse (NMI 0.53 vs 0.90, F1 0.001 vs 0.40).
        km = KMeans(n_clusters=n_clusters, init="random", n_init=1, random_state=seed,
                    max_iter=niter, algorithm="lloyd")
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
        'sklearn': at SOP size on 2 cores it took 20-30 s against about 125 s for faiss-cpu
        1.8.0 with 5 iterations (whose BLAS ran on one thread), with the same NMI.
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
    if backend in ("auto", "sklearn"):
        return _kmeans_sklearn(x, n_clusters, seed, niter)
    if backend == "faiss":
        return _kmeans_faiss(x, n_clusters, seed, niter)
    raise ValueError("cluster backend must be 'auto', 'sklearn' or 'faiss', got %r" % (backend,))


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


def l2_normalize(embeddings, eps=1e-12):
    x = np.asarray(embeddings, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def evaluate_embeddings(embeddings, labels, ks=(1, 2, 4, 8),
                        metrics=("recall", "map_at_r", "r_precision", "nmi", "f1"), knn="numpy",
                        cluster_backend="auto", block_size=None, seed=0):
    """All evaluation metrics of L2-normalised ``embeddings``.

    Returns a flat dict: ``R@k`` for each k, ``MAP@R``, ``RP``, ``NMI``, ``F1`` (only those
    asked). Clustering (k-means with n_clusters = number of distinct labels) runs only when
    'nmi' or 'f1' is asked. Rows that are not finite are misses (see the module docstring); how
    many there are is :func:`non_finite_rows`'s to say."""
    embeddings, labels = _check(embeddings, labels)
    metrics = tuple(metrics)
    unknown = set(metrics) - set(_METRIC_NAMES) - {"nmi", "f1"}
    if unknown:
        raise ValueError("unknown metrics %s" % sorted(unknown))
    x = l2_normalize(embeddings)
    out = {}
    retrieval = tuple(m for m in metrics if m in _METRIC_NAMES)
    if retrieval:
        out.update(retrieval_metrics(x, labels, ks, metrics=retrieval, knn=knn, block_size=block_size))
    if "nmi" in metrics or "f1" in metrics:
        ids = _cluster_finite(x, len(np.unique(labels)), cluster_backend, seed)
        if "nmi" in metrics:
            out["NMI"] = nmi(ids, labels)
        if "f1" in metrics:
            out["F1"] = pairwise_f1(ids, labels)
    return out
