"""Shape-free building blocks shared by the pair- and softmax-based losses.

Every function takes the symbol/ndarray namespace ``F`` first, so it can be called from a
``hybrid_forward``; none reads a shape. Selections ("the hardest", "the closest") are made with
``argmax``/``argmin`` and ``pick``, so the gradient reaches exactly one selected entry even when two
candidates tie (MXNet's ``max``/``min`` backward would send the full gradient to every tied entry).
"""

# Stands in for "no candidate" in masked reductions; exp(-1e4) is exactly 0 in float32/float64.
NEG_FILL = -1e4
# Added under square roots of norms (the Symm release's EPS).
NORM_EPS = 1e-12


def pair_rows(F, x):
    """Rows 0, 2, 4, ... and rows 1, 3, 5, ... of ``x``: the anchors A and positives P of the pairs.

    ``x`` is (B, D) with B even; returns two (B/2, D) arrays.
    """
    pairs = F.reshape(x, shape=(-4, -1, 2, -2))  # (B/2, 2, D)
    first = F.slice_axis(pairs, axis=1, begin=0, end=1)
    second = F.slice_axis(pairs, axis=1, begin=1, end=2)
    return F.reshape(first, shape=(0, -3)), F.reshape(second, shape=(0, -3))  # (B/2, D) each


def pair_labels(F, labels):
    """The label of each pair: entries 0, 2, 4, ... of the (B,) ``labels``, shape (B/2,)."""
    pairs = F.reshape(labels, shape=(-1, 2))
    return F.reshape(F.slice_axis(pairs, axis=1, begin=0, end=1), shape=(-1,))


def interleave_rows(F, even, odd):
    """Inverse of :func:`pair_rows` for (N, D) inputs: rows even[0], odd[0], even[1], odd[1], ..."""
    stacked = F.concat(F.expand_dims(even, axis=1), F.expand_dims(odd, axis=1), dim=1)  # (N, 2, D)
    return F.reshape(stacked, shape=(-3, -2))


def identity_mask(F, rows, like):
    """(M, M) identity matrix with the dtype of ``like``, an (M, M) tensor (M = rows of ``rows``)."""
    index = F.contrib.arange_like(rows, axis=0)
    eye = F.broadcast_equal(F.reshape(index, shape=(-1, 1)), F.reshape(index, shape=(1, -1)))
    return F.where(eye, F.ones_like(like), F.zeros_like(like))


def distinct_synthetic_points(F, expanded, expanded_labels, n):
    """The n B/2 distinct synthetic points of an Embedding Expansion output, and their labels.

    ``expanded`` = [X; S_1; ...; S_n] from :class:`EmbeddingExpansion`. Row 2j + 1 of S_k equals row
    2j of S_{n+1-k} (the same point of the segment between X[2j] and X[2j+1]), so the even rows of
    S_1 ... S_n hold every synthetic point once: returned in the order k = 1..n, then j.
    """
    blocks = F.reshape(expanded, shape=(-4, n + 1, -1, -2))  # (n+1, B, D)
    pairs = F.reshape(blocks, shape=(0, -4, -1, 2, -2))  # (n+1, B/2, 2, D)
    synthetic = F.slice(pairs, begin=(1, None, 0, None), end=(None, None, 1, None))  # (n, B/2, 1, D)
    label_blocks = F.reshape(expanded_labels, shape=(-4, n + 1, -1))  # (n+1, B)
    label_pairs = F.reshape(label_blocks, shape=(0, -4, -1, 2))  # (n+1, B/2, 2)
    synthetic_labels = F.slice(label_pairs, begin=(1, None, 0), end=(None, None, 1))  # (n, B/2, 1)
    return F.reshape(synthetic, shape=(-3, -3)), F.reshape(synthetic_labels, shape=(-1,))


def pick_max(F, values, axis):
    """Maximum along ``axis``; the gradient goes to one (the first) maximal entry."""
    return F.pick(values, F.argmax(values, axis=axis), axis=axis)


def pick_min(F, values, axis):
    """Minimum along ``axis``; the gradient goes to one (the first) minimal entry."""
    return F.pick(values, F.argmin(values, axis=axis), axis=axis)


def masked_log1p_sum_exp(F, z, mask, axis=1):
    """log(1 + sum over entries with mask = 1 of exp(z)) along ``axis``, computed stably.

    With m = max(0, max of the masked z) (a constant for the gradient), the value is
    m + log(exp(-m) + sum mask * exp(z - m)). Entries with mask 0 contribute nothing, neither to
    the value nor to the gradient; an all-zero mask gives exactly 0.
    """
    masked = F.where(mask, z, F.ones_like(z) * NEG_FILL)
    shift = F.BlockGrad(F.relu(F.max(masked, axis=axis, keepdims=True)))
    terms = F.exp(F.where(mask, F.broadcast_sub(z, shift), F.ones_like(z) * NEG_FILL))
    shift = F.reshape(shift, shape=(-1,))
    return shift + F.log(F.exp(-shift) + F.sum(terms, axis=axis))


def target_matrix(F, labels, like):
    """T = [y_i == y_j], each row divided by its sum (the softmax targets of N-pair/angular)."""
    same = F.broadcast_equal(F.reshape(labels, shape=(-1, 1)), F.reshape(labels, shape=(1, -1)))
    same = F.where(same, F.ones_like(like), F.zeros_like(like))
    return F.broadcast_div(same, F.sum(same, axis=1, keepdims=True))


def softmax_cross_entropy(F, logits, targets):
    """mean over rows i of -sum_j targets[i, j] * log softmax(logits[i])_j, shape (1,)."""
    return F.mean(-F.sum(targets * F.log_softmax(logits, axis=1), axis=1))


def pair_l2_regulariser(F, anchors, positives, reg):
    """reg * 0.25 * (mean_i |A_i|^2 + mean_i |P_i|^2), shape (1,) (TensorFlow's npairs_loss)."""
    return 0.25 * reg * (
        F.mean(F.sum(F.square(anchors), axis=1)) + F.mean(F.sum(F.square(positives), axis=1))
    )


def symmetric_points(F, basis, other, ratio=2.0, norm_ratio=1.0, norm=False):
    """The symmetric point of ``other`` about the line through the origin along ``basis``.

    Row by row, with |v| = sqrt(sum v^2 + 1e-12):

        U = A / |A|,   R = A + ((P - A) . U) U,   Q = norm_ratio * (ratio * R - P)
        and, when ``norm``, Q <- Q / |Q| * |A|

    where A = ``basis`` and P = ``other``. R is the projection of P on the line along A, so with
    ratio 2 and norm_ratio 1, Q is P mirrored about that line (|Q| = |P|, Q . A = P . A).
    """
    basis_norm = F.sqrt(F.sum(F.square(basis), axis=1, keepdims=True) + NORM_EPS)
    unit = F.broadcast_div(basis, basis_norm)
    along = F.sum((other - basis) * unit, axis=1, keepdims=True)
    projection = basis + F.broadcast_mul(along, unit)
    point = norm_ratio * (ratio * projection - other)
    if norm:
        point_norm = F.sqrt(F.sum(F.square(point), axis=1, keepdims=True) + NORM_EPS)
        point = F.broadcast_mul(F.broadcast_div(point, point_norm), basis_norm)
    return point
