"""Image decoding and the train / test transforms, on uint8 RGB arrays with OpenCV.

The transforms stop at a uint8 ``S x S x 3`` array: conversion to float, scaling to [0, 1]
and normalisation with ``MEAN_RGB`` / ``STD_RGB`` happen on the device inside the network,
which keeps the worker processes cheap and the batches 4x smaller than float32 tensors.

Geometry matches the original release (``Random2DTranslation`` + ``RandomFlipLeftRight``
with bilinear resizing): MXNet's resize operator calls OpenCV's bilinear ``resize``, so the
pixels agree up to JPEG-decoder rounding (see ``bench/bench_data.py``).
"""

import logging
import os

import cv2
import numpy as np

from utils.imagenet import IMAGENET_MEAN_RGB as MEAN_RGB  # noqa: F401 (data's public name)
from utils.imagenet import IMAGENET_STD_RGB as STD_RGB  # noqa: F401

logger = logging.getLogger(__name__)

# The enlarged side before the random crop is round(CROP_ENLARGE * S) (the original's 1.125).
CROP_ENLARGE = 1.125


class ImageDecodeError(ValueError):
    """An image file could not be decoded (its message names the file)."""


def decode_image(path):
    """Read an image file as a uint8 RGB array.

    Parameters
    ----------
    path : str
        Image file (any format OpenCV reads; grey and RGBA images become 3-channel RGB).

    Returns
    -------
    numpy.ndarray
        uint8, shape (H, W, 3), RGB channel order.

    Raises
    ------
    ImageDecodeError
        A ``ValueError``: ``cannot decode image <path>: ...`` when the file is missing or unreadable.
    """
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        if not os.path.isfile(path):
            reason = "no such file"
        else:
            reason = "OpenCV cannot read it (corrupt, empty or unsupported format)"
        raise ImageDecodeError("cannot decode image {}: {}".format(path, reason))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _check_image_size(image_size):
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError("image_size must be a positive integer, got {!r}".format(image_size))
    return int(image_size)


def _check_rgb(image):
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError("expected an H x W x 3 uint8 RGB numpy array, got shape {}".format(shape))


def _resize_square(image, side):
    """Bilinear resize to ``side x side`` (no-op copy avoided when already that size)."""
    if image.shape[0] == side and image.shape[1] == side:
        return image
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_LINEAR)


class TrainTransform:
    """Random resize-or-enlarge-and-crop, then random left-right flip.

    With probability 0.5 the image is resized to ``S x S``. Otherwise it is resized to
    ``T x T`` with ``T = round(1.125 S)`` and an ``S x S`` window is cut at
    ``x1 = round(u_x)``, ``y1 = round(u_y)``, ``u ~ Uniform(0, T - S)``. Then the result is
    mirrored left-right with probability 0.5.

    The random draws, in order, are: ``rng.random()`` (resize or crop), ``rng.uniform`` for
    x1 and y1 (crop branch only), ``rng.random()`` (flip).

    Parameters
    ----------
    image_size : int
        Output side S (227 in the paper).

    Inputs:
        - **image**: uint8 numpy array (H, W, 3), RGB.
        - **rng**: ``numpy.random.Generator``.
    Outputs:
        - **out**: uint8 numpy array (S, S, 3), C-contiguous.
    """

    def __init__(self, image_size):
        self.image_size = _check_image_size(image_size)
        self.enlarged_size = int(round(self.image_size * CROP_ENLARGE))

    def __call__(self, image, rng):
        _check_rgb(image)
        side = self.image_size
        if rng.random() < 0.5:
            out = _resize_square(image, side)
        else:
            enlarged = _resize_square(image, self.enlarged_size)
            max_offset = self.enlarged_size - side
            x1 = int(round(rng.uniform(0, max_offset)))
            y1 = int(round(rng.uniform(0, max_offset)))
            out = enlarged[y1 : y1 + side, x1 : x1 + side]
        if rng.random() < 0.5:
            return cv2.flip(out, 1)  # 1 = around the vertical axis; returns a new array
        return np.ascontiguousarray(out)

    def __repr__(self):
        return "TrainTransform(image_size={})".format(self.image_size)


class TestTransform:
    """Resize to ``S x S`` (no crop, no flip).

    Parameters
    ----------
    image_size : int
        Output side S.

    Inputs:
        - **image**: uint8 numpy array (H, W, 3), RGB.
        - **rng**: ignored (accepted so datasets can call every transform the same way).
    Outputs:
        - **out**: uint8 numpy array (S, S, 3).
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, image_size):
        self.image_size = _check_image_size(image_size)

    def __call__(self, image, rng=None):
        _check_rgb(image)
        return np.ascontiguousarray(_resize_square(image, self.image_size))

    def __repr__(self):
        return "TestTransform(image_size={})".format(self.image_size)
