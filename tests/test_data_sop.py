"""Stanford Online Products preparation (data/sop.py, data/prepare.py) on small trees in the real
layout, and the loaders at the real test-split size. The network is never touched."""

import os
import zipfile

import cv2
import numpy as np
import pytest

from data import DATASETS, build_loaders, build_test_loader, prepare, resolve_dataset, sop
from data.meta import read_split


def _fake_sop(root, train_classes=3, test_classes=3, per_class=2, write_images=True):
    """Ebay_train.txt / Ebay_test.txt with their header and the images they list."""
    counts = {}
    class_id = 0
    for which, classes, name in (("train", train_classes, sop.TRAIN_LIST), ("test", test_classes, sop.TEST_LIST)):
        lines = [sop.HEADER]
        image_id = 0
        for _ in range(classes):
            class_id += 1
            category = ("bicycle", "chair", "mug")[class_id % 3]
            for k in range(per_class):
                image_id += 1
                relpath = "{}_final/{}_{}.JPG".format(category, 111000 + class_id, k)
                if write_images:
                    os.makedirs(os.path.join(root, os.path.dirname(relpath)), exist_ok=True)
                    cv2.imwrite(os.path.join(root, relpath), np.full((10, 12, 3), class_id + k, np.uint8))
                lines.append("{} {} {} {}".format(image_id, class_id, class_id % 3 + 1, relpath))
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, name), "w") as handle:
            handle.write("\n".join(lines) + "\n")
        counts[which] = image_id
    return counts["train"] + counts["test"]



def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, "one 'error:' line expected, got {!r}".format(err)
    assert "Traceback" not in err, "no traceback: {!r}".format(err)
    return err


def test_split_files_keep_class_ids(tmp_path):
    data_dir = str(tmp_path / "Stanford_Online_Products")
    count = _fake_sop(data_dir, train_classes=3, test_classes=2, per_class=2)
    summary = prepare.prepare_sop(data_dir, download=False, expected_images=count)
    assert summary == {
        "num_train_images": 6,
        "num_test_images": 4,
        "num_train_classes": 3,
        "num_test_classes": 2,
    }, "summary {}".format(summary)
    _, train_labels = read_split(os.path.join(data_dir, "train.txt"), data_dir)
    test_paths, test_labels = read_split(os.path.join(data_dir, "test.txt"), data_dir)
    assert train_labels.tolist() == [1, 1, 2, 2, 3, 3], "label = class_id, got {}".format(train_labels)
    assert test_labels.tolist() == [4, 4, 5, 5], "label = class_id, got {}".format(test_labels)
    line = open(os.path.join(data_dir, "test.txt")).read().splitlines()[1]
    assert line == "1 4 0 chair_final/111004_0.JPG", "image id, class id, 0, path (super class dropped): {!r}".format(
        line
    )
    assert all(os.path.isfile(p) for p in test_paths), "paths point at the images"


def test_registry_ranks_and_loaders(tmp_path):
    assert resolve_dataset("stanford-online-products") is DATASETS["sop"], "alias"
    spec = DATASETS["sop"]
    assert spec.default_recallk == (1, 10, 100, 1000), "SOP ranks 1,10,100,1000, got {}".format(spec.default_recallk)
    assert spec.default_data_dir == "./data/Stanford_Online_Products", "default directory"
    data_dir = str(tmp_path / "sop")
    prepare.prepare_sop(data_dir, download=False, expected_images=_fake_sop(data_dir, per_class=2))
    _, test_loader, info = build_loaders("sop", data_dir, 16, batch_size=4, num_instances=2, num_workers=0)
    assert info.test_labels.tolist() == [4, 4, 5, 5, 6, 6], "test labels {}".format(info.test_labels)
    labels = np.concatenate([batch[1].asnumpy() for batch in test_loader])
    assert np.array_equal(labels, info.test_labels), "loader order = info.test_labels"


def test_a_test_split_of_the_real_size_is_read_whole(tmp_path):
    # 60,502 test images of 11,316 classes (empty files: only existence is checked). How long it
    # takes is not asserted: that is the machine's load, not the code's.
    data_dir = str(tmp_path / "sop")
    folder = os.path.join(data_dir, "bicycle_final")
    os.makedirs(folder)
    per_class = np.full(11316, 5)
    per_class[: 60502 - 5 * 11316] += 1
    labels = np.repeat(np.arange(11319, 11319 + 11316), per_class)
    lines = [sop.HEADER]
    for image_id, class_id in enumerate(labels, start=1):
        relpath = "bicycle_final/{}_{}.JPG".format(class_id, image_id)
        open(os.path.join(data_dir, relpath), "wb").close()
        lines.append("{} {} 1 {}".format(image_id, class_id, relpath))
    with open(os.path.join(data_dir, sop.TEST_LIST), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(data_dir, sop.TRAIN_LIST), "w") as handle:
        handle.write(sop.HEADER + "\n" + "".join("{0} {0} 1 bicycle_final/1_1.JPG\n".format(c) for c in (1, 2)))
    open(os.path.join(folder, "1_1.JPG"), "wb").close()
    summary = prepare.prepare_sop(data_dir, download=False, expected_images=60504)
    assert summary["num_test_images"] == 60502 and summary["num_test_classes"] == 11316, summary
    _, info = build_test_loader("sop", data_dir, 16, batch_size=128, num_workers=0)
    assert np.array_equal(info.test_labels, labels), "test labels must be Ebay_test.txt's class ids"
    assert info.num_test_classes == 11316 and len(info.test_paths) == 60502, "counts"


def test_local_zip_is_extracted_without_download(tmp_path, no_network):
    source = tmp_path / "src" / "Stanford_Online_Products"
    count = _fake_sop(str(source), per_class=1)
    data_dir = tmp_path / "sop"
    data_dir.mkdir()
    with zipfile.ZipFile(str(data_dir / sop.ARCHIVE), "w") as archive:
        for folder, _, files in os.walk(str(source)):
            for name in files:
                path = os.path.join(folder, name)
                archive.write(path, os.path.relpath(path, str(source.parent)))
    summary = prepare.prepare_sop(str(data_dir), download=False, expected_images=count)
    assert summary["num_train_images"] == 3 and not no_network, "zip unpacked offline: {}".format(summary)
    line = open(str(data_dir / "train.txt")).read().splitlines()[1]
    assert line.endswith(" Stanford_Online_Products/chair_final/111001_0.JPG"), "nested paths: {!r}".format(line)


def test_offline_tries_each_url_and_names_files(tmp_path, capsys, no_network):
    data_dir = str(tmp_path / "nothing")
    assert prepare.main(["sop", "--data_dir", data_dir]) == 2, "offline must exit 2"
    err = _one_line_error(capsys)
    for name in (sop.TRAIN_LIST, sop.TEST_LIST):
        assert os.path.join(data_dir, name) in err, "{} must be named: {}".format(name, err)
    assert no_network == list(sop.URLS), "each mirror tried once, got {}".format(no_network)


def test_wrong_count_and_no_download(tmp_path, capsys, no_network):
    data_dir = str(tmp_path / "sop")
    _fake_sop(data_dir)
    assert prepare.main(["sop", "--data_dir", data_dir, "--no_download"]) == 2, "12 images, not 120,053"
    err = _one_line_error(capsys)
    assert "list 6 + 6 images, Stanford Online Products has 120053" in err, err
    os.remove(os.path.join(data_dir, sop.TEST_LIST))
    assert prepare.main(["sop", "--data_dir", data_dir, "--no_download"]) == 2, "missing list must exit 2"
    err = _one_line_error(capsys)
    missing = err.split("files missing: ", 1)[-1].split(";", 1)[0]
    assert missing == os.path.join(data_dir, sop.TEST_LIST), "names exactly what is missing: " + err
    assert not no_network, "--no_download must not try the network"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text.replace(sop.HEADER, "id class path"), r"Ebay_train.txt:1: expected the header"),
        (lambda text: text + "7 9 1\n", r"Ebay_train.txt:8: expected 4 fields"),
        (lambda text: text + "x 9 1 a/b.JPG\n", r"Ebay_train.txt:8: image_id, class_id .* integers"),
        (lambda text: text + "7 4 1 mug_final/111004_0.JPG\n", r"1 class id\(s\) appear in both"),
    ],
)
def test_bad_lists_are_one_line(tmp_path, edit, message):
    data_dir = str(tmp_path / "sop")
    _fake_sop(data_dir)
    path = os.path.join(data_dir, sop.TRAIN_LIST)
    text = open(path).read()
    with open(path, "w") as handle:
        handle.write(edit(text))
    with pytest.raises(ValueError, match=message) as info:
        prepare.prepare_sop(data_dir, download=False, expected_images=13)
    assert "\n" not in str(info.value), "one line: {!r}".format(str(info.value))


def test_missing_image_is_named(tmp_path):
    data_dir = str(tmp_path / "sop")
    count = _fake_sop(data_dir)
    os.remove(os.path.join(data_dir, "bicycle_final/111006_1.JPG"))
    with pytest.raises(ValueError, match=r"1 of 6 images listed in .*Ebay_test.txt are missing .*111006_1.JPG"):
        prepare.prepare_sop(data_dir, download=False, expected_images=count)
