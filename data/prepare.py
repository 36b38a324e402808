"""Create the split files of a public benchmark (download the raw files when possible).

Command line::

    python3 -m data.prepare cars196 --data_dir ./data/CARS_196 [--no_download]

Each dataset is one subcommand backed by a function in ``PREPARERS``
(``prepare_<name>(data_dir, download) -> dict``); CUB-200-2011 and Stanford Online
Products can be added the same way. Errors are one line on stderr and exit code 2.
"""

import argparse
import logging
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request

import numpy as np

from . import DATASETS
from .meta import write_split

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 15.0  # connection / read timeout; a dead link fails fast

CARS196_IMAGES_URL = "http://ai.stanford.edu/~jkrause/car196/car_ims.tgz"
CARS196_ANNOS_URL = "http://ai.stanford.edu/~jkrause/car196/cars_annos.mat"
CARS196_NUM_IMAGES = 16185
CARS196_NUM_TRAIN_CLASSES = 98  # classes 1-98 train, 99-196 test


class DownloadError(Exception):
    """A download failed (offline, timeout, HTTP error)."""


def download_file(url, destination, timeout=DOWNLOAD_TIMEOUT_S):
    """Download ``url`` to ``destination`` through a ``.part`` file.

    Raises
    ------
    DownloadError
        On any network or HTTP failure (the partial file is removed).
    """
    partial = destination + ".part"
    logger.info("downloading %s -> %s", url, destination)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as error:
        if os.path.exists(partial):
            os.remove(partial)
        raise DownloadError("{}: {}".format(url, error)) from None
    os.replace(partial, destination)


def _extract_tgz(archive, destination):
    logger.info("extracting %s into %s", archive, destination)
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tar.extractall(destination)


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


def prepare_cars196(data_dir, download=True, expected_images=None):
    """Write ``train.txt`` (classes 1-98) and ``test.txt`` (classes 99-196) for CARS196.

    Expects ``data_dir/car_ims/*.jpg`` and ``data_dir/cars_annos.mat``; downloads and
    extracts them first when absent and ``download`` is true.

    Parameters
    ----------
    data_dir : str
        Dataset directory.
    download : bool, default True
        Try to download missing files.
    expected_images : int, optional
        Required number of annotated images; default ``CARS196_NUM_IMAGES`` (16,185).

    Returns
    -------
    dict
        ``num_train_images``, ``num_test_images``, ``num_train_classes``, ``num_test_classes``.

    Raises
    ------
    ValueError
        Files missing and not downloadable (naming which files to put where), a wrong image
        count, or annotated images missing on disk.
    """
    images_dir = os.path.join(data_dir, "car_ims")
    annos_path = os.path.join(data_dir, "cars_annos.mat")
    manual = (
        "download {} (extract it so that {}/000001.jpg exists) and {} into {}, then re-run "
        "'python3 -m data.prepare cars196 --data_dir {}'".format(
            CARS196_IMAGES_URL, images_dir, CARS196_ANNOS_URL, annos_path, data_dir
        )
    )
    have_images = os.path.isdir(images_dir) and bool(os.listdir(images_dir))
    have_annos = os.path.isfile(annos_path)
    if not (have_images and have_annos):
        if not download:
            raise ValueError("CARS196 files missing; " + manual)
        os.makedirs(data_dir, exist_ok=True)
        try:
            if not have_annos:
                download_file(CARS196_ANNOS_URL, annos_path)
            if not have_images:
                archive = os.path.join(data_dir, "car_ims.tgz")
                if not os.path.isfile(archive):
                    download_file(CARS196_IMAGES_URL, archive)
                _extract_tgz(archive, data_dir)
        except DownloadError as error:
            raise ValueError("download failed ({}); {}".format(error, manual)) from None
        except (tarfile.TarError, EOFError) as error:
            raise ValueError(
                "cannot extract car_ims.tgz ({}); delete it and {}".format(error, manual)
            ) from None

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
    write_split(os.path.join(data_dir, "train.txt"), train_rows)
    write_split(os.path.join(data_dir, "test.txt"), test_rows)
    summary = {
        "num_train_images": len(train_rows),
        "num_test_images": len(test_rows),
        "num_train_classes": len({c for _, c, _ in train_rows}),
        "num_test_classes": len({c for _, c, _ in test_rows}),
    }
    logger.info("CARS196 in %s: %s", data_dir, summary)
    return summary


# name -> (preparer, default data_dir, description); add cub200 / sop here.
PREPARERS = {
    "cars196": (
        prepare_cars196,
        DATASETS["cars196"].default_data_dir,
        "Stanford Cars (16,185 images, 196 classes)",
    ),
}


def main(argv=None):
    """Command line entry; returns the exit code (0 ok, 2 on any data problem)."""
    parser = argparse.ArgumentParser(
        prog="python3 -m data.prepare",
        description="Download a benchmark if needed and write its train.txt / test.txt.",
    )
    subparsers = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    for name, (_, default_dir, description) in PREPARERS.items():
        sub = subparsers.add_parser(name, help=description, description=description)
        sub.add_argument("--data_dir", default=default_dir, help="dataset directory")
        sub.add_argument(
            "--no_download",
            action="store_true",
            help="never download; fail with instructions if files are missing",
        )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    preparer = PREPARERS[args.dataset][0]
    try:
        summary = preparer(args.data_dir, download=not args.no_download)
    except ValueError as error:
        print("error: {}".format(error), file=sys.stderr)
        return 2
    print(
        "{}: wrote {}/train.txt and {}/test.txt ({})".format(
            args.dataset, args.data_dir, args.data_dir, summary
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
