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


@pytest.mark.parametrize("relpath", [" a.jpg", "a.jpg ", "a\nb.jpg", "a\rb.jpg", "a.jpg\t", ""])
def test_write_rejects_paths_the_format_cannot_give_back(tmp_path, relpath):
    with pytest.raises(ValueError, match="begins or ends with whitespace or holds a line break") as info:
        write_split(str(tmp_path / "t.txt"), [(1, 1, relpath)])
    assert "\n" not in str(info.value), "one line: {!r}".format(str(info.value))
    assert not os.path.exists(tmp_path / "t.txt"), "nothing must be written on error"


def test_a_path_with_spaces_is_the_rest_of_the_line(tmp_path):
    # As a folder dataset takes "my cars/", a split file does: the path is all after the view id.
    split = tmp_path / "train.txt"
    split.write_text(SPLIT_HEADER + "\n1 5 0 my cars/a b.jpg\n2 5 0   my cars/two  spaces.jpg  \n")
    paths, labels = read_split(str(split), str(tmp_path))
    assert paths == [os.path.join(str(tmp_path), "my cars/a b.jpg"),
                     os.path.join(str(tmp_path), "my cars/two  spaces.jpg")], \
        "the path is the rest of the line, inner spaces kept, its ends stripped: {}".format(paths)
    assert labels.tolist() == [5, 5], "the class id is still the second field: {}".format(labels)


def test_paths_with_spaces_round_trip_and_load(tmp_path):
    from data import load_split

    rows = [(1, 1, "my cars/a b.jpg"), (2, 2, "my cars/tab\there.jpg"), (3, 2, "x  y/z.jpg")]
    for _, _, relpath in rows:
        os.makedirs(os.path.dirname(str(tmp_path / relpath)), exist_ok=True)
        (tmp_path / relpath).write_bytes(b"")
    write_split(str(tmp_path / "train.txt"), rows)
    paths, labels = load_split("cars196", str(tmp_path), "train")  # every listed image must exist
    assert paths == [os.path.join(str(tmp_path), r[2]) for r in rows], "written paths read back: {}".format(paths)
    assert labels.tolist() == [1, 2, 2], "labels {}".format(labels)
