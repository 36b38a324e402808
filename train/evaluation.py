"""Evaluation during training: the network's test-split metrics as ``evaluate.py`` would measure them
on the saved parameters.
"""
import logging
import time

from inference.batch_embedding import embed_dataset, warn_non_finite
from utils.metrics import evaluate_embeddings, l2_normalize

logger = logging.getLogger(__name__)


def share_untrained_parameters(net):
    """Give every device's copy of the parameters that are not trained (BatchNorm's running mean and
    variance) their average over the devices: the value ``save_parameters`` writes.

    Data parallelism keeps one set of running statistics per device, each from its slices. Their
    update is an exponential moving average, which is linear, so replacing each by the average
    leaves every later average, and so every saved file, as it would have been.
    """
    for param in net.collect_params().values():
        # A parameter still waiting for its deferred initialisation (no forward pass yet, e.g. the
        # evaluation before training) gets the same initial value on every device.
        if param.grad_req == "null" and param._data is not None and len(param.list_ctx()) > 1:
            param.set_data(param._reduce())


def evaluate(net, loader, labels, ctx, ks, progress=True, return_embeddings=False,
             metrics=("recall",), knn="numpy", cluster_backend="auto", after_batch=None):
    """Metrics of the test split (query = gallery, self excluded) as a flat dict
    (``{'R@1': ..., 'MAP@R': ..., 'NMI': ...}``, see ``utils.metrics.evaluate_embeddings``), and
    the unit-norm embeddings too when ``return_embeddings`` (rows that are not finite stay so:
    ``utils.metrics.non_finite_rows`` counts them)."""
    start = time.time()
    embeddings = embed_dataset(net, loader, ctx, progress=progress, desc="evaluating",
                               after_batch=after_batch)
    # Parameters broken by too high a learning rate (the loss may stay finite meanwhile).
    warn_non_finite(embeddings, "test embeddings")
    # Unit vectors for evaluation whatever the network returns (the Symm losses train unnormalised).
    embeddings = l2_normalize(embeddings)
    values = evaluate_embeddings(embeddings, labels, ks, metrics=metrics, knn=knn,
                                 cluster_backend=cluster_backend)
    logger.info("evaluated %d images in %.1f s", len(labels), time.time() - start)
    return (values, embeddings) if return_embeddings else values
