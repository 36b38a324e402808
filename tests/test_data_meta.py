"""Split-file reading and writing (data/meta.py)."""

import os

import numpy as np
import pytest

from data.meta import SPLIT_HEADER, read_split, write_split


def test_round_trip(tmp_path):
    split = str(tmp_path / "train.txt")
    rows = [(1, 1, "car_ims/000001.jpg"), (2, 1, "car_ims/000002.jpg"), (3, 98, "car_ims/000003.jpg")]
    assert write_split(split, rows) == 3, "write_split should report the number of image lines"
    lines = open(split).read().splitlines()
    assert lines[0] == SPLIT_HEADER, "first line must be the header, got {!r}".format(lines[0])
    assert lines[1] == "1 1 0 car_ims/000001.jpg", "row format is 'id class 0 path', got {!r}".format(
        lines[1]
    )
    paths, labels = read_split(split, str(tmp_path))
    assert paths == [os.path.join(str(tmp_path), r[2]) for r in rows], "paths must be data_dir-joined"
    assert all(os.path.isabs(p) for p in paths), "paths must be absolute"
    assert labels.dtype == np.int32, "labels must be int32, got {}".format(labels.dtype)
    assert labels.tolist() == [1, 1, 98], "labels must be the class ids in file order"
    assert not [n for n in os.listdir(tmp_path) if "tmp" in n], "temporary file must be renamed away"


def test_reads_original_release_format(tmp_path):
    split = tmp_path / "test.txt"
    split.write_text(SPLIT_HEADER + "\n8055 0 0 car_ims/008055.jpg\n8056 0 1 car_ims/008056.jpg\n\n")
    paths, labels = read_split(str(split), str(tmp_path))
    assert len(paths) == 2 and labels.tolist() == [0, 0], "view ids and blank lines must be accepted"


def test_relative_data_dir_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_split("s.txt", [(1, 5, "a/b.jpg")])
    paths, _ = read_split("s.txt", ".")
    assert paths == [os.path.join(str(tmp_path), "a/b.jpg")], "relative data_dir must be made absolute"


@pytest.mark.parametrize(
    "content, expected",
    [
        ("1 1 0 a.jpg\n", ":1: expected the header"),
        (SPLIT_HEADER + "\n1 1 0 a.jpg\n2 1 b.jpg\n", ":3: expected 4 fields"),
        (SPLIT_HEADER + "\n1 car 0 a.jpg\n", ":2: class_id 'car' is not an integer"),
        (SPLIT_HEADER + "\nx 1 0 a.jpg\n", ":2: image_id 'x' is not an integer"),
        (SPLIT_HEADER + "\n", "lists no images"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, content, expected):
    split = tmp_path / "train.txt"
    split.write_text(content)
    with pytest.raises(ValueError) as info:
        read_split(str(split), str(tmp_path), fix_hint="re-run python3 -m data.prepare cars196")
    message = str(info.value)
    assert expected in message, "message {!r} should contain {!r}".format(message, expected)
    assert str(split) in message, "message should name the file: {!r}".format(message)
    assert "python3 -m data.prepare" in message, "message should say how to fix: {!r}".format(message)
    assert "\n" not in message, "message must be one line: {!r}".format(message)


def test_missing_file_names_path_and_command(tmp_path):
    missing = str(tmp_path / "nope" / "train.txt")
    with pytest.raises(ValueError) as info:
        read_split(missing, str(tmp_path))
    message = str(info.value)
    assert missing in message and "data.prepare" in message, "got {!r}".format(message)


def test_write_rejects_whitespace_in_paths(tmp_path):
    with pytest.raises(ValueError, match="whitespace"):
        write_split(str(tmp_path / "t.txt"), [(1, 1, "my car.jpg")])
    assert not os.path.exists(tmp_path / "t.txt"), "nothing must be written on error"
