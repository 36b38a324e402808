"""One training step, embedding a dataset, and evaluation: what the training loop (utils.training) calls."""
import logging
import time

import mxnet as mx
import numpy as np
from tqdm import tqdm

from . import faults
from .metrics import evaluate_embeddings, l2_normalize
from .regularization import l2_regularization, scale_gradients

logger = logging.getLogger(__name__)



def forward_backward(net, loss_fn, images, labels, ctx, l2_params=None, l2_coefficient=0.0,
                     scaled_params=None, grad_mult=1.0):
    """Split a batch over ``ctx``, run the loss per device, and back-propagate.

    Each device receives a contiguous slice of the batch, so the sampler's layout (classes in
    runs of num_instances, pairs in rows 2i, 2i+1) holds on every device as long as the
    per-device batch is a multiple of num_instances. The loss vectors are back-propagated as
    they are: the gradient is that of their sum, as in the original (``trainer.step(1)``).

    Optional parts of the Symmetrical Synthesis recipe: ``l2_coefficient * sum |w|^2 / 2`` over
    ``l2_params`` joins the objective (back-propagated once, not once per sample), and the
    gradients of ``scaled_params`` are multiplied by ``grad_mult`` after the backward pass.

    Returns
    -------
    list of NDArray
        The per-sample losses of each device (without the regulariser).
    """
    image_parts = mx.gluon.utils.split_and_load(images, ctx)
    label_parts = mx.gluon.utils.split_and_load(labels, ctx)
    with mx.autograd.record():
        losses = [loss_fn(net(x), y) for x, y in zip(image_parts, label_parts)]
        heads = list(losses)
        if l2_params and l2_coefficient:
            heads += l2_regularization(l2_params, l2_coefficient, contexts=ctx)
    mx.autograd.backward(heads)
    if scaled_params is not None and grad_mult != 1.0:
        scale_gradients(scaled_params, grad_mult)
    return losses


class NonFiniteLossError(ValueError):
    """The loss became NaN or infinite."""


def train_step(net, loss_fn, trainer, images, labels, ctx, learning_rate, step_options=None,
               nan_policy="stop", step=0, where="", before_update=None):
    """One iteration: forward, backward and, when the loss is finite, the update.

    The loss of an iteration is the sum over devices of each device's mean per-sample loss (the
    original's logged value). It is read back every iteration to catch a non-finite loss before
    the update is applied (the original read it every iteration too, to print it).

    Parameters
    ----------
    learning_rate : float
        Set on the trainer before the update (the schedule's value for this iteration).
    step_options : dict, optional
        Extra keyword arguments of :func:`forward_backward` (regulariser, gradient multiplier).
    nan_policy : {'stop', 'skip_batch'}
        On a non-finite loss, raise ``NonFiniteLossError`` (naming ``where``) before updating, or
        skip the update and return None.
    step : int
        The global step this iteration completes (fault injection, see ``utils.faults``).
    before_update : callable, optional
        Called after the backward pass, right before the update.

    Returns
    -------
    float or None
        The iteration's loss, or None when its update was skipped.
    """
    trainer.set_learning_rate(learning_rate)
    losses = forward_backward(net, loss_fn, images, labels, ctx, **(step_options or {}))
    value = float(mx.nd.add_n(*[loss.mean().as_in_context(ctx[0]) for loss in losses]).asscalar())
    if faults.loss_is_nan(step):
        value = float("nan")
    if not np.isfinite(value):
        if nan_policy == "stop":
            raise NonFiniteLossError(
                "the loss became %s at %s; parameters of that step were not updated; lower --lr, "
                "or pass --nan_policy=skip_batch" % (value, where))
        logger.warning("non-finite loss at %s: update skipped", where)
        return None
    if before_update is not None:
        before_update()
    trainer.step(1)
    return value


def embed_batch(net, images, ctx):
    """The network's outputs for one batch split over ``ctx`` (unevenly when needed), as a
    float32 NumPy array; a batch smaller than the number of devices goes to the first ones."""
    devices = ctx[: min(len(ctx), images.shape[0])]
    parts = mx.gluon.utils.split_and_load(images, devices, even_split=False)
    outputs = [net(part) for part in parts]
    return np.concatenate([output.asnumpy() for output in outputs], axis=0).astype(np.float32, copy=False)


def zero_non_finite(embeddings, source):
    """Rows with NaN or inf become zero vectors, with a warning naming ``source``.

    Only reachable after the parameters broke (``--nan_policy=skip_batch``): such rows are scored
    as zero vectors rather than crash the metrics (k-means refuses NaN)."""
    bad_rows = ~np.isfinite(embeddings).all(axis=1)
    if bad_rows.any():
        logger.warning("%d of %d embeddings of %s are not finite; they are scored as zero vectors",
                       int(bad_rows.sum()), len(bad_rows), source)
        embeddings = np.where(bad_rows[:, None], 0.0, embeddings).astype(np.float32)
    return embeddings


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


def evaluate(net, loader, labels, ctx, ks, progress=True, return_embeddings=False,
             metrics=("recall",), knn="numpy", cluster_backend="auto", after_batch=None):
    """Metrics of the test split (query = gallery, self excluded) as a flat dict
    (``{'R@1': ..., 'MAP@R': ..., 'NMI': ...}``, see ``utils.metrics.evaluate_embeddings``), and
    the unit-norm embeddings too when ``return_embeddings``."""
    start = time.time()
    embeddings = embed_dataset(net, loader, ctx, progress=progress, desc="evaluating",
                               after_batch=after_batch)
    embeddings = zero_non_finite(embeddings, "the test split")
    # Unit vectors for evaluation whatever the network returns (the Symm losses train unnormalised).
    embeddings = l2_normalize(embeddings)
    values = evaluate_embeddings(embeddings, labels, ks, metrics=metrics, knn=knn,
                                 cluster_backend=cluster_backend)
    logger.info("evaluated %d images in %.1f s", len(labels), time.time() - start)
    return (values, embeddings) if return_embeddings else values
