"""Embeddings as the metrics take them: checked (N, D) rows with labels, unit rows, and which rows
are not finite.

A row with a NaN or infinite entry (a network whose parameters broke) is no point: the metrics
leave it out of the gallery and count it as a miss as a query (``utils.metrics.retrieval``), and
k-means puts such rows in one cluster of their own (``utils.metrics.clustering``).
"""
import numpy as np


def _check(embeddings, labels):
    labels = np.asarray(labels).reshape(-1)
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or embeddings.shape[0] != labels.shape[0]:
        raise ValueError(
            "embeddings must be (N, D) with one label per row, got %s and %d labels"
            % (embeddings.shape, labels.shape[0])
        )
    if embeddings.shape[0] < 2:
        raise ValueError("need at least two embeddings, got %d" % embeddings.shape[0])
    return embeddings, labels


def _label_codes(labels):
    uniq, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return codes.reshape(-1), counts


def non_finite_rows(embeddings):
    """Boolean mask (N,) of the rows holding a NaN or an infinity."""
    return ~np.isfinite(np.asarray(embeddings)).all(axis=1)


def is_one_point(embeddings, rtol=1e-6):
    """True when the finite rows of ``embeddings`` (N, D) are at most one point: every finite row
    equals the first within ``rtol`` of the largest magnitude (``|x_i - x_0|_inf <= rtol * max(1,
    max|x|)``), or at most one row is finite. Such embeddings hold no ranking: a network that maps
    every image alike (collapsed, for example its ReLUs all dead after a huge learning rate)."""
    x = np.asarray(embeddings, dtype=np.float64)
    x = x[~non_finite_rows(x)]
    if x.shape[0] <= 1:
        return True
    scale = max(1.0, float(np.abs(x).max()))
    return bool(np.abs(x - x[0]).max() <= rtol * scale)


def l2_normalize(embeddings, eps=1e-12):
    x = np.asarray(embeddings, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)
