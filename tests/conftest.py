"""Shared test set-up: the repository root on sys.path, a guard for the numpy pin."""
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
