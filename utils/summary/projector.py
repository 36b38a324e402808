"""TensorBoard's embedding projector: a subsample of the test embeddings, with labels and thumbnails,
for the PROJECTOR tab (``log_projector``).
"""
import math
import os
import posixpath

import cv2
import numpy as np
from tensorboardX.embedding import make_mat, make_tsv

from utils.run.folder import PROJECTOR, PROJECTOR_CONFIG

from .grid import _thumbnail

# TensorBoard's projector cannot load a sprite larger than this many pixels per side.
MAX_SPRITE_SIDE = 8192


def subsample_indices(num, max_points):
    """``max_points`` evenly spaced indices of ``range(num)`` (all of them when num <= max_points).

    Deterministic; on a split stored class by class (as CARS196's and the demo's are), evenly
    spaced rows cover every class.
    """
    if int(max_points) < 1:
        raise ValueError("max_points must be positive, got %r" % (max_points,))
    if num <= max_points:
        return np.arange(num, dtype=np.int64)
    return np.floor(np.linspace(0, num - 1, int(max_points))).astype(np.int64)


def _write_sprite(thumbnails, side, folder):
    """``folder/sprite.png``: the ``side``-pixel thumbnails row by row in a square of
    ceil(sqrt(n)) per side, black where none is (what the projector expects)."""
    per_row = int(math.ceil(math.sqrt(len(thumbnails))))
    sprite = np.zeros((per_row * side, per_row * side, 3), dtype=np.uint8)
    for index, thumbnail in enumerate(thumbnails):
        row, col = divmod(index, per_row)
        sprite[row * side:(row + 1) * side, col * side:(col + 1) * side] = thumbnail
    if not cv2.imwrite(os.path.join(folder, "sprite.png"), sprite[:, :, ::-1]):
        raise OSError("cannot write %s" % os.path.join(folder, "sprite.png"))


def _append_projector_entry(log_dir, name, subdir, sprite_side):
    """Add the embedding ``name`` to ``log_dir/projector_config.pbtxt`` unless it is there already
    (an evaluation repeated after a resume writes the same files again, and no second entry)."""
    config = os.path.join(log_dir, PROJECTOR_CONFIG)
    text = open(config, encoding="utf-8").read() if os.path.exists(config) else ""
    if 'tensor_name: "%s"' % name in text:
        return
    entry = ['embeddings {', 'tensor_name: "%s"' % name,
             'tensor_path: "%s"' % posixpath.join(subdir, "tensors.tsv"),
             'metadata_path: "%s"' % posixpath.join(subdir, "metadata.tsv")]
    if sprite_side:
        entry += ['sprite {', 'image_path: "%s"' % posixpath.join(subdir, "sprite.png"),
                  "single_image_dim: %d" % sprite_side, "single_image_dim: %d" % sprite_side, "}"]
    with open(config, "a", encoding="utf-8") as handle:
        handle.write("\n".join(entry + ["}"]) + "\n")


def log_projector(log_dir, embeddings, labels, thumbnails, step, max_points=1000, tag="test_embeddings",
                  thumb=32):
    """Write embeddings, labels and thumbnails for TensorBoard's projector.

    Writes ``log_dir/projector/<step:05d>/<tag>/tensors.tsv``, ``metadata.tsv`` and ``sprite.png``
    and adds an entry ``<tag>:<step:05d>`` to ``log_dir/projector_config.pbtxt`` (the file
    TensorBoard reads beside a run's event files; paths in it are relative to ``log_dir``).

    Parameters
    ----------
    log_dir : str
        The folder of the run's event files (``TrainingSummary.tensorboard_dir``).
    embeddings : ndarray, shape (N, D)
        Written as they are (not normalised).
    labels : ndarray, shape (N,)
        Class per row, the projector's metadata (colour by label).
    thumbnails : uint8 ndarray (N, H, W, 3), a callable ``index -> uint8 (H, W, 3)``, or None
        Images of the rows; a callable is asked only for the subsampled rows.
    step : int
        Global step (the sub-directory name).
    max_points : int
        At most this many rows, chosen by ``subsample_indices``.
    tag : str
        Embedding name in the projector.
    thumb : int
        Side of the sprite's thumbnails (reduced if the sprite would exceed 8192 pixels).

    Returns
    -------
    ndarray of int64
        The rows written.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    labels = np.asarray(labels).reshape(-1)
    if embeddings.ndim != 2 or embeddings.shape[0] != labels.shape[0]:
        raise ValueError("embeddings must be (N, D) with one label per row, got %s and %d labels"
                         % (embeddings.shape, labels.shape[0]))
    rows = subsample_indices(embeddings.shape[0], max_points)
    subdir = posixpath.join(PROJECTOR, "%05d" % int(step), tag)
    folder = os.path.join(log_dir, *subdir.split("/"))
    os.makedirs(folder, exist_ok=True)
    side = 0
    if thumbnails is not None:
        if not callable(thumbnails) and len(thumbnails) != embeddings.shape[0]:
            raise ValueError("got %d thumbnails for %d embeddings" % (len(thumbnails), embeddings.shape[0]))
        side = max(1, min(int(thumb), MAX_SPRITE_SIDE // int(math.ceil(math.sqrt(len(rows))))))
        images = [thumbnails(int(i)) if callable(thumbnails) else thumbnails[i] for i in rows]
        _write_sprite([_thumbnail(image, side, "thumbnail of row %d" % i) for i, image in zip(rows, images)],
                      side, folder)
    make_tsv([str(v) for v in labels[rows]], folder)
    make_mat(embeddings[rows], folder)
    _append_projector_entry(log_dir, "%s:%05d" % (tag, int(step)), subdir, side)
    return rows
