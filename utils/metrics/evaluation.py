"""Every evaluation metric of a set of embeddings in one flat dict (what training, ``evaluate.py``
and the benchmarks report), and the names of those metrics.
"""
import numpy as np

from .clustering import _cluster_finite, nmi, pairwise_f1
from .embeddings import _check, l2_normalize
from .names import DEFAULT_RECALLK
from .retrieval import _METRIC_NAMES, retrieval_metrics


def evaluate_embeddings(embeddings, labels, ks=DEFAULT_RECALLK,
                        metrics=("recall", "map_at_r", "r_precision", "nmi", "f1"), knn="numpy",
                        cluster_backend="auto", block_size=None, seed=0):
    """All evaluation metrics of L2-normalised ``embeddings``.

    Returns a flat dict: ``R@k`` for each k, ``MAP@R``, ``RP``, ``NMI``, ``F1`` (only those
    asked). Clustering (k-means with n_clusters = number of distinct labels) runs only when
    'nmi' or 'f1' is asked. Rows that are not finite are misses (see the module docstring); how
    many there are is :func:`non_finite_rows`'s to say."""
    embeddings, labels = _check(embeddings, labels)
    metrics = tuple(metrics)
    unknown = set(metrics) - set(_METRIC_NAMES) - {"nmi", "f1"}
    if unknown:
        raise ValueError("unknown metrics %s" % sorted(unknown))
    x = l2_normalize(embeddings)
    out = {}
    retrieval = tuple(m for m in metrics if m in _METRIC_NAMES)
    if retrieval:
        out.update(retrieval_metrics(x, labels, ks, metrics=retrieval, knn=knn, block_size=block_size))
    if "nmi" in metrics or "f1" in metrics:
        ids = _cluster_finite(x, len(np.unique(labels)), cluster_backend, seed)
        if "nmi" in metrics:
            out["NMI"] = nmi(ids, labels)
        if "f1" in metrics:
            out["F1"] = pairwise_f1(ids, labels)
    return out
