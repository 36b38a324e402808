"""The loaders the trainer and the evaluation use: a dataset's splits checked and read, the
class-balanced train loader and the sequential test loader."""

import logging
import os
from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np

from .closing_loader import ClosingDataLoader
from .dataset import ImageListDataset
from .image_check import unreadable_images
from .meta import read_split
from .registry import resolve_dataset
from .sampler import ClassBalancedBatchSampler
from .seen_classes import check_unseen_test_classes
from .spec import DatasetSpec
from .transforms import TestTransform, TrainTransform, decode_image

logger = logging.getLogger(__name__)


def _check_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError("{} must be an integer >= {}, got {!r}".format(name, minimum, value))


def _dataset_dir(data_name, data_dir):
    """``(spec, data_dir)`` after checking that the directory exists and is not empty."""
    spec = resolve_dataset(data_name)
    data_dir = data_dir or spec.default_data_dir
    if not data_dir:
        raise ValueError(
            "the {} dataset has no default directory; pass --data_dir DIR and {}".format(
                spec.name, spec.prepare_hint("DIR")
            )
        )
    hint = spec.fix_hint(data_dir)
    if not os.path.isdir(data_dir):
        raise ValueError("data directory {} does not exist; {}".format(data_dir, hint))
    if not os.listdir(data_dir):
        raise ValueError("data directory {} is empty; {}".format(data_dir, hint))
    return spec, data_dir


def load_split(spec, data_dir, which):
    """Image paths and labels of one split of a dataset, every image checked to exist.

    Parameters
    ----------
    spec : DatasetSpec or str
        The dataset (or its name).
    data_dir : str
        Its directory.
    which : {'train', 'test'}

    Returns
    -------
    paths : list of str
        Absolute image paths, in split order.
    labels : numpy.ndarray
        int32 labels, shape (N,).

    Raises
    ------
    ValueError
        One line: a missing or malformed split file (or folder), or missing images.
    """
    if not isinstance(spec, DatasetSpec):
        spec = resolve_dataset(spec)
    if which not in ("train", "test"):
        raise ValueError("split must be 'train' or 'test', got {!r}".format(which))
    if spec.read_split is not None:
        return spec.read_split(data_dir, which)  # listed from the disk: nothing can be missing
    hint = spec.fix_hint(data_dir)
    split_path = os.path.join(data_dir, spec.train_split if which == "train" else spec.test_split)
    paths, labels = read_split(split_path, data_dir, fix_hint=hint)
    _check_images_exist(paths, split_path, hint)
    return paths, labels


def _train_loader(paths, labels, image_size, batch_size, num_instances, num_workers, seed, prefetch):
    """``(loader, sampler)``: class-balanced batches of augmented training images."""
    sampler = ClassBalancedBatchSampler(labels, batch_size, num_instances, seed=seed)
    train_set = ImageListDataset(paths, labels, TrainTransform(image_size), seed=seed)
    loader = ClosingDataLoader(train_set, batch_sampler=sampler, num_workers=int(num_workers),
                               prefetch=prefetch)
    return loader, sampler


def _test_loader(paths, labels, image_size, batch_size, num_workers, seed=0, prefetch=None):
    test_set = ImageListDataset(paths, labels, TestTransform(image_size), seed=seed)
    return ClosingDataLoader(
        test_set,
        batch_size=int(batch_size),
        shuffle=False,
        last_batch="keep",
        num_workers=int(num_workers),
        prefetch=prefetch,
    )


@dataclass
class TestSplitInfo:
    """What the callers learn of a dataset's test split (:func:`build_test_loader`).

    ``test_paths`` (absolute) and ``test_labels`` (int32 numpy array) are in loader order.
    """

    dataset: DatasetSpec
    data_dir: str
    num_test_images: int
    num_test_classes: int
    test_labels: np.ndarray
    test_paths: List[str]

    @classmethod
    def of_split(cls, spec, data_dir, paths, labels):
        return cls(dataset=spec, data_dir=data_dir, num_test_images=len(paths),
                   num_test_classes=int(len(np.unique(labels))), test_labels=labels, test_paths=paths)


@dataclass
class LoaderInfo(TestSplitInfo):
    """What the callers learn of both splits (:func:`build_loaders`): the test split's fields, and

    ``train_labels``, ``num_train_images``, ``num_train_classes``; ``train_sampler`` (call
    ``set_epoch(epoch)`` before each epoch); ``skipped_images`` (left out by ``skip_bad_images``);
    ``seen_test_classes`` (the test classes that are also training classes: empty unless
    ``seen_classes``). With a validation split (``data.validation_split``): ``val_loader`` (its
    images in split order, test-time transform), ``val_labels``, ``val_paths`` and
    ``val_class_ids`` (the held-out training classes, sorted); all None without one. The train
    fields then describe what is trained on: the training split without the held-out classes.
    """

    train_labels: np.ndarray
    num_train_images: int
    num_train_classes: int
    train_sampler: ClassBalancedBatchSampler
    skipped_images: List[str]
    seen_test_classes: List[str]
    val_loader: Optional[Any] = None
    val_labels: Optional[np.ndarray] = None
    val_paths: Optional[List[str]] = None
    val_class_ids: Optional[List[int]] = None


def build_test_loader(data_name, data_dir, image_size, batch_size, num_workers):
    """The sequential test loader alone (standalone evaluation: no train split is read).

    Parameters
    ----------
    data_name, data_dir, image_size, num_workers
        As for :func:`build_loaders`.
    batch_size : int
        Test batch size; the last batch is kept.

    Returns
    -------
    test_loader : mxnet.gluon.data.DataLoader
        All test images in split order, (uint8 NDArray (B, S, S, 3), int32 NDArray (B,)).
    info : TestSplitInfo
    """
    spec, data_dir = _dataset_dir(data_name, data_dir)
    _check_count("num_workers", num_workers, 0)
    _check_count("batch_size", batch_size, 1)
    _check_count("image_size", image_size, 1)
    paths, labels = load_split(spec, data_dir, "test")
    loader = _test_loader(paths, labels, image_size, batch_size, num_workers)
    info = TestSplitInfo.of_split(spec, data_dir, paths, labels)
    logger.info(
        "%s in %s: test %d images / %d classes", spec.name, data_dir, len(paths), info.num_test_classes
    )
    return loader, info


def eval_k_cap(ks, num_images):
    """Check Recall@K ranks against the size of the evaluated set; returns ``ks`` unchanged.

    A query has ``num_images - 1`` other images, so every rank K >= ``num_images - 1`` gives the
    same value as K = ``num_images - 1`` (the metrics clip the neighbour search there). That is
    logged once as a warning (e.g. SOP's R@1000 on a small folder dataset) rather than changing
    the ranks, so result keys stay ``R@K`` as asked.

    Returns
    -------
    list of int
        ``ks``.

    Raises
    ------
    ValueError
        Fewer than two images (no query has a neighbour), or a rank below 1.
    """
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError("recall ranks must be positive integers, got {}".format(ks))
    if num_images < 2:
        raise ValueError("evaluation needs at least 2 images, got {}".format(num_images))
    cap = num_images - 1
    beyond = [k for k in ks if k > cap]
    if beyond:
        logger.warning(
            "R@%s: only %d other images per query, so these equal R@%d (every image is retrieved)",
            ",".join(map(str, beyond)),
            cap,
            cap,
        )
    return ks


def _check_images_exist(paths, split_path, hint):
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(
            "{} of {} images listed in {} are missing (first: {}); {}".format(
                len(missing), len(paths), split_path, ", ".join(missing[:3]), hint
            )
        )


def _check_headers(paths):
    """Every image opens (its header reads), before a run writes anything; one line otherwise."""
    bad = unreadable_images(paths)
    if bad:
        raise ValueError(
            "cannot decode image {}: not a readable image{}; replace it, or pass "
            "--skip_bad_images=True to leave out the images that cannot be decoded".format(
                bad[0], " ({} of {} images are not)".format(len(bad), len(paths)) if len(bad) > 1 else ""))


def drop_unreadable(paths, labels, which):
    """Decode every image; return the readable ones and the list of those that are not.

    Used by ``--skip_bad_images``: one full decode per image, so it costs a pass over the data.
    """
    keep, bad = [], []
    for index, path in enumerate(paths):
        try:
            decode_image(path)
            keep.append(index)
        except ValueError:
            bad.append(path)
    for path in bad:
        logger.warning("skipping unreadable %s image %s", which, path)
    return [paths[i] for i in keep], np.asarray(labels)[keep], bad


def _readable_splits(spec, data_dir, skip_bad_images, seen_classes):
    """``((train paths, labels), (test paths, labels), skipped, seen test classes)``: the test
    classes checked to be unseen (``data.seen_classes``) unless ``seen_classes``, then every image
    checked to open (or, with ``skip_bad_images``, decoded, and those that cannot be left out and
    listed)."""
    train_paths, train_labels = load_split(spec, data_dir, "train")
    test_paths, test_labels = load_split(spec, data_dir, "test")
    seen = check_unseen_test_classes(spec, data_dir, train_labels, test_labels, seen_classes)
    if not skip_bad_images:
        _check_headers(list(train_paths) + list(test_paths))
        return (train_paths, train_labels), (test_paths, test_labels), [], seen
    train_paths, train_labels, bad_train = drop_unreadable(train_paths, train_labels, "train")
    test_paths, test_labels, bad_test = drop_unreadable(test_paths, test_labels, "test")
    return (train_paths, train_labels), (test_paths, test_labels), bad_train + bad_test, seen


def _log_loaders(info, batches, batch_size, num_instances):
    logger.info(
        "%s in %s: train %d images / %d classes, test %d images / %d classes; %d batches of %d "
        "(%d classes x %d) per epoch",
        info.dataset.name,
        info.data_dir,
        info.num_train_images,
        info.num_train_classes,
        info.num_test_images,
        info.num_test_classes,
        batches,
        batch_size,
        batch_size // num_instances,
        num_instances,
    )


def _hold_out(validation, paths, labels, classes_per_batch, loader_settings):
    """``(train paths, train labels, LoaderInfo's val fields)``: the training split without the
    classes ``validation`` holds out, whose images a sequential loader (``_test_loader``'s
    ``loader_settings`` after paths and labels) loads ({} and the split unchanged when
    ``validation`` is None)."""
    if validation is None:
        return paths, labels, {}
    (paths, labels), (val_paths, val_labels), val_ids = validation.apply(paths, labels, classes_per_batch)
    logger.info("validation split (%s): the %d training images of %d held-out training classes %s",
                validation.record()["rule"], len(val_paths), len(val_ids), val_ids)
    fields = dict(val_loader=_test_loader(val_paths, val_labels, *loader_settings), val_labels=val_labels,
                  val_paths=val_paths, val_class_ids=val_ids)
    return paths, labels, fields


def build_loaders(
    data_name, data_dir, image_size, batch_size, num_instances, num_workers, seed=0, test_batch_size=None,
    skip_bad_images=False, prefetch=None, seen_classes=False, validation=None,
):
    """Build the class-balanced train loader and the sequential test loader.

    Parameters
    ----------
    data_name : str
        A name in ``DATASETS`` or an alias ('cars196', 'car196', 'cub200', 'sop', 'demo', 'folder', ...).
    data_dir : str or None
        Directory of the split files and images ('folder': ``train/``, ``test/``); None = the default.
    image_size : int
        Side S of the square images.
    batch_size : int
        Training batch size, a multiple of ``num_instances``.
    num_instances : int
        Images per class in a training batch.
    num_workers : int
        Forked worker processes per loader (0 = decode in the calling process), forked here.
    seed : int, default 0
        Seeds the sampler (``(seed, epoch)`` per epoch) and the augmentation.
    test_batch_size : int, optional
        Test batch size; defaults to ``batch_size``.
    prefetch : int, optional
        Batches each loader prepares ahead in shared memory (MXNet's default: 2 x num_workers).
    seen_classes : bool, default False
        Accept test classes that are also training classes (the seen-class protocol, ``data.seen_classes``).
    validation : data.validation_split.ValidationSplit, optional
        Classes held out of training as a validation set (``info.val_loader``); None: none.

    Returns
    -------
    train_loader : mxnet.gluon.data.DataLoader
        ``len(train_loader)`` batches per epoch of (uint8 NDArray (B, S, S, 3), int32 NDArray (B,)).
    test_loader : mxnet.gluon.data.DataLoader
        All test images in file order, last batch kept, same element types.
    info : LoaderInfo

    A one-line ValueError (naming what to run) for an unknown dataset, a missing or empty data directory, a bad
    split file, missing images, seen test classes, or a sampler or validation split that does not fit the data.
    """
    spec, data_dir = _dataset_dir(data_name, data_dir)
    _check_count("num_workers", num_workers, 0)
    test_batch_size = batch_size if test_batch_size is None else test_batch_size
    _check_count("test_batch_size", test_batch_size, 1)
    (train_paths, train_labels), (test_paths, test_labels), skipped, seen = _readable_splits(
        spec, data_dir, skip_bad_images, seen_classes)
    sequential = (image_size, test_batch_size, num_workers, seed, prefetch)  # the test and validation loaders'
    train_paths, train_labels, val_fields = _hold_out(validation, train_paths, train_labels,
                                                      batch_size // num_instances, sequential)
    train_loader, train_sampler = _train_loader(train_paths, train_labels, image_size, batch_size, num_instances,
                                                num_workers, seed, prefetch)
    test_loader = _test_loader(test_paths, test_labels, *sequential)
    test_info = vars(TestSplitInfo.of_split(spec, data_dir, test_paths, test_labels))
    info = LoaderInfo(**test_info, train_labels=train_labels,
                      num_train_images=len(train_paths), num_train_classes=int(len(np.unique(train_labels))),
                      train_sampler=train_sampler, skipped_images=skipped, seen_test_classes=seen, **val_fields)
    _log_loaders(info, len(train_sampler), batch_size, num_instances)
    return train_loader, test_loader, info
