"""CUB-200-2011: its file layout, the metric-learning split, and its preparation.

Wah, Branson, Welinder, Perona, Belongie, "The Caltech-UCSD Birds-200-2011 Dataset",
Caltech technical report CNS-TR-2011-001. 11,788 images of 200 bird species.

Layout (the archive ``CUB_200_2011.tgz`` unpacks into a ``CUB_200_2011/`` folder)::

    images.txt                 <image_id> <path under images/>    one line per image
    image_class_labels.txt     <image_id> <class_id>              class ids 1-200
    images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg ...

Metric-learning split (Oh Song et al., CVPR 2016, the one Embedding Expansion uses): classes
1-100 train (5,864 images), classes 101-200 test (5,924 images). The official
``train_test_split.txt`` (a per-image classification split) is not used.
"""

import os

from . import preparation
from .meta import table_rows
from .spec import DatasetSpec, prepare_command

URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1"
ARCHIVE = "CUB_200_2011.tgz"
NESTED_DIR = "CUB_200_2011"  # the folder the archive unpacks into
NUM_IMAGES = 11788
NUM_TRAIN_CLASSES = 100  # classes 1-100 train, 101-200 test
IMAGES_LIST = "images.txt"
LABELS_LIST = "image_class_labels.txt"
IMAGE_DIR = "images"
# Entries that must exist in the dataset root; a trailing '/' marks a directory.
REQUIRED = (IMAGES_LIST, LABELS_LIST, IMAGE_DIR + "/")


def _read_pairs(path, what):
    """``{int image_id: str value}`` of a two-column file, checking every line."""
    pairs = {}
    rows = table_rows(path, 2, "image_id " + what, suffix="; the file is not CUB-200-2011's")
    for line_number, fields in rows:
        try:
            image_id = int(fields[0])
        except ValueError:
            raise ValueError(
                "{}:{}: image_id {!r} is not an integer".format(path, line_number, fields[0])
            ) from None
        if image_id in pairs:
            raise ValueError("{}:{}: image_id {} appears twice".format(path, line_number, image_id))
        pairs[image_id] = fields[1]
    return pairs


def read_records(root):
    """``[(image_id, class_id, relpath), ...]`` of a CUB-200-2011 root, sorted by image id.

    ``relpath`` is relative to ``root`` (``images/001.Black_footed_Albatross/....jpg``).

    Raises
    ------
    ValueError
        One line naming the file (and line) of a malformed entry, or the image ids that one of
        the two lists has and the other lacks.
    """
    images_path = os.path.join(root, IMAGES_LIST)
    labels_path = os.path.join(root, LABELS_LIST)
    images = _read_pairs(images_path, "path")
    labels = _read_pairs(labels_path, "class_id")
    only_images = sorted(set(images) - set(labels))
    only_labels = sorted(set(labels) - set(images))
    if only_images or only_labels:
        raise ValueError(
            "{} and {} disagree: {} image id(s) without a class (first: {}), {} class line(s) "
            "without an image (first: {})".format(
                images_path, labels_path, len(only_images), only_images[:3], len(only_labels), only_labels[:3]
            )
        )
    records = []
    for image_id in sorted(images):
        text = labels[image_id]
        try:
            class_id = int(text)
        except ValueError:
            raise ValueError(
                "{}: class_id {!r} of image {} is not an integer".format(labels_path, text, image_id)
            ) from None
        if class_id < 1:
            raise ValueError(
                "{}: class_id {} of image {} is not positive".format(labels_path, class_id, image_id)
            )
        records.append((image_id, class_id, "{}/{}".format(IMAGE_DIR, images[image_id])))
    return records


def split_records(records, num_train_classes=NUM_TRAIN_CLASSES):
    """``(train, test)``: classes ``1 .. num_train_classes`` train, the higher classes test."""
    train = [r for r in records if r[1] <= num_train_classes]
    test = [r for r in records if r[1] > num_train_classes]
    return train, test


def prepare_cub200(data_dir, download=True, expected_images=None, num_train_classes=None):
    """Write ``train.txt`` (classes 1-100) and ``test.txt`` (classes 101-200) for CUB-200-2011.

    Expects ``images.txt``, ``image_class_labels.txt`` and ``images/`` in ``data_dir`` or in
    ``data_dir/CUB_200_2011``; downloads and extracts ``CUB_200_2011.tgz`` first when they are
    absent and ``download`` is true. See ``data.cub200`` for the layout.

    Parameters
    ----------
    data_dir, download
        See ``DatasetSpec.prepare``.
    expected_images : int, optional
        Required number of listed images; default ``NUM_IMAGES`` (11,788).
    num_train_classes : int, optional
        Classes ``1 .. num_train_classes`` train, the rest test; default 100.

    Returns the counts of ``preparation.write_splits``. A one-line ValueError for: files missing
    and not downloadable (naming each missing file), malformed lists, a wrong image count,
    listed images missing on disk, or an empty train or test side.
    """
    command = SPEC.prepare_hint(data_dir)
    sub = preparation.ensure_layout(
        "CUB-200-2011", command, data_dir, REQUIRED, NESTED_DIR, (URL,),
        ARCHIVE, download,
    )
    root = os.path.join(data_dir, sub)
    records = preparation.read_layout(read_records, root)
    records = [(i, c, os.path.join(sub, p).replace(os.sep, "/")) for i, c, p in records]
    images_list = os.path.join(root, IMAGES_LIST)
    expected_images = NUM_IMAGES if expected_images is None else int(expected_images)
    if len(records) != expected_images:
        raise ValueError(
            "{} lists {} images, CUB-200-2011 has {}; the files are incomplete or another "
            "dataset's: extract {} again and re-run '{}'".format(
                images_list, len(records), expected_images, ARCHIVE, command
            )
        )
    preparation.check_images_present(records, data_dir, images_list, command)
    num_train_classes = NUM_TRAIN_CLASSES if num_train_classes is None else int(num_train_classes)
    train_rows, test_rows = split_records(records, num_train_classes)
    if not train_rows or not test_rows:
        raise ValueError(
            "{}: expected classes 1-{} (train) and higher (test), found only one side".format(
                os.path.join(root, LABELS_LIST), num_train_classes
            )
        )
    return preparation.write_splits(data_dir, train_rows, test_rows, "CUB-200-2011")


SPEC = DatasetSpec(
    name="cub200",
    default_data_dir="./data/CUB_200_2011",
    prepare_command=prepare_command("cub200"),
    aliases=("cub", "cub_200_2011", "cub200_2011"),
    prepare=prepare_cub200,
    description="CUB-200-2011 (11,788 images, 200 classes; classes 1-100 train, 101-200 test)",
)
