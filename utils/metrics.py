"""Retrieval metrics as pure functions of NumPy arrays.

Query set = gallery set, and a query never retrieves itself: neighbours are searched among the
other rows only. Distances are Euclidean; on unit vectors this orders neighbours exactly as cosine
similarity does. Nothing here holds an N × N matrix: queries are processed in blocks.
"""
import numpy as np


def _parse_ks(ks):
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError("recall ranks must be positive integers, got %r" % (ks,))
    return ks


def nearest_neighbors(embeddings, k, block_size=1024):
    """Indices of the ``k`` nearest other rows of every row, nearest first.

    Squared Euclidean distances ``|q|² + |g|² − 2 q·g`` are computed for one block of queries at
    a time (memory O(block_size × N)); the query itself is excluded by setting its own entry to
    +inf, i.e. by index, not by a sentinel distance that a far point could beat. Ties are broken
    by the smaller index.

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
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    num = embeddings.shape[0]
    if not 1 <= k <= num - 1:
        raise ValueError("need 1 <= k <= N - 1 neighbours, got k=%d for N=%d" % (k, num))
    squared_norms = np.einsum("ij,ij->i", embeddings, embeddings)
    result = np.empty((num, k), dtype=np.int64)
    for start in range(0, num, block_size):
        stop = min(start + block_size, num)
        block = embeddings[start:stop]
        dist = squared_norms[start:stop, None] + squared_norms[None, :] - 2.0 * (block @ embeddings.T)
        rows = np.arange(stop - start)
        dist[rows, rows + start] = np.inf
        if k < num - 1:
            candidates = np.argpartition(dist, k, axis=1)[:, :k]
        else:
            candidates = np.argsort(dist, axis=1, kind="stable")[:, :k]
        cand_dist = np.take_along_axis(dist, candidates, axis=1)
        # Sort by distance, then by index, so that results are deterministic under ties.
        order = np.lexsort((candidates, cand_dist), axis=1)
        result[start:stop] = np.take_along_axis(candidates, order, axis=1)
    return result


def recall_at_k(embeddings, labels, ks=(1, 2, 4, 8), block_size=1024):
    """Recall@K: the fraction of queries with at least one same-label item among their K nearest.

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
    labels = np.asarray(labels).reshape(-1)
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or embeddings.shape[0] != labels.shape[0]:
        raise ValueError(
            "embeddings must be (N, D) with one label per row, got %s and %d labels"
            % (embeddings.shape, labels.shape[0])
        )
    max_k = min(max(ks), embeddings.shape[0] - 1)
    neighbors = nearest_neighbors(embeddings, max_k, block_size=block_size)
    hits = labels[neighbors] == labels[:, None]
    # first_hit[i] = rank (1-based) of the first correct neighbour, or inf.
    any_hit = hits.any(axis=1)
    first_hit = np.where(any_hit, hits.argmax(axis=1) + 1, np.inf)
    return {k: float(np.mean(first_hit <= k)) for k in ks}
