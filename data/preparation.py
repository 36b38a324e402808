"""What every preparer of a public benchmark shares (``data.cars196``, ``data.cub200``,
``data.sop``): downloads bounded by ``DOWNLOAD_TIMEOUT_S``, archives unpacked, the layout and
the images checked with one-line errors, and the split files written (see ``data.meta``)."""

import logging
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile

from .meta import write_split
from .split_manifest import write_manifest

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 15.0  # connection / read timeout; a dead link fails fast


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


def extract_tgz(archive, destination):
    logger.info("extracting %s into %s", archive, destination)
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tar.extractall(destination)


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
        extract_tgz(archive, destination)


def ensure_layout(label, command, data_dir, required, nested_dir, urls, archive_name, download):
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


def read_layout(reader, path):
    """``reader(path)``, turning a file that cannot be read into a one-line ValueError."""
    try:
        return reader(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError("cannot read {}: {}".format(path, error)) from None


def check_images_present(records, data_dir, listed_in, command):
    missing = [r[2] for r in records if not os.path.isfile(os.path.join(data_dir, r[2]))]
    if missing:
        raise ValueError(
            "{} of {} images listed in {} are missing under {} (first: {}); extract the archive "
            "again and re-run '{}'".format(
                len(missing), len(records), listed_in, data_dir, ", ".join(missing[:3]), command
            )
        )


def write_splits(data_dir, train_rows, test_rows, name):
    """Write ``train.txt`` and ``test.txt`` into ``data_dir``; returns the counts of both sides."""
    write_split(os.path.join(data_dir, "train.txt"), train_rows)
    write_split(os.path.join(data_dir, "test.txt"), test_rows)
    write_manifest(data_dir)
    summary = {
        "num_train_images": len(train_rows),
        "num_test_images": len(test_rows),
        "num_train_classes": len({c for _, c, _ in train_rows}),
        "num_test_classes": len({c for _, c, _ in test_rows}),
    }
    logger.info("%s in %s: %s", name, data_dir, summary)
    return summary
