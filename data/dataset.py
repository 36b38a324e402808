"""A Gluon dataset over a list of image files with deterministic per-sample augmentation."""

import logging
import os

import cv2
import mxnet as mx
import numpy as np

from .transforms import decode_image

logger = logging.getLogger(__name__)

_single_threaded_pid = None


def _single_thread_opencv_in_worker(owner_pid):
    """In a forked DataLoader worker, run OpenCV single-threaded (once per process).

    Workers already run one per core; OpenCV's own thread pool on top of them would
    oversubscribe the cores. The process that built the dataset is left untouched.
    """
    global _single_threaded_pid
    pid = os.getpid()
    if pid != owner_pid and pid != _single_threaded_pid:
        cv2.setNumThreads(1)
        _single_threaded_pid = pid


class ImageListDataset(mx.gluon.data.Dataset):
    """Images listed by path, decoded with OpenCV and transformed with a seeded generator.

    Every random decision of the transform comes from a generator built from the key, so a
    sample looks the same whichever (forked) worker process decodes it, and the forked
    workers never share a random stream (no repeated augmentations across workers).

    Parameters
    ----------
    paths : sequence of str
        Image files.
    labels : sequence of int
        Class id per image, same length as ``paths``.
    transform : callable or None
        ``transform(image, rng) -> uint8 (S, S, 3)`` (``TrainTransform``, ``TestTransform``);
        None returns the decoded image unchanged (sizes then differ, so no batching).
    seed : int, default 0
        Seeds the generator of integer keys: ``default_rng((seed, index))``.

    Inputs:
        - **key**: an int index, or a tuple ``(index, sample_seed)`` as yielded by
          ``ClassBalancedBatchSampler``; the generator is then ``default_rng(sample_seed)``.
    Outputs:
        - **image**: uint8 numpy array (S, S, 3), RGB.
        - **label**: ``numpy.int32`` scalar.
    """

    def __init__(self, paths, labels, transform, seed=0):
        if len(paths) != len(labels):
            raise ValueError("ImageListDataset got {} paths but {} labels".format(len(paths), len(labels)))
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError("seed must be a non-negative integer, got {!r}".format(seed))
        self.paths = list(paths)
        self.labels = np.asarray(labels, dtype=np.int32)
        self.transform = transform
        self.seed = int(seed)
        self._owner_pid = os.getpid()

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            index, sample_seed = key
            rng = np.random.default_rng(sample_seed)
        else:
            index = int(key)
            rng = np.random.default_rng((self.seed, index % len(self.paths)))
        _single_thread_opencv_in_worker(self._owner_pid)
        image = decode_image(self.paths[index])
        if self.transform is not None:
            image = self.transform(image, rng)
        return image, self.labels[index]

    def __repr__(self):
        return "ImageListDataset({} images, transform={!r})".format(len(self.paths), self.transform)
