"""Evaluation outside training: the test split of a trained network's run, stored embeddings, and
the metrics report (what ``evaluate.py`` calls; the metrics themselves are ``utils.metrics``)."""
import json
import logging
import math
import os
import time

import numpy as np

import data
from inference.batch_embedding import embed_dataset
from model.export import export_prefix
from utils.metrics import l2_normalize
from utils.run import folder as run_folder

from .trained_network import load_network

logger = logging.getLogger(__name__)


def dataset_of_run(checkpoint, data_name=None, data_dir=None):
    """``(data_name, data_dir)``: those given, else the run's (its data_dir only for its dataset)."""
    saved = run_folder.args_beside(checkpoint)[1]
    data_name = data_name or saved.get("data_name")
    if data_name is None:
        raise ValueError("which test split? pass --data_name (%s); no args.json beside %s names one"
                         % (", ".join(sorted(data.DATASETS)), checkpoint))
    if data_dir is None and saved.get("data_name") and saved.get("data_dir"):
        same = data.resolve_dataset(data_name) is data.resolve_dataset(saved["data_name"])
        if same and os.path.isdir(saved["data_dir"]):
            data_dir = saved["data_dir"]
    return data_name, data_dir


def _load_array(path, flag):
    if not os.path.isfile(path):
        raise ValueError("%s %s does not exist" % (flag, path))
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError("cannot read %s %s as a .npy array: %s" % (flag, path, error)) from None


def load_stored(embeddings_path, labels_path):
    """``(embeddings float32 (N, D), labels (N,))`` from two .npy files, shapes checked."""
    embeddings = _load_array(embeddings_path, "--embeddings")
    labels = _load_array(labels_path, "--labels")
    if embeddings.ndim != 2 or embeddings.dtype.kind not in "fiu":
        raise ValueError("--embeddings %s must hold an (N, D) numeric array, found %s of shape %s"
                         % (embeddings_path, embeddings.dtype, embeddings.shape))
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError("--labels %s must hold an (N,) array, found shape %s" % (labels_path, labels.shape))
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError("--embeddings %s has %d rows but --labels %s has %d labels; they must "
                         "describe the same images in the same order"
                         % (embeddings_path, embeddings.shape[0], labels_path, labels.shape[0]))
    return embeddings.astype(np.float32, copy=False), labels


def embed_test_split(checkpoint, ctx, network=None, data_name=None, data_dir=None, batch_size=64,
                     num_workers=2, progress=True):
    """``(unit embeddings, labels, paths, spec, description)`` of a test split through the network
    of ``checkpoint`` (``network``: backbone, embed_dim, image_size given in its place, dtype)."""
    data_name, data_dir = dataset_of_run(checkpoint, data_name, data_dir)
    net, image_size = load_network(checkpoint, ctx, **(network or {}))
    loader, info = data.build_test_loader(data_name, data_dir, image_size, batch_size, num_workers)
    start = time.time()
    embeddings = embed_dataset(net, loader, ctx, progress=progress,
                               desc="embedding %s test" % info.dataset.name)
    logger.info("embedded %d test images in %.1f s on %s", len(embeddings), time.time() - start,
                ", ".join(str(c) for c in ctx))
    if embeddings.shape[0] != info.num_test_images:  # pragma: no cover - a loader bug
        raise ValueError("embedded %d images but the test split has %d"
                         % (embeddings.shape[0], info.num_test_images))
    description = {"data_name": info.dataset.name, "data_dir": os.path.abspath(info.data_dir),
                   "image_size": image_size}
    return l2_normalize(embeddings), info.test_labels, info.test_paths, info.dataset, description


def default_out(source):
    """``run/model_last.params`` → ``run/model_last_metrics.json`` (PREFIX-symbol.json → PREFIX_...)."""
    folder, name = os.path.split(os.path.abspath(source))
    prefix = export_prefix(name)
    stem = prefix if prefix is not None else os.path.splitext(name)[0]
    return os.path.join(folder, stem + "_metrics.json")


def _json_value(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_report(path, report):
    """Write ``report`` as JSON atomically (NaN written as null)."""
    payload = dict(report, metrics={k: _json_value(v) for k, v in report["metrics"].items()})
    folder = os.path.dirname(os.path.abspath(path))
    tmp_path = "%s.tmp%d" % (path, os.getpid())
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp_path, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp_path, path)
    except OSError as error:
        raise ValueError("cannot write %s: %s" % (path, error.strerror or error)) from None
