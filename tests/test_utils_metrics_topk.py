"""The threshold top-k path of the blocked kNN (N large enough for it) against full sorts.

Integer-valued embeddings make every float32 distance exact, so there are many exact ties (and
duplicate points): the neighbours must then follow the documented order, distance first and the
smaller index on ties, exactly as a stable sort of the full distance list."""
import numpy as np
import pytest

from utils import metrics as M
from utils.metrics import knn_search


def integer_data(n=1300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(n, d)).astype(np.float32)  # 625 distinct points: duplicates
    labels = rng.integers(0, 40, size=n)
    return x, labels


def sorted_others(x, q):
    """Other rows sorted by exact squared distance, ties by the smaller index."""
    d = ((x.astype(np.int64) - x[q].astype(np.int64)) ** 2).sum(axis=1)
    order = np.lexsort((np.arange(len(x)), d))
    return order[order != q]


def test_threshold_path_is_taken():
    # n // max(4k, 256) >= 4 selects the threshold path for these sizes.
    assert 1300 // max(4 * 64, 256) >= 4, "test sizes no longer reach the threshold path"


@pytest.mark.parametrize("block_size", [1, 7, 100000])
def test_knn_with_exact_ties_equals_stable_sort(block_size):
    x, _ = integer_data()
    for k in (1, 13, 64):
        got = M.knn(x, k, block_size=block_size)
        for q in range(0, len(x), 1 if block_size == 7 else 37):
            want = sorted_others(x, q)[:k]
            assert list(got[q]) == list(want), "block %d, k=%d, query %d: %s != %s" % (
                block_size, k, q, list(got[q])[:8], list(want)[:8])


def test_retrieval_metrics_with_ties_equal_sorted_lists():
    x, labels = integer_data(seed=1)
    ks = [1, 4, 16]
    got = M.retrieval_metrics(x, labels, ks, block_size=100)
    hits = {k: 0 for k in ks}
    aps, rps = [], []
    for q in range(len(x)):
        rel = labels[sorted_others(x, q)] == labels[q]
        for k in ks:
            hits[k] += bool(rel[:k].any())
        r = int(rel.sum())
        if r:
            precision_at = np.cumsum(rel[:r]) / np.arange(1, r + 1)
            aps.append(float(np.sum(precision_at * rel[:r])) / r)
            rps.append(float(rel[:r].sum()) / r)
    want = {"R@%d" % k: hits[k] / len(x) for k in ks}
    want.update({"MAP@R": float(np.mean(aps)), "RP": float(np.mean(rps))})
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), "%s: %r vs sorted lists %r" % (
            key, got[key], want[key])


@pytest.mark.parametrize("n", [3, 5000])
def test_negative_zero_ties_with_positive_zero(n):
    # Scores -0.0 (column 0) and +0.0 (column 1) are equal: the smaller column comes first.
    scores = np.full((2, n), -1.0, dtype=np.float32)
    scores[:, 0] = -0.0
    scores[:, 1] = 0.0
    got = knn_search._topk_rows(scores, 2)
    assert got.tolist() == [[0, 1], [0, 1]], "-0.0 and +0.0 must tie (by column): %s" % got.tolist()


def test_topk_many_ties_all_k():
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 4, size=(5, 6000)).astype(np.float32)  # ~1500 ties per value
    for k in (1, 2, 100, 1400):
        got = knn_search._topk_rows(scores, k)
        for r in range(5):
            want = np.lexsort((np.arange(6000), -scores[r]))[:k]
            assert (got[r] == want).all(), "row %d, k=%d: tie order differs from a stable sort" % (r, k)
