"""One training epoch, embedding a dataset, and evaluation: the loop that main.py drives."""
import logging
import os
import signal
import time

import mxnet as mx
import numpy as np
from tqdm import tqdm

from .metrics import evaluate_embeddings, l2_normalize
from .regularization import l2_regularization, scale_gradients

logger = logging.getLogger(__name__)

# Tests set this to kill the process (SIGKILL) right after the update of that global step.
_KILL_AT_STEP = int(os.environ["EE_GLUON_KILL_AT_STEP"]) if os.environ.get("EE_GLUON_KILL_AT_STEP") else None


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


def train_one_epoch(net, loss_fn, trainer, loader, ctx, lr_scheduler, epoch, summary,
                    summary_step=10, progress=True, batch_size=None, iters_per_epoch=None,
                    first_batch=0, position=None, nan_policy="stop", step_options=None):
    """Train on the batches ``loader`` yields for ``epoch``; returns the mean loss over them.

    The loss of an iteration is the sum over devices of each device's mean per-sample loss (the
    original's logged value). It is read back every iteration to catch a non-finite loss before
    the update is applied (the original read it every iteration too, to print it).

    Parameters
    ----------
    iters_per_epoch : int
        Iterations of a whole epoch (default ``len(loader)``); with ``first_batch`` it numbers
        the iterations of a resumed epoch as the uninterrupted run would.
    first_batch : int
        Index within the epoch of the first batch ``loader`` yields (resuming mid-epoch).
    position : dict, optional
        Updated after every applied update with ``batch_in_epoch`` and ``global_step``, so that
        an interrupt handler knows how far the epoch went.
    nan_policy : {'stop', 'skip_batch'}
        On a non-finite loss, raise ``NonFiniteLossError`` before updating, or skip the update.
    step_options : dict, optional
        Extra keyword arguments of :func:`forward_backward` (regulariser, gradient multiplier).
    """
    iters_per_epoch = iters_per_epoch or len(loader)
    total, num_iters = 0.0, 0
    bar = tqdm(total=(iters_per_epoch - first_batch) * batch_size if batch_size else None,
               disable=not progress, unit="img", desc="epoch %d" % (epoch + 1), leave=False,
               dynamic_ncols=True)
    for i, (images, labels) in enumerate(loader, start=first_batch):
        iteration = epoch * iters_per_epoch + i
        trainer.set_learning_rate(lr_scheduler(iteration))
        losses = forward_backward(net, loss_fn, images, labels, ctx, **(step_options or {}))
        value = float(mx.nd.add_n(*[loss.mean().as_in_context(ctx[0]) for loss in losses]).asscalar())
        if not np.isfinite(value):
            if nan_policy == "stop":
                raise NonFiniteLossError(
                    "the loss became %s at epoch %d, iteration %d (global step %d); parameters of "
                    "that step were not updated; lower --lr, or pass --nan_policy=skip_batch"
                    % (value, epoch + 1, i + 1, iteration + 1))
            logger.warning("non-finite loss at epoch %d, step %d: update skipped", epoch + 1,
                           iteration + 1)
            bar.update(images.shape[0])
            continue
        trainer.step(1)
        total += value
        num_iters += 1
        if position is not None:
            position.update(batch_in_epoch=i + 1, global_step=iteration + 1)
        if _KILL_AT_STEP is not None and iteration + 1 == _KILL_AT_STEP:
            # Fault injection for the resume tests: die as a lost machine would, without cleanup.
            os.kill(os.getpid(), signal.SIGKILL)
        if i % summary_step == 0:
            summary.step(iteration + 1, value, trainer.learning_rate)
            bar.set_postfix(loss="%.4f" % value, lr="%.2e" % trainer.learning_rate)
        bar.update(images.shape[0])
    bar.close()
    return total / num_iters if num_iters else float("nan")


def embed_dataset(net, loader, ctx, progress=True, desc="embedding"):
    """Embeddings of every image of ``loader`` (in order), as a float32 (N, D) NumPy array.

    Batches are split over ``ctx`` unevenly when needed, so any batch size works.
    """
    chunks = []
    for images, _ in tqdm(loader, disable=not progress, desc=desc, leave=False, unit="batch",
                          dynamic_ncols=True):
        # A last batch smaller than the number of devices goes to the first devices only.
        devices = ctx[: min(len(ctx), images.shape[0])]
        parts = mx.gluon.utils.split_and_load(images, devices, even_split=False)
        outputs = [net(part) for part in parts]
        chunks.extend(output.asnumpy() for output in outputs)
    return np.concatenate(chunks, axis=0).astype(np.float32, copy=False)


def evaluate(net, loader, labels, ctx, ks, progress=True, return_embeddings=False,
             metrics=("recall",), knn="numpy", cluster_backend="auto"):
    """Metrics of the test split (query = gallery, self excluded) as a flat dict
    (``{'R@1': ..., 'MAP@R': ..., 'NMI': ...}``, see ``utils.metrics.evaluate_embeddings``), and
    the unit-norm embeddings too when ``return_embeddings``."""
    start = time.time()
    embeddings = embed_dataset(net, loader, ctx, progress=progress, desc="evaluating")
    bad_rows = ~np.isfinite(embeddings).all(axis=1)
    if bad_rows.any():
        # Only reachable with --nan_policy=skip_batch after the parameters broke: score such rows
        # as zero vectors rather than crash the metrics (k-means refuses NaN).
        logger.warning("%d of %d test embeddings are not finite; they are scored as zero vectors",
                       int(bad_rows.sum()), len(bad_rows))
        embeddings = np.where(bad_rows[:, None], 0.0, embeddings).astype(np.float32)
    # Unit vectors for evaluation whatever the network returns (the Symm losses train unnormalised).
    embeddings = l2_normalize(embeddings)
    values = evaluate_embeddings(embeddings, labels, ks, metrics=metrics, knn=knn,
                                 cluster_backend=cluster_backend)
    logger.info("evaluated %d images in %.1f s", len(labels), time.time() - start)
    return (values, embeddings) if return_embeddings else values
