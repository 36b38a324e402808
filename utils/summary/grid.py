"""Retrieval grids: queries and their nearest neighbours as one uint8 image, logged to TensorBoard.

``retrieval_grid`` draws the picture (green border: same class as the query, red: another class).
``log_retrieval_grid`` computes the neighbours of a few fixed test queries (``pick_fixed_queries``)
and logs the grid, so the IMAGES tab shows retrieval improving over training.

Neighbours follow ``utils.metrics``: rows are L2-normalised as in evaluation, distances are
Euclidean, a query never retrieves itself (excluded by index) and ties go to the smaller index.
"""
import logging

import cv2
import numpy as np

from utils.metrics import knn_of_queries, l2_normalize, non_finite_rows

from . import described

logger = logging.getLogger(__name__)


GREEN = (0, 255, 0)


RED = (255, 0, 0)


QUERY_COLOUR = (255, 255, 255)


NEUTRAL_COLOUR = (128, 128, 128)


BACKGROUND = (32, 32, 32)


TEXT_COLOUR = (255, 255, 255)


def _as_rgb_uint8(image, what):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError("%s must be a uint8 image, got dtype %s" % (what, image.dtype))
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[2] not in (1, 3) or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError("%s must be an H x W x 3 RGB image, got shape %s" % (what, image.shape))
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image


def _thumbnail(image, side, what):
    image = _as_rgb_uint8(image, what)
    if image.shape[:2] == (side, side):
        return image
    shrinking = image.shape[0] > side and image.shape[1] > side
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def grid_layout(thumb=64, border=3, caption_height=0):
    """Geometry of ``retrieval_grid``: ``(cell_height, cell_width, gap)``.

    Cell (row r, column c) has its top-left corner at ``(gap + r * (cell_height + gap),
    gap + c * (cell_width + gap))``; its coloured frame is ``border`` pixels wide around a
    ``thumb x thumb`` thumbnail, and a caption strip of ``caption_height`` pixels (when captions
    are drawn) sits under the frame. Column 0 is the query.
    """
    gap = max(1, border)
    return thumb + 2 * border + caption_height, thumb + 2 * border, gap


def _caption_height(thumb):
    return max(12, thumb // 5)


def _draw_caption(canvas, text, top, left, width, height):
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = height / 30.0
    (text_w, text_h), _ = cv2.getTextSize(text, font, scale, 1)
    while text_w > width - 2 and scale > 0.2:
        scale *= 0.9
        (text_w, text_h), _ = cv2.getTextSize(text, font, scale, 1)
    x = left + max(0, (width - text_w) // 2)
    y = top + (height + text_h) // 2
    cv2.putText(canvas, text, (x, y), font, scale, TEXT_COLOUR, 1, cv2.LINE_AA)


def _check_grid(num_queries, retrieved_images, correct, captions, column_titles):
    """``(k, correct as a bool array or None)`` after checking the grid's shapes."""
    if num_queries < 1:
        raise ValueError("retrieval_grid needs at least one query")
    if len(retrieved_images) != num_queries:
        raise ValueError("got %d queries but %d rows of results" % (num_queries, len(retrieved_images)))
    k = len(retrieved_images[0])
    if any(len(row) != k for row in retrieved_images):
        raise ValueError("every query needs the same number of results, got %s"
                         % [len(row) for row in retrieved_images])
    if correct is not None:
        correct = np.asarray(correct, dtype=bool)
        if correct.shape != (num_queries, k):
            raise ValueError("correct must have shape (%d, %d), got %s" % (num_queries, k, correct.shape))
    if captions is not None and (len(captions) != num_queries or any(len(r) != k + 1 for r in captions)):
        raise ValueError("captions must hold %d rows of %d strings (query first)" % (num_queries, k + 1))
    if column_titles is not None and len(column_titles) != k + 1:
        raise ValueError("column_titles must hold %d strings (query first), got %d"
                         % (k + 1, len(column_titles)))
    return k, correct


def _frame_colour(correct, row, col):
    """The frame of cell (row, col): the query's, grey when the classes are unknown (``correct``
    None), else green for a result of the query's class and red for another."""
    if col == 0:
        return QUERY_COLOUR
    if correct is None:
        return NEUTRAL_COLOUR
    return GREEN if correct[row, col - 1] else RED


def _draw_cell(canvas, image, top, left, thumb, border, colour, what):
    """``image`` as a ``thumb x thumb`` thumbnail in a frame of ``colour``, ``border`` pixels wide,
    whose top-left corner is (``top``, ``left``) of ``canvas``; ``what`` names it in errors."""
    frame = thumb + 2 * border
    canvas[top:top + frame, left:left + frame] = colour
    canvas[top + border:top + border + thumb, left + border:left + border + thumb] = \
        _thumbnail(image, thumb, what)


def header_height(thumb, column_titles=None, legend=None):
    """Height in pixels of the strip that ``retrieval_grid`` draws above its cells: one text line
    per line of ``legend``, then one of ``column_titles``."""
    lines = len(legend or ()) + (1 if column_titles is not None else 0)
    return lines * _caption_height(int(thumb))


def _header(width, thumb, cell_w, gap, column_titles, legend):
    line = _caption_height(thumb)
    strip = np.empty((header_height(thumb, column_titles, legend), width, 3), dtype=np.uint8)
    strip[:] = BACKGROUND
    for index, text in enumerate(legend or ()):
        _draw_caption(strip, str(text), index * line, 0, width, line)
    if column_titles is not None:
        top = len(legend or ()) * line
        for col, text in enumerate(column_titles):
            _draw_caption(strip, str(text), top, gap + col * (cell_w + gap), cell_w, line)
    return strip


def retrieval_grid(query_images, retrieved_images, correct, thumb=64, border=3, captions=None,
                   column_titles=None, legend=None):
    """Queries and their retrieved images as one picture, one query per row.

    Column 0 holds the query (white frame), columns 1..K its results, nearest first, framed green
    (0, 255, 0) when of the query's class and red (255, 0, 0) otherwise; with ``correct=None``
    (classes unknown) the frames are grey. Images of any size are resized to ``thumb x thumb``.
    The geometry is ``grid_layout(thumb, border, caption_height)``, below a header strip of
    ``header_height(thumb, column_titles, legend)`` pixels (none without titles and legend).

    Parameters
    ----------
    query_images : sequence of Q uint8 arrays (H, W, 3) RGB (grey (H, W) is accepted)
    retrieved_images : sequence of Q sequences of K uint8 arrays (H, W, 3)
    correct : array-like of bool, shape (Q, K), or None
    thumb : int
        Thumbnail side in pixels.
    border : int
        Frame width in pixels (also the gap between cells).
    captions : sequence of Q sequences of K + 1 str, optional
        Text under each cell (query first), e.g. class ids.
    column_titles : sequence of K + 1 str, optional
        A title over each column (query first), e.g. ranks.
    legend : sequence of str, optional
        Lines of text across the top, above the column titles.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        ``H = header + Q * (cell_height + gap) + gap``, ``W = (K + 1) * (cell_width + gap) + gap``.
    """
    if int(thumb) < 1 or int(border) < 0:
        raise ValueError("thumb must be >= 1 and border >= 0, got %r and %r" % (thumb, border))
    thumb, border = int(thumb), int(border)
    num_queries = len(query_images)
    k, correct = _check_grid(num_queries, retrieved_images, correct, captions, column_titles)
    caption_height = _caption_height(thumb) if captions is not None else 0
    cell_h, cell_w, gap = grid_layout(thumb, border, caption_height)
    height = num_queries * (cell_h + gap) + gap
    width = (k + 1) * (cell_w + gap) + gap
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    for row in range(num_queries):
        cells = [query_images[row]] + list(retrieved_images[row])
        for col, image in enumerate(cells):
            top, left = gap + row * (cell_h + gap), gap + col * (cell_w + gap)
            what = "query %d" % row if col == 0 else "result %d of query %d" % (col, row)
            _draw_cell(canvas, image, top, left, thumb, border, _frame_colour(correct, row, col), what)
            if captions is not None and captions[row][col]:
                _draw_caption(canvas, str(captions[row][col]), top + thumb + 2 * border, left, cell_w,
                              caption_height)
    if column_titles is None and not legend:
        return canvas
    return np.concatenate([_header(width, thumb, cell_w, gap, column_titles, legend), canvas])


def query_neighbors(embeddings, query_indices, k):
    """Indices and distances of the ``k`` nearest other rows of the rows ``query_indices``.

    ``utils.metrics.knn_of_queries`` (query excluded by index, ties to the smaller index) for a
    few rows of the set itself: a grid needs a handful, O(Q N), not every row ranked.

    Returns
    -------
    (ndarray of int64 (Q, k), ndarray of float32 (Q, k))
        Neighbour indices, nearest first, and their Euclidean distances.
    """
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    query_indices = np.asarray(query_indices, dtype=np.int64).reshape(-1)
    num = embeddings.shape[0]
    if not 1 <= k <= num - 1:
        raise ValueError("need 1 <= k <= N - 1 neighbours, got k=%d for N=%d" % (k, num))
    if query_indices.size and (query_indices.min() < 0 or query_indices.max() >= num):
        raise ValueError("query indices must lie in [0, %d), got %s" % (num, query_indices.tolist()))
    neighbors = knn_of_queries(embeddings[query_indices], embeddings, k, exclude=query_indices)
    order = np.array(neighbors, dtype=np.int64).reshape(len(query_indices), k)
    found = embeddings[order] - embeddings[query_indices][:, None, :]
    distances = np.sqrt(np.einsum("qkd,qkd->qk", found, found))
    return order, distances.astype(np.float32)


def _unit_rows(embeddings):
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2:
        raise ValueError("embeddings must be a 2-D (N, D) array, got shape %s" % (embeddings.shape,))
    return l2_normalize(embeddings)


def pick_fixed_queries(labels, n=8, seed=0):
    """``n`` query indices of distinct classes, the same for the same labels and seed.

    Classes with at least two images come first (a query alone in its class cannot retrieve a
    correct neighbour); within them the order is a permutation drawn from ``seed``, and one
    image of each chosen class is drawn from ``seed`` too. With fewer than ``n`` classes, one
    query per class.

    Returns
    -------
    ndarray of int64, shape (min(n, number of classes),), in increasing order
    """
    if int(n) < 1:
        raise ValueError("the number of queries must be positive, got %r" % (n,))
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        raise ValueError("cannot pick queries from an empty label array")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    several = rng.permutation(classes[counts >= 2])
    single = rng.permutation(classes[counts < 2])
    chosen = np.concatenate([several, single])[: int(n)]
    picks = []
    for cls in chosen:
        members = np.flatnonzero(labels == cls)
        picks.append(int(members[rng.integers(len(members))]))
    return np.sort(np.asarray(picks, dtype=np.int64))


GRID_DESCRIPTION = (
    "Each row: a fixed test query (white frame, column *query*) and its {k} nearest test images "
    "(columns 1 to {k}, nearest first), framed **green** when of the query's class and **red** "
    "otherwise; the number under each image is its class id. The queries are the same at every "
    "evaluation (and in every run on the same test split): move the step slider to watch them "
    "improve; step 0 is the untrained network. Click the image to see it at full size.")


def grid_legend(k):
    """The legend lines drawn at the top of a retrieval grid of ``k`` neighbours."""
    return ["query (white) and its %d nearest test images, nearest first" % k,
            "green: same class as the query, red: another class; number: class id"]


def log_retrieval_grid(writer, tag, embeddings, labels, images_fn, query_indices, step, k=8,
                       thumb=64, border=3):
    """Log the top-``k`` neighbours of ``query_indices`` as one image under ``tag``.

    The grid has a legend (``grid_legend``), a title over each column (query, 1 .. k) and the
    class id under each image; the tag's description (:data:`GRID_DESCRIPTION`) says how to read it.

    Parameters
    ----------
    writer : tensorboardX.SummaryWriter (``TrainingSummary.writer``)
    tag : str
        Image tag, e.g. ``retrieval/test``.
    embeddings : ndarray, shape (N, D)
        Test embeddings (rows are L2-normalised here, as in evaluation).
    labels : ndarray, shape (N,)
    images_fn : callable
        ``images_fn(index) -> uint8 (H, W, 3) RGB`` image of row ``index``; called only for the
        queries and their neighbours.
    query_indices : sequence of int
        Rows used as queries, kept fixed over training (``pick_fixed_queries``).
    step : int
        Global step.
    k : int
        Neighbours per query (at most N - 1; fewer are shown when N is smaller).

    Returns
    -------
    ndarray of uint8 (H, W, 3), or None
        The grid that was logged; None (nothing logged, a warning) when some embeddings are not
        finite: their neighbours are undefined (only after ``--nan_policy=skip_batch`` let the
        parameters break).
    """
    labels = np.asarray(labels).reshape(-1)
    broken = int(non_finite_rows(embeddings).sum())
    if broken:
        logger.warning("no retrieval grid at step %d: %d embeddings are not finite", step, broken)
        return None
    embeddings = _unit_rows(embeddings)
    if embeddings.shape[0] != labels.shape[0]:
        raise ValueError("got %d embeddings but %d labels" % (embeddings.shape[0], labels.shape[0]))
    k = min(int(k), embeddings.shape[0] - 1)
    query_indices = np.asarray(query_indices, dtype=np.int64).reshape(-1)
    neighbors, _ = query_neighbors(embeddings, query_indices, k)
    correct = labels[neighbors] == labels[query_indices][:, None]
    cache = {}

    def image(index):
        if index not in cache:
            cache[index] = images_fn(int(index))
        return cache[index]

    captions = [[str(labels[q])] + [str(labels[i]) for i in row] for q, row in zip(query_indices, neighbors)]
    grid = retrieval_grid([image(q) for q in query_indices],
                          [[image(i) for i in row] for row in neighbors], correct,
                          thumb=thumb, border=border, captions=captions,
                          column_titles=["query"] + [str(rank) for rank in range(1, k + 1)],
                          legend=grid_legend(k))
    writer._get_file_writer().add_summary(described.image(tag, grid, GRID_DESCRIPTION.format(k=k)), step)
    return grid
