"""utils.metrics.knn_of_queries: the metrics' exact top-K for queries that are not the gallery."""
import numpy as np

from utils.metrics import knn, knn_of_queries


def test_rows_of_the_set_as_queries_agree_with_knn():
    x = np.random.RandomState(0).randn(300, 16).astype(np.float32)
    rows = np.array([0, 7, 299])
    got = knn_of_queries(x[rows], x, 5, exclude=rows)
    want = knn(x, 5)[rows]
    assert np.array_equal(np.stack(got), want), "knn_of_queries %s vs knn %s" % (np.stack(got), want)


def test_outside_queries_ties_and_a_short_gallery():
    gallery = np.array([[0.0], [1.0], [-1.0], [3.0]], dtype=np.float32)
    got = knn_of_queries(np.array([[0.0], [2.9]], dtype=np.float32), gallery, 3)
    assert [row.tolist() for row in got] == [[0, 1, 2], [3, 1, 0]], "nearest first, ties by index: %s" % got
    got = knn_of_queries(gallery[:1], gallery[:2], 5, exclude=[0])
    assert [row.tolist() for row in got] == [[1]], "the excluded row is left out, fewer than k: %s" % got
