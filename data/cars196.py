"""CARS196 (Stanford Cars): its annotations, the metric-learning split, and its preparation.

Krause, Stark, Deng, Fei-Fei, "3D Object Representations for Fine-Grained Categorization",
3dRR 2013. 16,185 images of 196 car models; ``car_ims.tgz`` unpacks into ``car_ims/`` and
``cars_annos.mat`` lists every image with its class. Metric-learning split (as the Embedding
Expansion release): classes 1-98 train (8,054 images), classes 99-196 test (8,131 images);
bounding boxes are not used.
"""

import logging
import os
import tarfile

import numpy as np

from . import preparation
from .spec import DatasetSpec, prepare_command

logger = logging.getLogger(__name__)

CARS196_IMAGES_URL = "http://ai.stanford.edu/~jkrause/car196/car_ims.tgz"
CARS196_ANNOS_URL = "http://ai.stanford.edu/~jkrause/car196/cars_annos.mat"
CARS196_NUM_IMAGES = 16185
CARS196_NUM_TRAIN_CLASSES = 98  # classes 1-98 train, 99-196 test


def _load_cars196_annotations(annos_path):
    """``[(relative_im_path, class_id), ...]`` from ``cars_annos.mat``, in file order."""
    try:
        from scipy.io import loadmat
    except ImportError:  # pragma: no cover - scipy is a pinned requirement
        raise ValueError("reading {} needs scipy; pip install scipy".format(annos_path)) from None
    try:
        mat = loadmat(annos_path, squeeze_me=True, struct_as_record=True)
    except Exception as error:  # scipy raises several types for a corrupt file
        raise ValueError(
            "cannot read {}: {}; download it again from {}".format(annos_path, error, CARS196_ANNOS_URL)
        ) from None
    if "annotations" not in mat:
        raise ValueError(
            "{} has no 'annotations' struct; download it again from {}".format(annos_path, CARS196_ANNOS_URL)
        )
    annotations = np.atleast_1d(mat["annotations"])
    names = annotations.dtype.names or ()
    if "relative_im_path" not in names or "class" not in names:
        raise ValueError(
            "{}: 'annotations' lacks the fields relative_im_path and class; download it "
            "again from {}".format(annos_path, CARS196_ANNOS_URL)
        )
    records = []
    for record in annotations:
        records.append((str(record["relative_im_path"]).strip(), int(record["class"])))
    return records


def _fetch(data_dir, images_dir, annos_path, download, manual):
    """Download and extract ``car_ims`` and ``cars_annos.mat`` when they are not there."""
    have_images = os.path.isdir(images_dir) and bool(os.listdir(images_dir))
    have_annos = os.path.isfile(annos_path)
    if not (have_images and have_annos):
        if not download:
            raise ValueError("CARS196 files missing; " + manual)
        os.makedirs(data_dir, exist_ok=True)
        try:
            if not have_annos:
                preparation.download_file(CARS196_ANNOS_URL, annos_path)
            if not have_images:
                archive = os.path.join(data_dir, "car_ims.tgz")
                if not os.path.isfile(archive):
                    preparation.download_file(CARS196_IMAGES_URL, archive)
                preparation.extract_tgz(archive, data_dir)
        except preparation.DownloadError as error:
            raise ValueError("download failed ({}); {}".format(error, manual)) from None
        except (tarfile.TarError, EOFError) as error:
            raise ValueError(
                "cannot extract car_ims.tgz ({}); delete it and {}".format(error, manual)
            ) from None


def prepare_cars196(data_dir, download=True, expected_images=None):
    """Write ``train.txt`` (classes 1-98) and ``test.txt`` (classes 99-196) for CARS196.

    Expects ``data_dir/car_ims/*.jpg`` and ``data_dir/cars_annos.mat``; downloads and
    extracts them first when absent and ``download`` is true.

    Parameters
    ----------
    data_dir, download
        See ``DatasetSpec.prepare``.
    expected_images : int, optional
        Required number of annotated images; default ``CARS196_NUM_IMAGES`` (16,185).

    Returns the counts of ``preparation.write_splits``. A one-line ValueError for: files missing
    and not downloadable (naming which files to put where), a wrong image count, or annotated
    images missing on disk.
    """
    images_dir = os.path.join(data_dir, "car_ims")
    annos_path = os.path.join(data_dir, "cars_annos.mat")
    manual = (
        "download {} (extract it so that {}/000001.jpg exists) and {} into {}, then re-run "
        "'{}'".format(CARS196_IMAGES_URL, images_dir, CARS196_ANNOS_URL, annos_path, SPEC.prepare_hint(data_dir))
    )
    _fetch(data_dir, images_dir, annos_path, download, manual)
    records = _load_cars196_annotations(annos_path)
    if expected_images is None:
        expected_images = CARS196_NUM_IMAGES
    if len(records) != expected_images:
        raise ValueError(
            "{} lists {} images, CARS196 has {}; {}".format(annos_path, len(records), expected_images, manual)
        )
    missing = [path for path, _ in records if not os.path.isfile(os.path.join(data_dir, path))]
    if missing:
        raise ValueError(
            "{} of {} annotated images are missing under {} (first: {}); {}".format(
                len(missing), len(records), data_dir, ", ".join(missing[:3]), manual
            )
        )

    train_rows, test_rows = [], []
    for image_id, (relpath, class_id) in enumerate(records, start=1):
        rows = train_rows if class_id <= CARS196_NUM_TRAIN_CLASSES else test_rows
        rows.append((image_id, class_id, relpath))
    if not train_rows or not test_rows:
        raise ValueError(
            "{}: expected classes 1-{} (train) and {}-196 (test), found only one side; "
            "{}".format(annos_path, CARS196_NUM_TRAIN_CLASSES, CARS196_NUM_TRAIN_CLASSES + 1, manual)
        )
    return preparation.write_splits(data_dir, train_rows, test_rows, "CARS196")


SPEC = DatasetSpec(
    name="cars196",
    default_data_dir="./data/CARS_196",
    prepare_command=prepare_command("cars196"),
    aliases=("car196", "cars"),
    prepare=prepare_cars196,
    description="Stanford Cars (16,185 images, 196 classes)",
)
