"""Create the split files of a public benchmark (download the raw files when possible).

Command line::

    python3 -m data.prepare cars196 --data_dir ./data/CARS_196 [--no_download]
    python3 -m data.prepare cub200 --data_dir ./data/CUB_200_2011
    python3 -m data.prepare sop --data_dir ./data/Stanford_Online_Products

Each dataset is one subcommand backed by a function in ``PREPARERS``
(``prepare_<name>(data_dir, download) -> dict``). A preparer downloads and unpacks the
archive when the files are missing (bounded by ``DOWNLOAD_TIMEOUT_S``; an archive already in
``data_dir`` is unpacked without downloading), checks the layout and the image count, and
writes ``train.txt`` / ``test.txt`` (see ``data.meta``) into ``data_dir``. CUB-200-2011 and
SOP are also accepted one level down, as their archives unpack
(``data_dir/CUB_200_2011/images.txt``). Errors are one line on stderr and exit code 2.
"""

import argparse
import logging
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile

import numpy as np

from . import DATASETS, cub200, sop
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


def _missing_entries(root, required):
    """Paths of ``required`` entries (a trailing '/' marks a directory) absent under ``root``."""
    missing = []
    for entry in required:
        path = os.path.join(root, entry.rstrip("/"))
        present = os.path.isdir(path) if entry.endswith("/") else os.path.isfile(path)
        if not present:
            missing.append(os.path.join(root, entry))
    return missing


def _locate_root(data_dir, required, nested_dir):
    """``''`` when ``data_dir`` holds every required entry, ``nested_dir`` when
    ``data_dir/nested_dir`` does (the archive unpacked in place), else None."""
    for sub in ("", nested_dir):
        if not _missing_entries(os.path.join(data_dir, sub), required):
            return sub
    return None


def _extract(archive, destination):
    if archive.endswith(".zip"):
        logger.info("extracting %s into %s", archive, destination)
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(destination)  # member names are sanitised ('..', absolute paths)
    else:
        _extract_tgz(archive, destination)


def _ensure_layout(label, command, data_dir, required, nested_dir, urls, archive_name, download):
    """Make sure ``data_dir`` (or ``data_dir/nested_dir``) holds ``required``; return which.

    Downloads ``archive_name`` from the first of ``urls`` that answers (unless it is already
    in ``data_dir``) and unpacks it into ``data_dir`` when entries are missing.

    Returns
    -------
    str
        ``''`` or ``nested_dir``: where, relative to ``data_dir``, the dataset root is.

    Raises
    ------
    ValueError
        One line naming every missing file with its full path and what to do.
    """
    root = _locate_root(data_dir, required, nested_dir)
    if root is not None:
        return root
    archive = os.path.join(data_dir, archive_name)
    manual = (
        "download {} (or put {} into {}), extract it so that {} exists, then re-run "
        "'{}'".format(
            urls[0], archive_name, data_dir, os.path.join(data_dir, nested_dir, required[0]), command
        )
    )
    missing = "{} files missing: {}".format(label, ", ".join(_missing_entries(data_dir, required)))
    if not download and not os.path.isfile(archive):
        raise ValueError("{}; {}".format(missing, manual))
    os.makedirs(data_dir, exist_ok=True)
    if not os.path.isfile(archive):
        errors = []
        for url in urls:
            try:
                download_file(url, archive)
                break
            except DownloadError as error:
                errors.append(str(error))
        else:
            raise ValueError("{}; download failed ({}); {}".format(missing, "; ".join(errors), manual))
    try:
        _extract(archive, data_dir)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise ValueError(
            "cannot extract {} ({}); delete it and {}".format(archive, error, manual)
        ) from None
    root = _locate_root(data_dir, required, nested_dir)
    if root is None:
        raise ValueError(
            "{} after extracting {}, the archive does not hold the expected layout; delete it "
            "and {}".format(missing, archive, manual)
        )
    return root


def _read_layout(reader, path):
    """``reader(path)``, turning a file that cannot be read into a one-line ValueError."""
    try:
        return reader(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError("cannot read {}: {}".format(path, error)) from None


def _check_images_present(records, data_dir, listed_in, command):
    missing = [r[2] for r in records if not os.path.isfile(os.path.join(data_dir, r[2]))]
    if missing:
        raise ValueError(
            "{} of {} images listed in {} are missing under {} (first: {}); extract the archive "
            "again and re-run '{}'".format(
                len(missing), len(records), listed_in, data_dir, ", ".join(missing[:3]), command
            )
        )


def _write_splits(data_dir, train_rows, test_rows, name):
    write_split(os.path.join(data_dir, "train.txt"), train_rows)
    write_split(os.path.join(data_dir, "test.txt"), test_rows)
    summary = {
        "num_train_images": len(train_rows),
        "num_test_images": len(test_rows),
        "num_train_classes": len({c for _, c, _ in train_rows}),
        "num_test_classes": len({c for _, c, _ in test_rows}),
    }
    logger.info("%s in %s: %s", name, data_dir, summary)
    return summary


def prepare_cub200(data_dir, download=True, expected_images=None, num_train_classes=None):
    """Write ``train.txt`` (classes 1-100) and ``test.txt`` (classes 101-200) for CUB-200-2011.

    Expects ``images.txt``, ``image_class_labels.txt`` and ``images/`` in ``data_dir`` or in
    ``data_dir/CUB_200_2011``; downloads and extracts ``CUB_200_2011.tgz`` first when they are
    absent and ``download`` is true. See ``data.cub200`` for the layout.

    Parameters
    ----------
    data_dir : str
        Dataset directory; the split files are written here.
    download : bool, default True
        Try to download missing files.
    expected_images : int, optional
        Required number of listed images; default ``cub200.NUM_IMAGES`` (11,788).
    num_train_classes : int, optional
        Classes ``1 .. num_train_classes`` train, the rest test; default 100.

    Returns
    -------
    dict
        ``num_train_images``, ``num_test_images``, ``num_train_classes``, ``num_test_classes``.

    Raises
    ------
    ValueError
        Files missing and not downloadable (naming each missing file), malformed lists, a wrong
        image count, listed images missing on disk, or an empty train or test side.
    """
    command = "python3 -m data.prepare cub200 --data_dir {}".format(data_dir)
    sub = _ensure_layout(
        "CUB-200-2011", command, data_dir, cub200.REQUIRED, cub200.NESTED_DIR, (cub200.URL,),
        cub200.ARCHIVE, download,
    )
    root = os.path.join(data_dir, sub)
    records = _read_layout(cub200.read_records, root)
    records = [(i, c, os.path.join(sub, p).replace(os.sep, "/")) for i, c, p in records]
    images_list = os.path.join(root, cub200.IMAGES_LIST)
    expected_images = cub200.NUM_IMAGES if expected_images is None else int(expected_images)
    if len(records) != expected_images:
        raise ValueError(
            "{} lists {} images, CUB-200-2011 has {}; the files are incomplete or another "
            "dataset's: extract {} again and re-run '{}'".format(
                images_list, len(records), expected_images, cub200.ARCHIVE, command
            )
        )
    _check_images_present(records, data_dir, images_list, command)
    num_train_classes = cub200.NUM_TRAIN_CLASSES if num_train_classes is None else int(num_train_classes)
    train_rows, test_rows = cub200.split_records(records, num_train_classes)
    if not train_rows or not test_rows:
        raise ValueError(
            "{}: expected classes 1-{} (train) and higher (test), found only one side".format(
                os.path.join(root, cub200.LABELS_LIST), num_train_classes
            )
        )
    return _write_splits(data_dir, train_rows, test_rows, "CUB-200-2011")


def prepare_sop(data_dir, download=True, expected_images=None):
    """Write ``train.txt`` and ``test.txt`` for Stanford Online Products from its ``Ebay_*.txt``.

    Expects ``Ebay_train.txt`` and ``Ebay_test.txt`` (and the image folders they list) in
    ``data_dir`` or in ``data_dir/Stanford_Online_Products``; downloads and extracts
    ``Stanford_Online_Products.zip`` first when they are absent and ``download`` is true. The
    label is the product's ``class_id``. See ``data.sop`` for the layout.

    Parameters
    ----------
    data_dir : str
        Dataset directory; the split files are written here.
    download : bool, default True
        Try to download missing files.
    expected_images : int, optional
        Required number of listed images, train and test together; default
        ``sop.NUM_IMAGES`` (120,053).

    Returns
    -------
    dict
        ``num_train_images``, ``num_test_images``, ``num_train_classes``, ``num_test_classes``.

    Raises
    ------
    ValueError
        Files missing and not downloadable (naming each missing file), malformed lists, a wrong
        image count, a class in both splits, or listed images missing on disk.
    """
    command = "python3 -m data.prepare sop --data_dir {}".format(data_dir)
    sub = _ensure_layout(
        "Stanford Online Products", command, data_dir, sop.REQUIRED, sop.NESTED_DIR, sop.URLS,
        sop.ARCHIVE, download,
    )
    root = os.path.join(data_dir, sub)
    lists = {}
    for which, name in (("train", sop.TRAIN_LIST), ("test", sop.TEST_LIST)):
        records = _read_layout(sop.read_list, os.path.join(root, name))
        lists[which] = [(i, c, os.path.join(sub, p).replace(os.sep, "/")) for i, c, p in records]
    train_rows, test_rows = lists["train"], lists["test"]
    expected_images = sop.NUM_IMAGES if expected_images is None else int(expected_images)
    if len(train_rows) + len(test_rows) != expected_images:
        raise ValueError(
            "{} and {} in {} list {} + {} images, Stanford Online Products has {}; the files "
            "are incomplete or another dataset's: extract {} again and re-run '{}'".format(
                sop.TRAIN_LIST, sop.TEST_LIST, root, len(train_rows), len(test_rows),
                expected_images, sop.ARCHIVE, command,
            )
        )
    shared = sorted({c for _, c, _ in train_rows} & {c for _, c, _ in test_rows})
    if shared:
        raise ValueError(
            "{} class id(s) appear in both {} and {} (first: {}); the lists are not SOP's".format(
                len(shared), os.path.join(root, sop.TRAIN_LIST), os.path.join(root, sop.TEST_LIST),
                shared[:3],
            )
        )
    for which, name in (("train", sop.TRAIN_LIST), ("test", sop.TEST_LIST)):
        _check_images_present(lists[which], data_dir, os.path.join(root, name), command)
    return _write_splits(data_dir, train_rows, test_rows, "Stanford Online Products")


# name -> (preparer, default data_dir, description)
PREPARERS = {
    "cars196": (
        prepare_cars196,
        DATASETS["cars196"].default_data_dir,
        "Stanford Cars (16,185 images, 196 classes)",
    ),
    "cub200": (
        prepare_cub200,
        DATASETS["cub200"].default_data_dir,
        "CUB-200-2011 (11,788 images, 200 classes; classes 1-100 train, 101-200 test)",
    ),
    "sop": (
        prepare_sop,
        DATASETS["sop"].default_data_dir,
        "Stanford Online Products (120,053 images, 22,634 classes; Ebay_train.txt / Ebay_test.txt)",
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
