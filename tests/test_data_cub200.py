"""CUB-200-2011 preparation (data/cub200.py, data/prepare.py) on small trees in the real layout.

The network is never touched: downloads are replaced by a failing stub.
"""

import os
import tarfile

import cv2
import numpy as np
import pytest

from data import DATASETS, build_loaders, cub200, prepare, resolve_dataset
from data.meta import read_split


def _fake_cub(root, classes=6, per_class=2, skip_label_of=None):
    """A CUB tree: images/NNN.Bird_N/Bird_N_K.jpg, images.txt, image_class_labels.txt."""
    image_lines, label_lines = [], []
    image_id = 0
    for class_id in range(1, classes + 1):
        folder = "{:03d}.Bird_{}".format(class_id, class_id)
        os.makedirs(os.path.join(root, "images", folder), exist_ok=True)
        for k in range(per_class):
            image_id += 1
            relpath = "{}/Bird_{}_{:04d}.jpg".format(folder, class_id, k)
            cv2.imwrite(os.path.join(root, "images", relpath), np.full((10, 12, 3), 20 * class_id + k, np.uint8))
            image_lines.append("{} {}".format(image_id, relpath))
            if image_id != skip_label_of:
                label_lines.append("{} {}".format(image_id, class_id))
    with open(os.path.join(root, cub200.IMAGES_LIST), "w") as handle:
        handle.write("\n".join(image_lines) + "\n")
    with open(os.path.join(root, cub200.LABELS_LIST), "w") as handle:
        handle.write("\n".join(label_lines) + "\n")
    return image_id



def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, "one 'error:' line expected, got {!r}".format(err)
    assert "Traceback" not in err, "no traceback: {!r}".format(err)
    return err


def test_split_files_follow_the_class_rule(tmp_path):
    data_dir = str(tmp_path / "CUB_200_2011")
    count = _fake_cub(data_dir, classes=6, per_class=2)
    summary = prepare.prepare_cub200(data_dir, download=False, expected_images=count, num_train_classes=3)
    assert summary == {
        "num_train_images": 6,
        "num_test_images": 6,
        "num_train_classes": 3,
        "num_test_classes": 3,
    }, "summary {}".format(summary)
    train_paths, train_labels = read_split(os.path.join(data_dir, "train.txt"), data_dir)
    test_paths, test_labels = read_split(os.path.join(data_dir, "test.txt"), data_dir)
    assert train_labels.tolist() == [1, 1, 2, 2, 3, 3], "classes 1-3 train, got {}".format(train_labels)
    assert test_labels.tolist() == [4, 4, 5, 5, 6, 6], "classes 4-6 test, got {}".format(test_labels)
    assert all(os.path.isfile(p) for p in train_paths + test_paths), "split paths must point at the images"
    line = open(os.path.join(data_dir, "test.txt")).read().splitlines()[1]
    assert line == "7 4 0 images/004.Bird_4/Bird_4_0000.jpg", "image id, class id, 0, path; got {!r}".format(line)


def test_default_rule_is_1_to_100_train(tmp_path):
    data_dir = str(tmp_path / "cub")
    _fake_cub(data_dir, classes=2, per_class=1)
    # Relabel the two classes as 100 and 101: the boundary of the real split.
    with open(os.path.join(data_dir, cub200.LABELS_LIST), "w") as handle:
        handle.write("1 100\n2 101\n")
    summary = prepare.prepare_cub200(data_dir, download=False, expected_images=2)
    assert (summary["num_train_images"], summary["num_test_images"]) == (1, 1), "100 train, 101 test: {}".format(
        summary
    )
    assert cub200.NUM_IMAGES == 11788 and cub200.NUM_TRAIN_CLASSES == 100, "real constants"


def test_nested_layout_and_loaders(tmp_path):
    data_dir = str(tmp_path / "data")
    count = _fake_cub(os.path.join(data_dir, "CUB_200_2011"), classes=4, per_class=3)
    prepare.prepare_cub200(data_dir, download=False, expected_images=count, num_train_classes=2)
    line = open(os.path.join(data_dir, "train.txt")).read().splitlines()[1]
    assert line == "1 1 0 CUB_200_2011/images/001.Bird_1/Bird_1_0000.jpg", "nested root kept in paths: {!r}".format(
        line
    )
    _, test_loader, info = build_loaders("cub200", data_dir, 16, batch_size=4, num_instances=2, num_workers=0)
    assert info.test_labels.tolist() == [3, 3, 3, 4, 4, 4], "test labels {}".format(info.test_labels)
    assert info.dataset.default_recallk == (1, 2, 4, 8), "CUB ranks 1,2,4,8"
    images, labels = next(iter(test_loader))
    assert images.shape == (4, 16, 16, 3), "test batch shape {}".format(images.shape)


def test_registry_and_cli(tmp_path, monkeypatch, capsys):
    assert resolve_dataset("CUB") is DATASETS["cub200"], "alias cub"
    assert DATASETS["cub200"].default_data_dir == "./data/CUB_200_2011", "default directory"
    data_dir = str(tmp_path / "cub")
    monkeypatch.setattr(cub200, "NUM_IMAGES", _fake_cub(data_dir, classes=6, per_class=1))
    monkeypatch.setattr(cub200, "NUM_TRAIN_CLASSES", 3)
    assert prepare.main(["cub200", "--data_dir", data_dir]) == 0, "prepare should succeed"
    out = capsys.readouterr().out
    assert "wrote" in out and "'num_test_classes': 3" in out, "success is reported: {!r}".format(out)


def test_wrong_count_is_one_line(tmp_path, capsys):
    data_dir = str(tmp_path / "cub")
    _fake_cub(data_dir)
    assert prepare.main(["cub200", "--data_dir", data_dir]) == 2, "12 images instead of 11,788 must exit 2"
    err = _one_line_error(capsys)
    assert "lists 12 images, CUB-200-2011 has 11788" in err, err
    assert not os.path.exists(os.path.join(data_dir, "train.txt")), "no split written on error"


def test_missing_files_are_named(tmp_path, capsys, no_network):
    data_dir = str(tmp_path / "cub")
    _fake_cub(data_dir)
    os.remove(os.path.join(data_dir, cub200.LABELS_LIST))
    assert prepare.main(["cub200", "--data_dir", data_dir, "--no_download"]) == 2, "must exit 2"
    err = _one_line_error(capsys)
    assert os.path.join(data_dir, "image_class_labels.txt") in err, "names the missing file: " + err
    assert os.path.join(data_dir, "images.txt") not in err, "present files are not listed: " + err
    assert not no_network, "--no_download must not try the network"


def test_offline_names_everything(tmp_path, capsys, no_network):
    data_dir = str(tmp_path / "empty")
    assert prepare.main(["cub200", "--data_dir", data_dir]) == 2, "offline must exit 2"
    err = _one_line_error(capsys)
    for entry in ("images.txt", "image_class_labels.txt", "images/"):
        assert os.path.join(data_dir, entry) in err, "{} must be named: {}".format(entry, err)
    assert "CUB_200_2011.tgz" in err and "download failed" in err, "says what to download: " + err
    assert no_network == [cub200.URL], "one (faked) download attempt, got {}".format(no_network)


def test_local_archive_is_extracted_without_download(tmp_path, no_network):
    source = tmp_path / "src"
    count = _fake_cub(str(source / "CUB_200_2011"), classes=4, per_class=1)
    data_dir = tmp_path / "cub"
    data_dir.mkdir()
    with tarfile.open(str(data_dir / cub200.ARCHIVE), "w:gz") as tar:
        tar.add(str(source / "CUB_200_2011"), arcname="CUB_200_2011")
    summary = prepare.prepare_cub200(str(data_dir), download=False, expected_images=count, num_train_classes=2)
    assert summary["num_test_images"] == 2 and not no_network, "archive unpacked offline: {}".format(summary)
    assert os.path.isfile(str(data_dir / "CUB_200_2011" / "images.txt")), "unpacked into data_dir"


def test_corrupt_archive_is_reported(tmp_path):
    data_dir = tmp_path / "cub"
    data_dir.mkdir()
    (data_dir / cub200.ARCHIVE).write_bytes(b"<html>not a tarball</html>")
    with pytest.raises(ValueError, match="cannot extract .*CUB_200_2011.tgz.*delete it"):
        prepare.prepare_cub200(str(data_dir), download=False)


@pytest.mark.parametrize(
    "break_tree, message",
    [
        (lambda root: os.remove(os.path.join(root, "images/002.Bird_2/Bird_2_0001.jpg")),
         r"1 of 12 images listed in .*images.txt are missing .*Bird_2_0001.jpg"),
        (lambda root: _fake_cub(root, skip_label_of=5), r"disagree: 1 image id\(s\) without a class \(first: \[5\]\)"),
        (lambda root: open(os.path.join(root, "images.txt"), "a").write("13 a b\n"),
         r"images.txt:13: expected 2 fields"),
    ],
)
def test_bad_trees_are_one_line(tmp_path, break_tree, message):
    data_dir = str(tmp_path / "cub")
    _fake_cub(data_dir)
    break_tree(data_dir)
    with pytest.raises(ValueError, match=message) as info:
        prepare.prepare_cub200(data_dir, download=False, expected_images=12, num_train_classes=3)
    assert "\n" not in str(info.value), "one line: {!r}".format(str(info.value))
