"""One training epoch, embedding a dataset, and evaluation: the loop that main.py drives."""
import logging
import time

import mxnet as mx
import numpy as np
from tqdm import tqdm

from .metrics import recall_at_k

logger = logging.getLogger(__name__)


def forward_backward(net, loss_fn, images, labels, ctx):
    """Split a batch over ``ctx``, run the loss per device, and back-propagate.

    Each device receives a contiguous slice of the batch, so the sampler's layout (classes in
    runs of num_instances, pairs in rows 2i, 2i+1) holds on every device as long as the
    per-device batch is a multiple of num_instances. The loss vectors are back-propagated as
    they are: the gradient is that of their sum, as in the original (``trainer.step(1)``).

    Returns
    -------
    list of NDArray
        The per-sample losses of each device.
    """
    image_parts = mx.gluon.utils.split_and_load(images, ctx)
    label_parts = mx.gluon.utils.split_and_load(labels, ctx)
    with mx.autograd.record():
        losses = [loss_fn(net(x), y) for x, y in zip(image_parts, label_parts)]
    mx.autograd.backward(losses)
    return losses


def train_one_epoch(net, loss_fn, trainer, loader, ctx, lr_scheduler, epoch, summary,
                    summary_step=10, progress=True, batch_size=None):
    """Train for one epoch; returns the epoch's mean loss (mean over its iterations).

    The loss of an iteration is the sum over devices of each device's mean per-sample loss (the
    original's logged value). The host waits for the device only every ``summary_step``
    iterations and at the end of the epoch.
    """
    iters_per_epoch = len(loader)
    epoch_total = None
    bar = tqdm(total=iters_per_epoch * batch_size if batch_size else None, disable=not progress,
               unit="img", desc="epoch %d" % (epoch + 1), leave=False, dynamic_ncols=True)
    num_iters = 0
    for i, (images, labels) in enumerate(loader):
        iteration = epoch * iters_per_epoch + i
        trainer.set_learning_rate(lr_scheduler(iteration))
        losses = forward_backward(net, loss_fn, images, labels, ctx)
        trainer.step(1)
        step_loss = mx.nd.add_n(*[loss.mean().as_in_context(ctx[0]) for loss in losses])
        epoch_total = step_loss if epoch_total is None else epoch_total + step_loss
        num_iters += 1
        if i % summary_step == 0:
            value = float(step_loss.asscalar())
            summary.step(iteration + 1, value, trainer.learning_rate)
            bar.set_postfix(loss="%.4f" % value, lr="%.2e" % trainer.learning_rate)
        bar.update(images.shape[0])
    bar.close()
    if num_iters == 0:
        raise ValueError("the training loader produced no batch; the epoch is shorter than one batch")
    return float(epoch_total.asscalar()) / num_iters


def embed_dataset(net, loader, ctx, progress=True, desc="embedding"):
    """Embeddings of every image of ``loader`` (in order), as a float32 (N, D) NumPy array.

    Batches are split over ``ctx`` unevenly when needed, so any batch size works.
    """
    chunks = []
    for images, _ in tqdm(loader, disable=not progress, desc=desc, leave=False, unit="batch",
                          dynamic_ncols=True):
        parts = mx.gluon.utils.split_and_load(images, ctx, even_split=False)
        outputs = [net(part) for part in parts]
        chunks.extend(output.asnumpy() for output in outputs)
    return np.concatenate(chunks, axis=0).astype(np.float32, copy=False)


def evaluate(net, loader, labels, ctx, ks, progress=True):
    """Recall@K of the test split, query = gallery, self excluded. Returns ``{k: recall}``."""
    start = time.time()
    embeddings = embed_dataset(net, loader, ctx, progress=progress, desc="evaluating")
    # Unit vectors for evaluation whatever the network returns (the Symm losses train unnormalised).
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    embeddings = embeddings / np.maximum(norms, 1e-12)
    recalls = recall_at_k(embeddings, labels, ks)
    logger.info("evaluated %d images in %.1f s", len(labels), time.time() - start)
    return recalls
