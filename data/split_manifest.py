"""What a dataset's split files hold, on record: ``split_manifest.json`` beside them.

Preparing a dataset (``python3 -m data.prepare``) and generating the demo write it; every run
records its SHA-256 in args.json (``split_manifest_sha256``), so two tables can be compared knowing
they rest on the same split. Per split file: its SHA-256, the number of classes and of images, and
the images of each class::

    {"format": 1,
     "splits": {"train": {"file": "train.txt", "sha256": "...", "num_classes": 98,
                          "num_images": 8054, "images_per_class": {"1": 45, ...}},
                "test": {...}}}

The manifest describes the files as written; the run's own class-disjoint validation or fold split
of the training classes is recorded in the run's args.json and results.json, not here.
"""
import hashlib
import json
import os
from collections import Counter

from .meta import read_split

MANIFEST = "split_manifest.json"
FORMAT = 1
SPLIT_FILES = (("train", "train.txt"), ("test", "test.txt"))


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_split(split_path, data_dir):
    """The manifest entry of one split file."""
    _, labels = read_split(split_path, data_dir)
    counts = Counter(int(label) for label in labels)
    return {"file": os.path.basename(split_path), "sha256": _sha256(split_path), "num_classes": len(counts),
            "num_images": int(len(labels)), "images_per_class": {str(c): counts[c] for c in sorted(counts)}}


def build_manifest(data_dir, split_files=SPLIT_FILES):
    """The manifest of the split files of ``data_dir`` (those that exist)."""
    splits = {}
    for name, file_name in split_files:
        path = os.path.join(data_dir, file_name)
        if os.path.isfile(path):
            splits[name] = describe_split(path, data_dir)
    return {"format": FORMAT, "splits": splits}


def write_manifest(data_dir, split_files=SPLIT_FILES):
    """Write ``data_dir/split_manifest.json`` atomically; returns its path."""
    manifest = build_manifest(data_dir, split_files)
    path = os.path.join(data_dir, MANIFEST)
    tmp_path = "%s.tmp%d" % (path, os.getpid())
    with open(tmp_path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(tmp_path, path)
    return path


def manifest_sha256(data_dir):
    """The SHA-256 of ``data_dir/split_manifest.json``, or None when the dataset has none (a folder
    dataset, or one prepared before manifests existed: ``python3 -m data.prepare`` writes one)."""
    path = os.path.join(data_dir, MANIFEST)
    return _sha256(path) if os.path.isfile(path) else None
