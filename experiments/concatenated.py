"""The k-fold protocol's concatenated result: the test split embedded by each fold's selected
network, the L2-normalised embeddings joined image by image (K x D dimensions) and evaluated once.

Computed once per set of fold runs and kept beside them (``concatenated-seed-S.json`` in the
protocol's folder), keyed by the sizes and modification times of the folds' model_best.params, so a
report is recomputed only when a fold's network changed.
"""
import json
import os

import numpy as np

from utils.metrics import evaluate_embeddings, l2_normalize
from utils.run import folder as run_folder


def _key(save_dirs):
    key = []
    for save_dir in save_dirs:
        path = run_folder.path(save_dir, run_folder.MODEL_BEST)
        stat = os.stat(path)
        key.append([os.path.abspath(path), stat.st_size, stat.st_mtime_ns])
    return key


def join_embeddings(parts):
    """Unit rows of the folds' embeddings ``[(N, D_i), ...]`` (each L2-normalised) joined along the
    features: the concatenated embedding of each image."""
    return l2_normalize(np.concatenate([l2_normalize(part) for part in parts], axis=1))


def concatenated_metrics(save_dirs, ctx=None, embed=None):
    """Metrics of the joined test embeddings of the fold runs in ``save_dirs`` (finished runs with a
    model_best.params), with the runs' recall ranks and metrics. ``embed(checkpoint)`` returns
    ``(unit embeddings, labels)`` (default: ``inference.evaluation.embed_test_split`` on ``ctx``)."""
    save_dirs = sorted(save_dirs)
    cache = os.path.join(os.path.dirname(save_dirs[0]), "..",
                         "concatenated-%s.json" % os.path.basename(save_dirs[0]))
    cache = os.path.normpath(cache)
    key = _key(save_dirs)
    if os.path.isfile(cache):
        with open(cache, encoding="utf-8") as handle:
            stored = json.load(handle)
        if stored.get("key") == key:
            return stored["metrics"]
    if embed is None:
        import mxnet as mx

        from inference.evaluation import embed_test_split

        contexts = ctx or [mx.cpu()]

        def embed(checkpoint):
            embeddings, labels = embed_test_split(checkpoint, contexts, progress=False)[:2]
            return embeddings, labels
    parts, labels = [], None
    for save_dir in save_dirs:
        embeddings, fold_labels = embed(run_folder.path(save_dir, run_folder.MODEL_BEST))
        if labels is not None and not np.array_equal(labels, fold_labels):
            raise ValueError("the folds of %s embedded different test splits" % os.path.dirname(save_dirs[0]))
        parts.append(embeddings)
        labels = fold_labels
    saved = run_folder.read_args_file(run_folder.path(save_dirs[0], run_folder.ARGS))
    metrics = evaluate_embeddings(join_embeddings(parts), labels, saved.get("recallk") or (1, 2, 4, 8),
                                  metrics=saved.get("eval_metrics") or ("recall",), knn=saved.get("knn", "numpy"))
    with open(cache, "w", encoding="utf-8") as handle:
        json.dump({"key": key, "metrics": metrics, "runs": save_dirs}, handle, indent=2)
    return metrics
