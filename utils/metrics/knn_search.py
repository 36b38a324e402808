"""Exact k-nearest-neighbour search in blocks: the one kNN every metric and every gallery search uses.

Distances are Euclidean; on unit vectors this orders neighbours exactly as cosine similarity does.
A query never retrieves itself (excluded by index, not by a sentinel distance) and equal distances
go to the smaller index. Nothing holds an N x N matrix: queries are processed in blocks with a
running top-K. ``knn='faiss'`` uses an exact flat faiss index when faiss is installed.
"""
import importlib

import numpy as np

KNN_BACKENDS = ("numpy", "faiss")  # exact search: blocks of NumPy products, or a faiss flat index
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
    raise ValueError("knn must be %s, got %r" % (" or ".join(map(repr, KNN_BACKENDS)), knn))


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
