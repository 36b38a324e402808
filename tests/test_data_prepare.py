"""CARS196 preparation from cars_annos.mat (data/prepare.py); never touches the network."""

import os

import cv2
import numpy as np
import pytest
import scipy.io

from data import cars196, prepare
from data.meta import read_split


def _fake_cars(data_dir, classes=(1, 1, 2, 98, 99, 150, 196), write_images=True):
    os.makedirs(os.path.join(data_dir, "car_ims"), exist_ok=True)
    annotations = np.zeros(
        (1, len(classes)), dtype=[("relative_im_path", "O"), ("class", "O"), ("test", "O")]
    )
    for i, class_id in enumerate(classes):
        relpath = "car_ims/{:06d}.jpg".format(i + 1)
        annotations[0, i] = (relpath, np.array([[class_id]], np.uint8), np.array([[i % 2]], np.uint8))
        if write_images:
            image = np.full((12, 16, 3), 10 * i, np.uint8)
            cv2.imwrite(os.path.join(data_dir, relpath), image)
    scipy.io.savemat(os.path.join(data_dir, "cars_annos.mat"), {"annotations": annotations})
    return len(classes)



def test_split_files_from_fake_mat(tmp_path):
    data_dir = str(tmp_path / "CARS_196")
    count = _fake_cars(data_dir)
    summary = prepare.prepare_cars196(data_dir, expected_images=count)
    assert summary == {
        "num_train_images": 4,
        "num_test_images": 3,
        "num_train_classes": 3,
        "num_test_classes": 3,
    }, "summary {}".format(summary)
    train_paths, train_labels = read_split(os.path.join(data_dir, "train.txt"), data_dir)
    test_paths, test_labels = read_split(os.path.join(data_dir, "test.txt"), data_dir)
    assert train_labels.tolist() == [1, 1, 2, 98], "train holds classes 1-98, got {}".format(train_labels)
    assert test_labels.tolist() == [99, 150, 196], "test holds classes 99-196, got {}".format(test_labels)
    assert train_paths[0].endswith("car_ims/000001.jpg") and test_paths[0].endswith(
        "car_ims/000005.jpg"
    ), "paths"
    line = open(os.path.join(data_dir, "test.txt")).read().splitlines()[1]
    assert line == "5 99 0 car_ims/000005.jpg", "image ids are 1-based annotation order, got {!r}".format(
        line
    )


def test_cli_success(tmp_path, monkeypatch, capsys):
    data_dir = str(tmp_path / "cars")
    monkeypatch.setattr(cars196, "CARS196_NUM_IMAGES", _fake_cars(data_dir))
    assert prepare.main(["cars196", "--data_dir", data_dir]) == 0, "prepare should succeed"
    assert "wrote" in capsys.readouterr().out, "success should be reported"


def test_wrong_count_is_reported(tmp_path, capsys):
    data_dir = str(tmp_path / "cars")
    _fake_cars(data_dir)
    assert prepare.main(["cars196", "--data_dir", data_dir]) == 2, "7 images instead of 16,185 must exit 2"
    err = capsys.readouterr().err.strip()
    assert "lists 7 images, CARS196 has 16185" in err and "\n" not in err, "got {!r}".format(err)


def test_missing_images_listed(tmp_path, monkeypatch, capsys):
    data_dir = str(tmp_path / "cars")
    monkeypatch.setattr(cars196, "CARS196_NUM_IMAGES", _fake_cars(data_dir))
    os.remove(os.path.join(data_dir, "car_ims", "000002.jpg"))
    assert prepare.main(["cars196", "--data_dir", data_dir]) == 2, "missing image must exit 2"
    err = capsys.readouterr().err.strip()
    assert "1 of 7 annotated images are missing" in err and "car_ims/000002.jpg" in err, "got {!r}".format(
        err
    )
    assert "\n" not in err and not os.path.exists(os.path.join(data_dir, "train.txt")), "one line, no split"


def test_offline_download_fails_fast_with_instructions(tmp_path, capsys, no_network):
    data_dir = str(tmp_path / "empty")
    assert prepare.main(["cars196", "--data_dir", data_dir]) == 2, "offline must exit 2"
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, "one line without traceback, got {!r}".format(err)
    assert "car_ims.tgz" in err and "cars_annos.mat" in err and data_dir in err, (
        "must say what goes where: " + err
    )
    assert no_network and len(no_network) == 1, "exactly one (faked) download attempt, got {}".format(
        no_network
    )


def test_no_download_flag(tmp_path, capsys, no_network):
    assert prepare.main(["cars196", "--data_dir", str(tmp_path), "--no_download"]) == 2, "must exit 2"
    assert not no_network, "--no_download must not try the network"
    assert "CARS196 files missing" in capsys.readouterr().err, "should explain what is missing"


def test_real_downloader_fails_fast_offline(tmp_path, monkeypatch):
    # The real download_file against an unroutable local port: error, no partial file.
    monkeypatch.undo()
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    destination = str(tmp_path / "x.bin")
    with pytest.raises(prepare.DownloadError):
        prepare.download_file("http://127.0.0.1:{}/x".format(port), destination, timeout=2)
    assert not os.path.exists(destination) and not os.path.exists(destination + ".part"), "no leftovers"


def test_an_empty_data_dir_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        prepare.main(["cars196", "--data_dir", ""])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "\n" not in err, "one line, exit 2: {!r}".format(err)
    assert "argument --data_dir: an empty path names no file or folder" in err, err
