"""Embeddings of batches and of whole loaders, split over the devices (any batch size), as float32
NumPy arrays; and the count of embeddings that are not finite.
"""
import logging

import mxnet as mx
import numpy as np
from tqdm import tqdm

from utils.metrics import non_finite_rows

logger = logging.getLogger(__name__)


def embed_batch(net, images, ctx):
    """The network's outputs for one batch split over ``ctx`` (unevenly when needed), as a
    float32 NumPy array; a batch smaller than the number of devices goes to the first ones."""
    devices = ctx[: min(len(ctx), images.shape[0])]
    parts = mx.gluon.utils.split_and_load(images, devices, even_split=False)
    outputs = [net(part) for part in parts]
    return np.concatenate([output.asnumpy() for output in outputs], axis=0).astype(np.float32, copy=False)


def embed_dataset(net, loader, ctx, progress=True, desc="embedding", after_batch=None):
    """Embeddings of every image of ``loader`` (in order), as a float32 (N, D) NumPy array.

    Batches are split over ``ctx`` unevenly when needed, so any batch size works.
    ``after_batch(index)``, when given, is called after each batch.
    """
    chunks = []
    batches = tqdm(loader, disable=not progress, desc=desc, leave=False, unit="batch", dynamic_ncols=True)
    for index, (images, _) in enumerate(batches):
        chunks.append(embed_batch(net, images, ctx))
        if after_batch is not None:
            after_batch(index)
    return np.concatenate(chunks, axis=0).astype(np.float32, copy=False)


def warn_non_finite(embeddings, what):
    """The number of rows of ``embeddings`` that are not finite, logged as a warning when > 0."""
    count = int(non_finite_rows(embeddings).sum())
    if count:
        logger.warning("%d of %d %s are not finite (NaN or inf); they are left out of the gallery "
                       "and count as misses as queries", count, len(embeddings), what)
    return count
