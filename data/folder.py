"""The user's own images, one folder per class: no split files, no prepare step.

Layout::

    DIR/train/<class>/*.jpg      training classes
    DIR/test/<class>/*.jpg       test classes (other classes than train's, unless --seen_classes=True)

``.jpg``, ``.jpeg`` and ``.png`` files are taken, in any letter case; other files and hidden
entries (names starting with '.') are ignored. Within a split, classes are sorted by folder
name and numbered from 0 in that order, and images are sorted by file name; the split is
built in memory on every run.
"""

import os

import numpy as np

from .spec import DatasetSpec

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "test")
LAYOUT_HINT = (
    "arrange the images as {data_dir}/train/<class>/*.jpg and {data_dir}/test/<class>/*.jpg "
    "(jpg, jpeg or png)"
)


def _is_image(name):
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def read_folder_split(data_dir, which):
    """Images and labels of ``data_dir/which/<class>/*``.

    Parameters
    ----------
    data_dir : str
        The dataset directory.
    which : {'train', 'test'}
        The split.

    Returns
    -------
    paths : list of str
        Absolute image paths, class by class (classes sorted by name), files sorted by name.
    labels : numpy.ndarray
        int32 class numbers, 0 for the first class by name, shape (N,).

    Raises
    ------
    ValueError
        One line naming the path: the split folder is missing, holds no class folder, holds
        images outside a class folder, or a class folder holds no image.
    """
    if which not in SPLITS:
        raise ValueError("split must be one of {}, got {!r}".format(SPLITS, which))
    split_dir = os.path.join(os.path.abspath(data_dir), which)
    hint = LAYOUT_HINT.format(data_dir=data_dir)
    if not os.path.isdir(split_dir):
        raise ValueError("{} does not exist; {}".format(split_dir, hint))
    classes = _class_folders(split_dir)
    loose = [name for name in sorted(os.listdir(split_dir)) if name not in classes and _is_image(name)]
    if loose:
        raise ValueError(
            "{} holds {} image(s) outside a class folder (first: {}); {}".format(
                split_dir, len(loose), loose[0], hint
            )
        )
    if not classes:
        raise ValueError("{} holds no class folder; {}".format(split_dir, hint))
    paths, labels = [], []
    for label, name in enumerate(classes):
        class_dir = os.path.join(split_dir, name)
        files = sorted(
            f for f in os.listdir(class_dir) if _is_image(f) and os.path.isfile(os.path.join(class_dir, f))
        )
        if not files:
            raise ValueError(
                "class folder {} holds no image (.jpg, .jpeg or .png); remove it or add "
                "images".format(class_dir)
            )
        paths.extend(os.path.join(class_dir, f) for f in files)
        labels.extend([label] * len(files))
    return paths, np.asarray(labels, dtype=np.int32)


def _class_folders(split_dir):
    """The class folders of a split folder, sorted by name: the order of their labels."""
    return sorted(name for name in os.listdir(split_dir)
                  if not name.startswith(".") and os.path.isdir(os.path.join(split_dir, name)))


def folder_class_names(data_dir, which):
    """Class folder names of a split, in label order (label ``k`` is entry ``k``)."""
    return _class_folders(os.path.join(data_dir, which))


SPEC = DatasetSpec(
    name="folder",
    default_data_dir=None,
    prepare_command=None,
    layout_hint=LAYOUT_HINT,
    read_split=read_folder_split,
    class_names=folder_class_names,
    description="your own images: DIR/train/<class>/*.jpg and DIR/test/<class>/*.jpg",
)
