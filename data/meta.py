"""Split files: the text format that lists the images of a train or test split.

Format (the one the original Embedding Expansion release ships in ``meta/CARS196``)::

    image_id class_id view_id path
    1 1 0 car_ims/000001.jpg
    2 1 0 car_ims/000002.jpg
    ...

The first line is the header ``SPLIT_HEADER``; every other line holds four fields: an integer
image id, an integer class id (the label), an integer view id (we always write 0 and ignore it
when reading), each followed by whitespace, and the image path relative to the data directory:
the rest of the line, so a path may contain spaces (``1 5 0 my cars/a b.jpg``). A path cannot
begin or end with whitespace or hold a line break (the line's ends are stripped).
"""

import logging
import os

import numpy as np

from .spec import prepare_command

logger = logging.getLogger(__name__)

SPLIT_HEADER = "image_id class_id view_id path"

_DEFAULT_FIX_HINT = "re-create it with '{}' (or 'python3 -m data.demo --out DIR' for the demo data)".format(
    prepare_command("cars196").format(data_dir="DIR"))


def write_split(path, rows):
    """Write a split file atomically (a temporary file, then ``os.replace``).

    Parameters
    ----------
    path : str
        Destination file, e.g. ``data/CARS_196/train.txt``. Its directory must exist.
    rows : iterable of (int, int, str)
        ``(image_id, class_id, relpath)`` per image; ``relpath`` is relative to the data
        directory; it may contain spaces, but not begin or end with whitespace or hold a line
        break (the format could not give it back). The view id is always written as 0.

    Returns
    -------
    int
        The number of image lines written.
    """
    lines = [SPLIT_HEADER]
    for image_id, class_id, relpath in rows:
        relpath = str(relpath).replace(os.sep, "/")
        if not relpath or relpath != relpath.strip() or "\n" in relpath or "\r" in relpath:
            raise ValueError(
                "cannot write {}: image path {!r} is empty, begins or ends with whitespace or holds "
                "a line break, which the split format cannot hold; rename the file".format(path, relpath)
            )
        lines.append("{:d} {:d} 0 {}".format(int(image_id), int(class_id), relpath))
    tmp_path = "{}.tmp{}".format(path, os.getpid())
    with open(tmp_path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp_path, path)
    logger.debug("wrote %d images to %s", len(lines) - 1, path)
    return len(lines) - 1


def _check_ids(fields, split_path, line_number, hint):
    """The three ids of a split line are integers; one line naming the field otherwise."""
    for field_name, text in zip(("image_id", "class_id", "view_id"), fields[:3]):
        try:
            int(text)
        except ValueError:
            raise ValueError(
                "{}:{}: {} {!r} is not an integer; {}".format(split_path, line_number, field_name, text, hint)
            ) from None


def table_rows(path, num_fields, columns, header=None, header_suffix="", suffix="", last_takes_rest=False):
    """``(line_number, fields)`` of every non-empty line of a whitespace-separated table file.

    When ``header`` is given, the first line must be it. Every other line must have ``num_fields``
    fields; ``columns`` names them in the error. With ``last_takes_rest`` the last field is the
    rest of the line (the split format's path, which may hold spaces), so a line needs at least
    ``num_fields`` fields. Errors are one line, ``PATH:LINE: ...``, ending with ``header_suffix`` /
    ``suffix`` (what the file is, how to re-create it).
    """
    with open(path, "r", encoding="utf-8") as handle:
        first = 1
        if header is not None:
            found = handle.readline()
            if found.split() != header.split():
                raise ValueError("{}:1: expected the header '{}', found {!r}{}".format(
                    path, header, found.strip()[:80], header_suffix))
            first = 2
        for line_number, line in enumerate(handle, start=first):
            fields = line.split()
            if not fields:
                continue
            if last_takes_rest:
                fields = line.strip().split(None, num_fields - 1)
            if len(fields) != num_fields:
                raise ValueError("{}:{}: expected {} fields ({}), found {} in {!r}{}".format(
                    path, line_number, num_fields, columns, len(fields), line.strip()[:80], suffix))
            yield line_number, fields


def read_split(split_path, data_dir, fix_hint=None):
    """Read a split file.

    Parameters
    ----------
    split_path : str
        The split file (``train.txt`` or ``test.txt``).
    data_dir : str
        Directory the relative image paths are joined to.
    fix_hint : str, optional
        How to re-create the file, appended to error messages (e.g. the prepare command of
        the dataset). A generic hint is used when omitted.

    Returns
    -------
    paths : list of str
        Absolute image paths, in file order.
    labels : numpy.ndarray
        int32 class ids, shape (N,).

    Raises
    ------
    ValueError
        One line naming the file, the line number and the problem when the file is missing,
        has no header, has a line of fewer than four fields, a non-integer id, or no images.
    """
    hint = fix_hint or _DEFAULT_FIX_HINT
    if not os.path.isfile(split_path):
        raise ValueError("split file {} does not exist; {}".format(split_path, hint))
    data_root = os.path.abspath(data_dir)
    paths, labels = [], []
    rows = table_rows(split_path, 4, "image_id class_id view_id path", header=SPLIT_HEADER,
                      header_suffix="; the file is not a split file or is truncated, " + hint,
                      suffix="; " + hint, last_takes_rest=True)
    for line_number, fields in rows:
        _check_ids(fields, split_path, line_number, hint)
        labels.append(int(fields[1]))
        paths.append(os.path.join(data_root, fields[3]))
    if not paths:
        raise ValueError("split file {} lists no images; {}".format(split_path, hint))
    return paths, np.asarray(labels, dtype=np.int32)
