"""The synthetic demo dataset (data/demo.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from data.demo import STAMP_NAME, class_glyphs, generate_demo, main
from data.meta import SPLIT_HEADER, read_split
from data.transforms import decode_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(classes=6, per_class=5, size=32, seed=0)


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("demo"))
    assert generate_demo(out, **TINY) == out, "generate_demo must return out_dir"
    return out


def test_files_and_split_format(tiny_demo):
    jpgs = [
        n for _, _, names in os.walk(os.path.join(tiny_demo, "images")) for n in names if n.endswith(".jpg")
    ]
    assert len(jpgs) == 30, "6 classes x 5 images expected, found {}".format(len(jpgs))
    for name in ("train.txt", "test.txt"):
        with open(os.path.join(tiny_demo, name)) as handle:
            lines = handle.read().splitlines()
        assert lines[0] == SPLIT_HEADER, "{} header is {!r}".format(name, lines[0])
        assert all(
            len(line.split()) == 4 and line.split()[2] == "0" for line in lines[1:]
        ), "4 fields, view 0"
    train_paths, train_labels = read_split(os.path.join(tiny_demo, "train.txt"), tiny_demo)
    test_paths, test_labels = read_split(os.path.join(tiny_demo, "test.txt"), tiny_demo)
    assert sorted(set(train_labels.tolist())) == [1, 2, 3], "train classes 1..N/2, got {}".format(
        set(train_labels)
    )
    assert sorted(set(test_labels.tolist())) == [4, 5, 6], "test classes N/2+1..N, got {}".format(
        set(test_labels)
    )
    assert not set(train_paths) & set(test_paths), "splits must not share images"
    image = decode_image(test_paths[0])
    assert image.shape == (32, 32, 3), "images must be size x size RGB, got {}".format(image.shape)
    assert image.std() > 10, "images should not be blank"


def test_glyphs_distinct():
    glyphs = class_glyphs(48, seed=0)
    assert len({text for text, _ in glyphs}) == 48, "48 distinct class strings expected"


def test_deterministic_and_skips_complete(tiny_demo, tmp_path):
    other = str(tmp_path / "again")
    generate_demo(other, **TINY)
    for name in ("train.txt", "test.txt"):
        first = open(os.path.join(tiny_demo, name)).read().replace(tiny_demo, "")
        second = open(os.path.join(other, name)).read().replace(other, "")
        assert first == second, "{} must be identical across generations".format(name)
    a = decode_image(os.path.join(tiny_demo, "images/002/0003.jpg"))
    b = decode_image(os.path.join(other, "images/002/0003.jpg"))
    assert np.array_equal(a, b), "pixels must be identical across generations"
    marker = os.path.join(other, "images/001/0001.jpg")
    os.utime(marker, (1, 1))
    generate_demo(other, **TINY)
    assert os.path.getmtime(marker) == 1, "a complete dataset with the same settings must not be regenerated"
    generate_demo(other, **dict(TINY, seed=1))
    assert os.path.getmtime(marker) != 1, "different settings must regenerate"
    assert os.path.isfile(os.path.join(other, STAMP_NAME)), "stamp file must be written"


def test_cli_and_bad_settings(tmp_path, capsys):
    assert (
        main(["--out", str(tmp_path / "d"), "--classes", "4", "--per_class", "2", "--size", "24"]) == 0
    ), "CLI ok"
    assert main(["--out", str(tmp_path / "e"), "--classes", "5"]) == 2, "odd class count must exit 2"
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: classes must be even") and "\n" not in err
    ), "one-line error, got {!r}".format(err)


def test_python_m_data_demo_runs_a_module_the_package_did_not_import(tmp_path):
    # The package imports the registry, so the registry must not import the module -m runs, or
    # runpy warns "found in sys.modules after import of package 'data'" on every typed command.
    for argv in (["--help"], ["--out", str(tmp_path / "d"), "--classes", "2", "--per_class", "2", "--size", "16"]):
        proc = subprocess.run([sys.executable, "-W", "always::RuntimeWarning", "-m", "data.demo"] + argv,
                              cwd=ROOT, capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert proc.returncode == 0, "python -m data.demo %s failed: %s" % (" ".join(argv), proc.stderr[-2000:])
        assert "RuntimeWarning" not in proc.stderr, "runpy warned: %s" % proc.stderr[-2000:]
    assert os.path.isfile(str(tmp_path / "d" / "train.txt")), "the typed command generated the demo"


def test_an_empty_out_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--out", ""])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "\n" not in err, "one line, exit 2: {!r}".format(err)
    assert "argument --out: an empty path names no file or folder" in err, err
