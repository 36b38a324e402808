"""Pairwise building blocks shared by the metric-learning losses.

Every function takes the symbol/ndarray namespace ``F`` first, so it can be called from a
``hybrid_forward`` and works on both ``mx.nd`` and ``mx.sym``. Nothing here reads a shape: sizes come
from reshape codes and broadcasting, so one hybridized block serves any batch size.
"""


def pairwise_euclidean(F, x, y, clip_min=1e-12, clip_max=1e12):
    """Euclidean distance between every row of ``x`` and every row of ``y``.

    d(a, b) = sqrt(clip(|a|^2 + |b|^2 - 2 a.b, clip_min, clip_max))

    The squared distance is expanded into norms and a matrix product (one GEMM, no M x N x D
    tensor). Clipping keeps the square root away from 0, so d(a, a) = sqrt(clip_min) and the
    gradient of a clipped entry is exactly 0 (MXNet's ``clip`` passes no gradient outside
    [clip_min, clip_max]), as in the original Embedding Expansion code.

    Parameters
    ----------
    F : module
        ``mx.nd`` or ``mx.sym``.
    x : NDArray or Symbol
        Shape (M, D).
    y : NDArray or Symbol
        Shape (N, D), same dtype as ``x``.
    clip_min, clip_max : float
        Bounds applied to the squared distance before the square root.

    Returns
    -------
    NDArray or Symbol
        Shape (M, N); entry (r, c) is d(x_r, y_c).
    """
    squared_x = F.sum(F.square(x), axis=1, keepdims=True)  # (M, 1)
    squared_y = F.reshape(F.sum(F.square(y), axis=1), shape=(1, -1))  # (1, N)
    squared = F.broadcast_add(squared_x, squared_y) - 2 * F.dot(x, y, transpose_b=True)
    return F.sqrt(F.clip(squared, clip_min, clip_max))


def same_label_mask(F, labels_a, labels_b, like=None):
    """Indicator of equal labels for every pair (row of ``labels_a``, row of ``labels_b``).

    mask(r, c) = 1 if labels_a[r] == labels_b[c] else 0

    Parameters
    ----------
    F : module
        ``mx.nd`` or ``mx.sym``.
    labels_a : NDArray or Symbol
        Shape (M,) or (M, 1).
    labels_b : NDArray or Symbol
        Shape (N,) or (N, 1), same dtype as ``labels_a``.
    like : NDArray or Symbol, optional
        A tensor of shape (M, N) (typically the distance matrix). When given, the mask takes its
        dtype, so it can be multiplied into it: labels are often integers while distances are
        floats, and MXNet does not mix dtypes in arithmetic. When omitted, the mask has the labels'
        dtype.

    Returns
    -------
    NDArray or Symbol
        Shape (M, N) of 0/1 values. Its complement (different labels) is ``1 - mask``.
    """
    mask = F.broadcast_equal(F.reshape(labels_a, shape=(-1, 1)), F.reshape(labels_b, shape=(1, -1)))
    if like is None:
        return mask
    # `where` accepts a condition of any dtype and returns the dtype of its branches.
    return F.where(mask, F.ones_like(like), F.zeros_like(like))
