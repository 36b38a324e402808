"""The folder dataset (data/folder.py): DIR/train/<class>/*.jpg and DIR/test/<class>/*.jpg in memory."""

import os

import cv2
import numpy as np
import pytest

from data import DATASETS, build_loaders, build_test_loader, load_split
from data.folder import read_folder_split


def _image(path, value=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, np.full((10, 14, 3), value, np.uint8)), "could not write {}".format(path)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "mine"
    layout = {
        "train": {"dog": ["b.jpg", "a.PNG"], "cat": ["x.jpeg", "y.JPG", "z.png"], "eel": ["1.jpg", "2.jpg"]},
        "test": {"owl": ["o1.jpg", "o2.png"], "cow": ["c1.jpg", "c2.jpg", "c3.jpeg"]},
    }
    for split, classes in layout.items():
        for name, files in classes.items():
            for i, file_name in enumerate(files):
                _image(str(root / split / name / file_name), 30 * i)
    (root / "train" / "dog" / "notes.txt").write_text("not an image")
    (root / "train" / "dog" / ".hidden.jpg").write_text("ignored")
    (root / "train" / "README").write_text("a stray file that is not an image is ignored")
    return str(root)


def test_classes_sorted_by_name_and_images_by_file(tree):
    paths, labels = read_folder_split(tree, "train")
    names = [os.path.relpath(p, tree) for p in paths]
    assert names == [
        "train/cat/x.jpeg", "train/cat/y.JPG", "train/cat/z.png",
        "train/dog/a.PNG", "train/dog/b.jpg",
        "train/eel/1.jpg", "train/eel/2.jpg",
    ], "classes by name, files by name, jpg/jpeg/png in any case: {}".format(names)
    assert labels.dtype == np.int32 and labels.tolist() == [0, 0, 0, 1, 1, 2, 2], "labels {}".format(labels)
    assert all(os.path.isabs(p) for p in paths), "absolute paths"


def test_loaders_and_ranks(tree):
    train_loader, test_loader, info = build_loaders("folder", tree, 16, batch_size=4, num_instances=2,
                                                    num_workers=0)
    assert (info.num_train_images, info.num_train_classes) == (7, 3), "train counts {}".format(info)
    assert info.test_labels.tolist() == [0, 0, 0, 1, 1], "cow before owl: {}".format(info.test_labels)
    images, labels = next(iter(test_loader))
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.uint8, "test batch {}".format(images.shape)
    assert DATASETS["folder"].default_recallk == (1, 2, 4, 8), "folder ranks"
    loader, test_info = build_test_loader("folder", tree, 16, batch_size=5, num_workers=0)
    assert np.array_equal(test_info.test_labels, info.test_labels), "same test split"


def test_test_split_alone_is_enough_for_evaluation(tree):
    import shutil

    shutil.rmtree(os.path.join(tree, "train"))
    _, info = build_test_loader("folder", tree, 16, batch_size=5, num_workers=0)
    assert info.num_test_images == 5, "evaluation reads only test/"
    with pytest.raises(ValueError, match="train does not exist"):
        build_loaders("folder", tree, 16, 4, 2, 0)


@pytest.mark.parametrize(
    "break_tree, message",
    [
        (lambda root: os.makedirs(os.path.join(root, "test", "empty")), r"class folder .*test/empty holds no image"),
        (lambda root: _image(os.path.join(root, "train", "loose.jpg")),
         r"train holds 1 image\(s\) outside a class folder \(first: loose.jpg\)"),
        (lambda root: os.rename(os.path.join(root, "test"), os.path.join(root, "tests")),
         r"mine/test does not exist; arrange the images as .*/test/<class>/\*.jpg"),
    ],
)
def test_bad_layouts_are_one_line(tree, break_tree, message):
    break_tree(tree)
    with pytest.raises(ValueError, match=message) as info:
        build_loaders("folder", tree, 16, 4, 2, 0)
    assert "\n" not in str(info.value), "one line: {!r}".format(str(info.value))


def test_no_class_folder_and_no_directory(tmp_path):
    (tmp_path / "d" / "train").mkdir(parents=True)
    (tmp_path / "d" / "test").mkdir()
    with pytest.raises(ValueError, match=r"d/train holds no class folder"):
        load_split("folder", str(tmp_path / "d"), "train")
    with pytest.raises(ValueError, match=r"folder dataset has no default directory; pass --data_dir"):
        build_loaders("folder", None, 16, 4, 2, 0)
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"data directory .*nowhere does not exist; arrange the images as"):
        build_test_loader("folder", missing, 16, 4, 0)


def _test_classes_also_trained(tree, *names):
    for name in names:
        _image(os.path.join(tree, "test", name, "t1.jpg"))
        _image(os.path.join(tree, "test", name, "t2.jpg"))


def test_unseen_test_classes_are_recorded_as_none(tree):
    _, _, info = build_loaders("folder", tree, 16, batch_size=4, num_instances=2, num_workers=0)
    assert info.seen_test_classes == [], "train and test share no folder name: {}".format(info)


def test_test_classes_that_are_training_classes_are_refused_in_one_line(tree):
    _test_classes_also_trained(tree, "dog", "cat")
    with pytest.raises(ValueError) as error:
        build_loaders("folder", tree, 16, batch_size=4, num_instances=2, num_workers=0)
    message = str(error.value)
    assert "\n" not in message, "one line: {!r}".format(message)
    for part in ("2 of the 4 test classes", tree, "cat, dog", "zero-shot", "--seen_classes=True"):
        assert part in message, "the message names {!r}: {}".format(part, message)


def test_the_seen_class_protocol_is_taken_when_asked_and_named(tree, caplog):
    _test_classes_also_trained(tree, "eel")
    caplog.set_level("WARNING")
    _, _, info = build_loaders("folder", tree, 16, batch_size=4, num_instances=2, num_workers=0,
                               seen_classes=True)
    assert info.seen_test_classes == ["eel"], "the shared folder name: {}".format(info.seen_test_classes)
    warned = [r.getMessage() for r in caplog.records if "also training classes" in r.getMessage()]
    assert len(warned) == 1 and "eel" in warned[0] and "seen-class" in warned[0], caplog.text


def test_a_split_file_dataset_sharing_class_ids_is_refused_too(tmp_path):
    from data.meta import write_split

    root = tmp_path / "cars"
    rows = []
    for image_id, class_id in enumerate((1, 1, 2, 2, 3, 3, 7, 7), start=1):
        _image(str(root / "im" / "{}.jpg".format(image_id)))
        rows.append((image_id, class_id, "im/{}.jpg".format(image_id)))
    write_split(str(root / "train.txt"), rows[:6])
    write_split(str(root / "test.txt"), rows[4:])  # class 3 in both
    with pytest.raises(ValueError, match=r"1 of the 2 test classes .* \(class id\(s\) 3\)"):
        build_loaders("cars196", str(root), 16, batch_size=4, num_instances=2, num_workers=0)
    _, _, info = build_loaders("cars196", str(root), 16, batch_size=4, num_instances=2, num_workers=0,
                               seen_classes=True)
    assert info.seen_test_classes == ["3"], "class ids as strings: {}".format(info.seen_test_classes)
