"""utils.metrics.embeddings: which test embeddings hold no ranking at all (all non-finite, or all
one point: a collapsed network), checked on arrays whose answer is known by construction."""
import warnings

import numpy as np
import pytest

from utils.metrics import cluster, is_one_point, non_finite_rows


def test_distinct_rows_are_not_one_point():
    x = np.random.RandomState(0).randn(24, 8).astype(np.float32)
    assert not is_one_point(x)


@pytest.mark.parametrize("value", [0.0, 3.5, -1e6])
def test_equal_rows_are_one_point(value):
    assert is_one_point(np.full((24, 8), value, dtype=np.float32))


def test_rows_all_non_finite_or_one_finite_are_one_point():
    x = np.full((6, 4), np.nan, dtype=np.float32)
    assert is_one_point(x)
    x[2] = [1.0, 2.0, 3.0, 4.0]
    assert is_one_point(x), "one finite row is one point"
    x[4] = [1.0, 2.0, 3.0, 4.0]
    x[5, 0] = np.inf
    assert is_one_point(x), "two equal finite rows beside non-finite ones are one point"
    x[4, 3] = 4.5
    assert not is_one_point(x), "two different finite rows rank"
    assert non_finite_rows(x).sum() == 4


def test_a_difference_beyond_the_tolerance_ranks():
    x = np.ones((10, 4), dtype=np.float64) * 100.0
    x[7, 1] += 100.0 * 1e-7  # below 1e-6 of the scale: float noise of one point
    assert is_one_point(x)
    x[7, 1] += 100.0 * 1e-5
    assert not is_one_point(x)


def test_clustering_one_point_assigns_without_a_warning():
    x = np.zeros((12, 4), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids = cluster(x, 4)
    assert ids.shape == (12,) and ids.dtype == np.int64
