"""Search a gallery of images with query images: the gallery's embeddings (cached), the nearest
gallery images of each query, and a picture of them."""
import logging
import os

import cv2
import numpy as np

from data.image_list import list_labeled_images
from utils.metrics import knn_of_queries, l2_normalize

from .image_embeddings import load_embeddings, load_labels, report_skipped, save_embeddings

logger = logging.getLogger(__name__)


def gallery_embeddings(embed, gallery=None, cache=None, normalize=True, also_write=None):
    """The gallery's ``(embeddings, paths, labels)``: from the ``cache`` .npy when it lists the same
    images as the ``gallery`` directory or list (or when no gallery is given), else embedded with
    ``embed(paths, desc)`` (which returns ``(embeddings, kept, skipped)``) and written, with the
    labels, to the cache and to ``also_write``. Rows are L2-normalised when ``normalize``.
    ``labels`` (class names, str) come from a split file or a directory of class folders, else
    None."""
    listing, listed_labels = list_labeled_images(gallery, "--gallery") if gallery is not None else (None, None)
    if cache is not None and os.path.isfile(cache):
        embeddings, paths, skipped = load_embeddings(cache)
        if listing is None or sorted(listing) == sorted(paths + skipped):
            logger.info("reusing the gallery embeddings of %s (%d images)", cache, len(paths))
            return embeddings, paths, load_labels(cache, len(paths))
        logger.info("%s lists other images than --gallery %s; embedding the gallery again", cache, gallery)
    if listing is None:
        raise ValueError("--gallery_embeddings %s does not exist; pass --gallery to create it" % cache)
    embeddings, paths, skipped = embed(listing, "gallery")
    report_skipped(skipped, " of the gallery")
    labels = None
    if listed_labels is not None:
        label_of = dict(zip(listing, listed_labels))
        labels = np.array([label_of[path] for path in paths])
    if normalize:
        embeddings = l2_normalize(embeddings)
    for target in {cache, also_write} - {None}:
        save_embeddings(target, embeddings, paths, skipped, labels=labels)
    return embeddings, paths, labels


def query_labels(query_paths, gallery_paths, gallery_labels):
    """Each query's class when known: that of the same file in the gallery, else its folder's name
    when that is one of the gallery's classes (a query from a class folder); else None."""
    if gallery_labels is None:
        return [None] * len(query_paths)
    label_of = {os.path.realpath(path): label for path, label in zip(gallery_paths, gallery_labels)}
    classes = set(str(label) for label in gallery_labels)
    found = []
    for path in query_paths:
        label = label_of.get(os.path.realpath(path))
        folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
        found.append(str(label) if label is not None else (folder if folder in classes else None))
    return found


def search(query_embeddings, query_paths, gallery, gallery_paths, topk):
    """Per query: ``[(gallery index, distance), ...]`` of its ``topk`` nearest gallery images.

    Rows are L2-normalised, distances Euclidean; a gallery entry that is the query's own file is
    excluded; ties go to the smaller gallery index (``utils.metrics.knn_of_queries``).
    """
    gallery = l2_normalize(gallery)
    queries = l2_normalize(query_embeddings)
    index_of = {}
    for index, path in enumerate(gallery_paths):
        index_of.setdefault(os.path.realpath(path), index)
    own = [index_of.get(os.path.realpath(path), -1) for path in query_paths]
    results = []
    for query, row in zip(queries, knn_of_queries(queries, gallery, topk, exclude=own)):
        dist = np.sqrt(np.maximum(2.0 - 2.0 * (gallery[row] @ query), 0.0))
        results.append([(int(i), float(d)) for i, d in zip(row, dist)])
    return results


def draw_results(query_paths, gallery_paths, results, thumb, picture, gallery_labels=None):
    """Write ``picture``: a row per query, its results captioned with their rank and distance and,
    when the gallery has labels, their class, framed green when of the query's class and red when
    not, like TensorBoard's retrieval grid (grey when a query's class is unknown)."""
    from data import decode_image
    from utils.summary.grid import retrieval_grid

    k = max(len(row) for row in results)
    blank = np.full((thumb, thumb, 3), 32, dtype=np.uint8)
    own = query_labels(query_paths, gallery_paths, gallery_labels)
    queries, rows, captions, correct = [], [], [], []
    for path, row, label in zip(query_paths, results, own):
        queries.append(decode_image(path))
        images = [decode_image(gallery_paths[i]) for i, _ in row]
        rows.append(images + [blank] * (k - len(images)))
        classes = [str(gallery_labels[i]) for i, _ in row] if gallery_labels is not None else [None] * len(row)
        captions.append(["query" + (" " + label if label is not None else "")]
                        + ["%d: %.3f%s" % (rank, d, "" if c is None else " " + c)
                           for rank, ((_, d), c) in enumerate(zip(row, classes), 1)]
                        + [""] * (k - len(row)))
        correct.append([c == label for c in classes] + [False] * (k - len(row)) if label is not None else None)
    if any(row is None for row in correct):
        correct = None  # grey frames: green/red only when every query's class is known
    grid = retrieval_grid(queries, rows, correct, thumb=thumb, border=3, captions=captions)
    os.makedirs(os.path.dirname(os.path.abspath(picture)), exist_ok=True)
    try:
        ok = cv2.imwrite(picture, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError("cannot write the picture %s (is the extension .jpg or .png, the folder "
                         "writable?)" % picture)
    return grid
