"""Shared test set-up: the repository root on sys.path, a guard for the numpy pin, no network, and
the demo dataset the main.py runs of the resume, run-folder and precision tests train on (a test
module that needs another demo defines its own ``demo_dir``)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402

from utils.environment import check_numpy_version  # noqa: E402

check_numpy_version()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """No test downloads: every download attempt fails as offline and is recorded (the list)."""
    from data import preparation as prepare

    calls = []

    def offline(url, destination, timeout=None):
        calls.append(url)
        raise prepare.DownloadError("{}: <urlopen error [Errno -3] offline>".format(url))

    monkeypatch.setattr(prepare, "download_file", offline)
    return calls


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A generated demo dataset (16 classes of 6 images, 40 px), one per test module."""
    from data.demo import generate_demo

    return str(generate_demo(str(tmp_path_factory.mktemp("demo") / "d"), classes=16, per_class=6,
                             size=40, seed=1))
