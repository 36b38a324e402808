"""CUB-200-2011: its file layout and the metric-learning split (downloading is in ``prepare``).

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
    with open(path, "r", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise ValueError(
                    "{}:{}: expected 2 fields (image_id {}), found {} in {!r}; the file is not "
                    "CUB-200-2011's".format(path, line_number, what, len(fields), line.strip()[:80])
                )
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
