"""Embeddings of image files, and the ``.npy`` files that keep them with their image lists.

``emb.npy`` holds the (M, D) float32 rows, ``emb.paths.txt`` the M image paths in order,
``emb.skipped.txt`` the images that could not be read (only when some were skipped) and, for a
test split, ``emb.labels.npy`` the labels (``evaluate.py --save_embeddings``).
"""
import logging
import os

import mxnet as mx
import numpy as np
from tqdm import tqdm

from data import ImageListDataset, TestTransform
from data.closing_loader import ClosingDataLoader
from inference.batch_embedding import embed_batch

logger = logging.getLogger(__name__)


class _TolerantImages(mx.gluon.data.Dataset):
    """Wraps ``ImageListDataset``: an unreadable image becomes a black one flagged 0 (kept: 1)."""

    def __init__(self, images, image_size):
        self.images = images
        self.blank = np.zeros((image_size, image_size, 3), dtype=np.uint8)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        try:
            image, _ = self.images[index]
        except ValueError:
            return self.blank, np.int32(0)
        return image, np.int32(1)


def _readable(paths, skip_bad):
    """``(readable, missing)``: the files that exist; a missing one is an error unless skipped."""
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing and not skip_bad:
        raise ValueError("cannot decode image %s: no such file (%d of %d images missing); pass "
                         "--skip_bad_images to skip them" % (missing[0], len(missing), len(paths)))
    missing_set = set(missing)
    return [path for path in paths if path not in missing_set], missing


def embed_paths(net, paths, image_size, ctx, batch_size=64, num_workers=0, skip_bad=False,
                progress=True, desc="embedding"):
    """Embed image files in order.

    Returns
    -------
    embeddings : float32 ndarray (M, D)
        The network's outputs for the images read.
    kept : list of str
        The M paths embedded, in order.
    skipped : list of str
        Unreadable images (only with ``skip_bad``; otherwise the first one raises ValueError).
    """
    readable, missing = _readable(paths, skip_bad)
    dataset = ImageListDataset(readable, np.ones(len(readable), dtype=np.int32), TestTransform(image_size))
    if skip_bad:
        dataset = _TolerantImages(dataset, image_size)
    loader = ClosingDataLoader(dataset, batch_size=batch_size, shuffle=False, last_batch="keep",
                               num_workers=num_workers)
    chunks, flags = [], []
    with tqdm(total=len(readable), disable=not progress, desc=desc, unit="img", leave=False,
              dynamic_ncols=True) as bar:
        for images, ok in loader:
            chunks.append(embed_batch(net, images, ctx))
            flags.append(ok.asnumpy())
            bar.update(images.shape[0])
    keep = np.concatenate(flags).astype(bool) if flags else np.zeros(0, dtype=bool)
    if not chunks or not keep.any():
        raise ValueError("none of the %d images could be read (first: %s)" % (len(paths), paths[0]))
    kept = [path for path, good in zip(readable, keep) if good]
    skipped = missing + [path for path, good in zip(readable, keep) if not good]
    return np.concatenate(chunks)[keep], kept, skipped


def report_skipped(skipped, where=""):
    if skipped:
        logger.warning("skipped %d unreadable image(s)%s:\n%s", len(skipped), where,
                       "\n".join("  " + path for path in skipped))


def sidecar(npy_path, kind):
    """``emb.npy`` → ``emb.paths.txt`` (kind='paths'), ``emb.skipped.txt``; kind='labels' gives
    ``emb.labels.npy``."""
    return npy_path[: -len(".npy")] + (".labels.npy" if kind == "labels" else ".%s.txt" % kind)


def _write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def _read_lines(path):
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


def save_embeddings(npy_path, embeddings, paths, skipped, labels=None):
    """Write ``npy_path`` and its sidecars (``labels`` too when given); returns the labels file
    or None."""
    folder = os.path.dirname(os.path.abspath(npy_path))
    labels_path = sidecar(npy_path, "labels") if labels is not None else None
    stale_labels = sidecar(npy_path, "labels") if labels is None else None
    try:
        os.makedirs(folder, exist_ok=True)
        np.save(npy_path, embeddings)
        _write_lines(sidecar(npy_path, "paths"), paths)
        skipped_file = sidecar(npy_path, "skipped")
        if skipped:
            _write_lines(skipped_file, skipped)
        elif os.path.exists(skipped_file):
            os.remove(skipped_file)  # from an earlier run; nothing was skipped this time
        if labels_path is not None:
            np.save(labels_path, np.asarray(labels))
        elif os.path.exists(stale_labels):
            os.remove(stale_labels)  # from an earlier run of other images
    except OSError as error:
        raise ValueError("cannot write %s: %s" % (npy_path, error.strerror or error)) from None
    logger.info("wrote %d embeddings of dimension %d to %s (image order in %s)", len(paths),
                embeddings.shape[1], npy_path, sidecar(npy_path, "paths"))
    return labels_path


def load_embeddings(npy_path):
    """``(embeddings, paths, skipped)`` of a file written by ``save_embeddings``."""
    paths_file = sidecar(npy_path, "paths")
    if not os.path.isfile(paths_file):
        raise ValueError("%s has no image list %s beside it; delete it to re-embed the gallery"
                         % (npy_path, paths_file))
    try:
        embeddings = np.load(npy_path)
    except (OSError, ValueError) as error:
        raise ValueError("cannot read embeddings %s: %s" % (npy_path, error)) from None
    paths = _read_lines(paths_file)
    skipped_file = sidecar(npy_path, "skipped")
    skipped = _read_lines(skipped_file) if os.path.isfile(skipped_file) else []
    if embeddings.ndim != 2 or embeddings.shape[0] != len(paths):
        raise ValueError("%s holds %s embeddings but %s lists %d images; delete both to re-embed"
                         % (npy_path, embeddings.shape, paths_file, len(paths)))
    return embeddings.astype(np.float32, copy=False), paths, skipped


def load_labels(npy_path, count):
    """The labels sidecar of ``npy_path`` (``count`` entries), or None when there is none."""
    labels_file = sidecar(npy_path, "labels")
    if not os.path.isfile(labels_file):
        return None
    try:
        labels = np.load(labels_file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError("cannot read labels %s: %s" % (labels_file, error)) from None
    if labels.shape != (count,):
        raise ValueError("%s holds %s labels for %d embeddings; delete it" % (labels_file, labels.shape, count))
    return labels
