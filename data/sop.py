"""Stanford Online Products: its file layout, its split, and its preparation.

Oh Song, Xiang, Jegelka, Savarese, "Deep Metric Learning via Lifted Structured Feature
Embedding", CVPR 2016 (arXiv:1511.06452). 120,053 images of 22,634 products in 12 categories.

Layout (the archive ``Stanford_Online_Products.zip`` unpacks into a
``Stanford_Online_Products/`` folder)::

    Ebay_train.txt    image_id class_id super_class_id path     59,551 images, 11,318 classes
    Ebay_test.txt     image_id class_id super_class_id path     60,502 images, 11,316 classes
    bicycle_final/111085122871_0.JPG ...

The label is ``class_id`` (the product); ``super_class_id`` (the category) is not used. The
split is the one the two files give: train classes 1-11,318, test classes 11,319-22,634.
"""

import os

from . import preparation
from .meta import table_rows
from .spec import DatasetSpec, prepare_command

# The original FTP address and its HTTP mirror, the mirror first.
URLS = (
    "http://ftp.cs.stanford.edu/cs/cvgl/Stanford_Online_Products.zip",
    "ftp://cs.stanford.edu/cs/cvgl/Stanford_Online_Products.zip",
)
ARCHIVE = "Stanford_Online_Products.zip"
NESTED_DIR = "Stanford_Online_Products"  # the folder the archive unpacks into
NUM_IMAGES = 120053  # 59,551 train + 60,502 test
TRAIN_LIST = "Ebay_train.txt"
TEST_LIST = "Ebay_test.txt"
HEADER = "image_id class_id super_class_id path"
REQUIRED = (TRAIN_LIST, TEST_LIST)


def read_list(path):
    """``[(image_id, class_id, relpath), ...]`` of ``Ebay_train.txt`` or ``Ebay_test.txt``, in file order.

    ``relpath`` is relative to the folder holding the list.

    Raises
    ------
    ValueError
        One line naming the file and line: wrong header, a line without four fields, a
        non-integer id, or no images at all.
    """
    records = []
    for line_number, fields in table_rows(path, 4, HEADER, header=HEADER):
        try:
            image_id, class_id, _ = (int(text) for text in fields[:3])
        except ValueError:
            raise ValueError(
                "{}:{}: image_id, class_id and super_class_id must be integers, found {!r}".format(
                    path, line_number, " ".join(fields)[:80]
                )
            ) from None
        records.append((image_id, class_id, fields[3]))
    if not records:
        raise ValueError("{} lists no images".format(path))
    return records


def prepare_sop(data_dir, download=True, expected_images=None):
    """Write ``train.txt`` and ``test.txt`` for Stanford Online Products from its ``Ebay_*.txt``.

    Expects ``Ebay_train.txt`` and ``Ebay_test.txt`` (and the image folders they list) in
    ``data_dir`` or in ``data_dir/Stanford_Online_Products``; downloads and extracts
    ``Stanford_Online_Products.zip`` first when they are absent and ``download`` is true. The
    label is the product's ``class_id``. See ``data.sop`` for the layout.

    Parameters
    ----------
    data_dir, download
        See ``DatasetSpec.prepare``.
    expected_images : int, optional
        Required number of listed images, train and test together; default
        ``NUM_IMAGES`` (120,053).

    Returns the counts of ``preparation.write_splits``. A one-line ValueError for: files missing
    and not downloadable (naming each missing file), malformed lists, a wrong image count, a
    class in both splits, or listed images missing on disk.
    """
    command = SPEC.prepare_hint(data_dir)
    sub = preparation.ensure_layout(
        "Stanford Online Products", command, data_dir, REQUIRED, NESTED_DIR, URLS,
        ARCHIVE, download,
    )
    root = os.path.join(data_dir, sub)
    lists = {}
    for which, name in (("train", TRAIN_LIST), ("test", TEST_LIST)):
        records = preparation.read_layout(read_list, os.path.join(root, name))
        lists[which] = [(i, c, os.path.join(sub, p).replace(os.sep, "/")) for i, c, p in records]
    train_rows, test_rows = lists["train"], lists["test"]
    expected_images = NUM_IMAGES if expected_images is None else int(expected_images)
    if len(train_rows) + len(test_rows) != expected_images:
        raise ValueError(
            "{} and {} in {} list {} + {} images, Stanford Online Products has {}; the files "
            "are incomplete or another dataset's: extract {} again and re-run '{}'".format(
                TRAIN_LIST, TEST_LIST, root, len(train_rows), len(test_rows),
                expected_images, ARCHIVE, command,
            )
        )
    shared = sorted({c for _, c, _ in train_rows} & {c for _, c, _ in test_rows})
    if shared:
        raise ValueError(
            "{} class id(s) appear in both {} and {} (first: {}); the lists are not SOP's".format(
                len(shared), os.path.join(root, TRAIN_LIST), os.path.join(root, TEST_LIST),
                shared[:3],
            )
        )
    for which, name in (("train", TRAIN_LIST), ("test", TEST_LIST)):
        preparation.check_images_present(lists[which], data_dir, os.path.join(root, name), command)
    return preparation.write_splits(data_dir, train_rows, test_rows, "Stanford Online Products")


SPEC = DatasetSpec(
    name="sop",
    default_data_dir="./data/Stanford_Online_Products",
    prepare_command=prepare_command("sop"),
    aliases=("stanford_online_products", "online_products"),
    default_recallk=(1, 10, 100, 1000),
    prepare=prepare_sop,
    description="Stanford Online Products (120,053 images, 22,634 classes; Ebay_train.txt / Ebay_test.txt)",
)
