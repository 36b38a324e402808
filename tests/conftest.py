"""Shared test set-up: the repository root on sys.path, a guard for the numpy pin."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from utils.environment import check_numpy_version  # noqa: E402

check_numpy_version()
