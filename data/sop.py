"""Stanford Online Products: its file layout and split (downloading is in ``prepare``).

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
    with open(path, "r", encoding="utf-8") as handle:
        header = handle.readline()
        if header.split() != HEADER.split():
            raise ValueError(
                "{}:1: expected the header '{}', found {!r}".format(path, HEADER, header.strip()[:80])
            )
        for line_number, line in enumerate(handle, start=2):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 4:
                raise ValueError(
                    "{}:{}: expected 4 fields ({}), found {} in {!r}".format(
                        path, line_number, HEADER, len(fields), line.strip()[:80]
                    )
                )
            try:
                image_id, class_id, _ = (int(text) for text in fields[:3])
            except ValueError:
                raise ValueError(
                    "{}:{}: image_id, class_id and super_class_id must be integers, found {!r}".format(
                        path, line_number, line.strip()[:80]
                    )
                ) from None
            records.append((image_id, class_id, fields[3]))
    if not records:
        raise ValueError("{} lists no images".format(path))
    return records
