"""recall_at_k against a brute-force loop written from the definition."""
import numpy as np
import pytest

from utils.metrics import nearest_neighbors, recall_at_k


def brute_force_recall(embeddings, labels, ks):
    """For every query, sort all other points by Euclidean distance; a hit at K when any of the
    first K shares the query's label."""
    num = len(labels)
    hits = {k: 0 for k in ks}
    for q in range(num):
        others = [j for j in range(num) if j != q]
        dists = [float(np.sqrt(np.sum((embeddings[q].astype(np.float64) - embeddings[j]) ** 2)))
                 for j in others]
        ranked = [others[j] for j in np.argsort(dists, kind="stable")]
        for k in ks:
            if any(labels[j] == labels[q] for j in ranked[:k]):
                hits[k] += 1
    return {k: hits[k] / num for k in ks}


@pytest.mark.parametrize("block_size", [1, 7, 1024])
def test_recall_matches_brute_force(block_size):
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(90, 16)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    labels = rng.integers(0, 12, size=90)
    ks = [1, 2, 4, 8, 16]
    got = recall_at_k(embeddings, labels, ks, block_size=block_size)
    want = brute_force_recall(embeddings, labels, ks)
    for k in ks:
        assert got[k] == pytest.approx(want[k]), "R@%d: got %f, brute force %f" % (k, got[k], want[k])


def test_self_is_excluded():
    # Two far-apart singletons with unique labels: including self would give R@1 = 1.
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.99]], dtype=np.float32)
    labels = np.array([0, 1, 1])
    got = recall_at_k(embeddings, labels, [1, 2])
    assert got[1] == pytest.approx(2 / 3), "the singleton query must not retrieve itself: %r" % got
    assert got[2] == pytest.approx(2 / 3), "label 0 has no other member at any rank: %r" % got


def test_known_values_and_order():
    embeddings = np.array([[0.0], [0.1], [1.0], [1.1], [5.0]], dtype=np.float32)
    labels = np.array([0, 0, 1, 2, 1])
    got = recall_at_k(embeddings, labels, [2, 1])
    assert list(got) == [2, 1], "keys keep the order of ks: %r" % list(got)
    # Hits at rank 1: queries 0 and 1. Query 2 (label 1) sees 3 (label 2) then 1 (label 0);
    # query 3 has no partner; query 4 (label 1) sees 3 (label 2) then 2 (label 1): a hit at 2.
    assert got[1] == pytest.approx(2 / 5), "R@1 wrong: %r" % got
    assert got[2] == pytest.approx(3 / 5), "R@2 wrong: %r" % got


def test_neighbors_sorted_and_k_clipped():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    nn = nearest_neighbors(x, 29, block_size=8)
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    for q in range(30):
        assert q not in nn[q], "query %d retrieved itself" % q
        assert np.all(np.diff(d[q, nn[q]]) >= -1e-5), "neighbours of %d not sorted by distance" % q
    # ks larger than N - 1 are clipped: every query finds its class somewhere.
    got = recall_at_k(x, np.arange(30) % 3, [1000])
    assert got[1000] == 1.0, "R@K with K >= N-1 must be 1 when every class has two members: %r" % got


def test_bad_inputs():
    with pytest.raises(ValueError, match="one label per row"):
        recall_at_k(np.zeros((4, 2)), np.zeros(3), [1])
    with pytest.raises(ValueError, match="positive"):
        recall_at_k(np.zeros((4, 2)), np.zeros(4), [0])


# ------------------------------------------------------------------------------ exact ties
def tied_data(seed, num=240):
    """Small-integer points: many exact duplicates and equal distances, all exact in float32."""
    rng = np.random.default_rng(seed)
    embeddings = rng.integers(-2, 3, size=(num, 2)).astype(np.float32)
    labels = rng.integers(0, 6, size=num)
    return embeddings, labels


def ranked_by_distance_then_index(embeddings, q):
    """Other rows sorted by exact squared distance (integers), equal distances by index."""
    e = embeddings.astype(np.int64)
    others = [j for j in range(len(e)) if j != q]
    return sorted(others, key=lambda j: (int(np.sum((e[q] - e[j]) ** 2)), j))


@pytest.mark.parametrize("seed", [0, 1])
def test_ties_go_to_the_smaller_index(seed):
    embeddings, labels = tied_data(seed)
    num = len(labels)
    ks = [1, 2, 4, 8, 16]
    neighbours = nearest_neighbors(embeddings, 16, block_size=50)
    hits = {k: 0 for k in ks}
    tied_queries = 0
    for q in range(num):
        ranked = ranked_by_distance_then_index(embeddings, q)
        assert list(neighbours[q]) == ranked[:16], "query %d: %s, want %s" % (q, neighbours[q], ranked[:16])
        e = embeddings.astype(np.int64)
        d16, d17 = (int(np.sum((e[q] - e[ranked[i]]) ** 2)) for i in (15, 16))
        tied_queries += d16 == d17  # the 16th place cuts a group of equal distances
        for k in ks:
            hits[k] += any(labels[j] == labels[q] for j in ranked[:k])
    assert tied_queries > num // 2, "the data should cut tie groups at rank 16: %d queries" % tied_queries
    got = recall_at_k(embeddings, labels, ks, block_size=50)
    for k in ks:
        assert got[k] == pytest.approx(hits[k] / num), "R@%d with ties: %f, want %f" % (k, got[k], hits[k] / num)


def test_a_tie_at_rank_one_goes_to_the_smaller_index():
    # Query 0 has two neighbours at distance 1: row 1 (another class) and row 2 (its class).
    # The smaller index wins, so query 0 misses at R@1 and hits at R@2.
    embeddings = np.array([[0.0], [1.0], [-1.0], [9.0], [9.0]], dtype=np.float32)
    labels = np.array([0, 1, 0, 2, 2])
    assert list(nearest_neighbors(embeddings, 2)[0]) == [1, 2], "tie at rank 1 must go to row 1"
    got = recall_at_k(embeddings, labels, [1, 2])
    # R@1: queries 3 and 4 hit (each other); 0 misses (row 1), 1 misses, 2 hits (row 0).
    assert got[1] == pytest.approx(3 / 5) and got[2] == pytest.approx(4 / 5), "ties: %r" % got
