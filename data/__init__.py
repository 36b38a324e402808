"""Datasets, transforms, the class-balanced sampler and the loaders the trainer uses.

Public surface::

    DATASETS, DatasetSpec, resolve_dataset, build_loaders
    ImageListDataset, ClassBalancedBatchSampler
    TrainTransform, TestTransform, decode_image, MEAN_RGB, STD_RGB
    SPLIT_HEADER, read_split, write_split

Typical use::

    train_loader, test_loader, info = build_loaders('cars196', './data/CARS_196', 227,
                                                    batch_size=128, num_instances=32,
                                                    num_workers=2)
    for epoch in range(epochs):
        info['train_sampler'].set_epoch(epoch)
        for images, labels in train_loader:   # uint8 NDArray (N, S, S, 3), int32 (N,)
            ...
"""

import logging
import os
from dataclasses import dataclass, field

import mxnet as mx
import numpy as np

from .dataset import ImageListDataset
from .meta import SPLIT_HEADER, read_split, write_split
from .sampler import ClassBalancedBatchSampler
from .transforms import MEAN_RGB, STD_RGB, TestTransform, TrainTransform, decode_image

logger = logging.getLogger(__name__)

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "resolve_dataset",
    "build_loaders",
    "ImageListDataset",
    "ClassBalancedBatchSampler",
    "TrainTransform",
    "TestTransform",
    "decode_image",
    "MEAN_RGB",
    "STD_RGB",
    "SPLIT_HEADER",
    "read_split",
    "write_split",
]


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives and how to create its split files.

    Parameters
    ----------
    name : str
        Canonical name.
    default_data_dir : str
        Data directory used when none is given.
    prepare_command : str
        Command that creates the data; ``{data_dir}`` is replaced by the directory.
    train_split, test_split : str
        Split file names inside the data directory.
    aliases : tuple of str
        Other accepted names.
    """

    name: str
    default_data_dir: str
    prepare_command: str
    train_split: str = "train.txt"
    test_split: str = "test.txt"
    aliases: tuple = field(default_factory=tuple)

    def prepare_hint(self, data_dir=None):
        """The command that creates the data in ``data_dir`` (default directory if None)."""
        return self.prepare_command.format(data_dir=data_dir or self.default_data_dir)


DATASETS = {
    "cars196": DatasetSpec(
        name="cars196",
        default_data_dir="./data/CARS_196",
        prepare_command="python3 -m data.prepare cars196 --data_dir {data_dir}",
        aliases=("car196", "cars"),
    ),
    "demo": DatasetSpec(
        name="demo",
        default_data_dir="./data/demo",
        prepare_command="python3 -m data.demo --out {data_dir}",
    ),
}


def _normalise_name(name):
    return str(name).strip().lower().replace("-", "_")


def resolve_dataset(name):
    """Look up a dataset by name or alias (case-insensitive, ``-`` = ``_``).

    Raises
    ------
    ValueError
        For an unknown name, listing the valid names.
    """
    wanted = _normalise_name(name)
    for spec in DATASETS.values():
        if wanted == spec.name or wanted in spec.aliases:
            return spec
    valid = []
    for spec in DATASETS.values():
        valid.append(spec.name + (" (aliases: {})".format(", ".join(spec.aliases)) if spec.aliases else ""))
    raise ValueError("unknown dataset {!r}; valid names: {}".format(name, "; ".join(valid)))


def _check_images_exist(paths, split_path, hint):
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(
            "{} of {} images listed in {} are missing (first: {}); {}".format(
                len(missing), len(paths), split_path, ", ".join(missing[:3]), hint
            )
        )


def build_loaders(
    data_name, data_dir, image_size, batch_size, num_instances, num_workers, seed=0, test_batch_size=None
):
    """Build the class-balanced train loader and the sequential test loader.

    Parameters
    ----------
    data_name : str
        A name in ``DATASETS`` or an alias ('cars196', 'car196', 'demo', ...).
    data_dir : str or None
        Directory holding the split files and images; None = the dataset's default.
    image_size : int
        Side S of the square images.
    batch_size : int
        Training batch size, a multiple of ``num_instances``.
    num_instances : int
        Images per class in a training batch.
    num_workers : int
        Forked worker processes per loader (0 = decode in the calling process). The pools are
        forked here, when the loaders are built.
    seed : int, default 0
        Seeds the sampler (``(seed, epoch)`` per epoch) and the augmentation.
    test_batch_size : int, optional
        Test batch size; defaults to ``batch_size``.

    Returns
    -------
    train_loader : mxnet.gluon.data.DataLoader
        ``len(train_loader)`` batches per epoch of (uint8 NDArray (B, S, S, 3), int32 NDArray (B,)).
    test_loader : mxnet.gluon.data.DataLoader
        All test images in file order, last batch kept, same element types.
    info : dict
        ``num_train_images``, ``num_test_images``, ``num_train_classes``, ``num_test_classes``,
        ``test_labels`` (int32 numpy array, loader order), ``train_labels``, ``train_sampler``
        (call ``set_epoch(epoch)`` before each epoch), ``data_dir``, ``dataset`` (the spec).

    Raises
    ------
    ValueError
        Unknown dataset, missing or empty data directory, bad split file, missing images,
        or sampler settings that do not fit the data; one line naming what to run.
    """
    spec = resolve_dataset(data_name)
    data_dir = data_dir or spec.default_data_dir
    hint = "create it with: {}".format(spec.prepare_hint(data_dir))
    if not os.path.isdir(data_dir):
        raise ValueError("data directory {} does not exist; {}".format(data_dir, hint))
    if not os.listdir(data_dir):
        raise ValueError("data directory {} is empty; {}".format(data_dir, hint))
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise ValueError("num_workers must be a non-negative integer, got {!r}".format(num_workers))
    test_batch_size = batch_size if test_batch_size is None else test_batch_size
    if (
        isinstance(test_batch_size, bool)
        or not isinstance(test_batch_size, (int, np.integer))
        or test_batch_size < 1
    ):
        raise ValueError("test_batch_size must be a positive integer, got {!r}".format(test_batch_size))

    splits = {}
    for which, file_name in (("train", spec.train_split), ("test", spec.test_split)):
        split_path = os.path.join(data_dir, file_name)
        paths, labels = read_split(split_path, data_dir, fix_hint=hint)
        _check_images_exist(paths, split_path, hint)
        splits[which] = (paths, labels)
    train_paths, train_labels = splits["train"]
    test_paths, test_labels = splits["test"]

    train_sampler = ClassBalancedBatchSampler(train_labels, batch_size, num_instances, seed=seed)
    train_set = ImageListDataset(train_paths, train_labels, TrainTransform(image_size), seed=seed)
    test_set = ImageListDataset(test_paths, test_labels, TestTransform(image_size), seed=seed)
    train_loader = mx.gluon.data.DataLoader(
        train_set, batch_sampler=train_sampler, num_workers=int(num_workers)
    )
    test_loader = mx.gluon.data.DataLoader(
        test_set,
        batch_size=int(test_batch_size),
        shuffle=False,
        last_batch="keep",
        num_workers=int(num_workers),
    )
    info = {
        "dataset": spec,
        "data_dir": data_dir,
        "num_train_images": len(train_paths),
        "num_test_images": len(test_paths),
        "num_train_classes": int(len(np.unique(train_labels))),
        "num_test_classes": int(len(np.unique(test_labels))),
        "train_labels": train_labels,
        "test_labels": test_labels,
        "train_sampler": train_sampler,
    }
    logger.info(
        "%s in %s: train %d images / %d classes, test %d images / %d classes; %d batches of %d "
        "(%d classes x %d) per epoch",
        spec.name,
        data_dir,
        info["num_train_images"],
        info["num_train_classes"],
        info["num_test_images"],
        info["num_test_classes"],
        len(train_sampler),
        batch_size,
        batch_size // num_instances,
        num_instances,
    )
    return train_loader, test_loader, info
