"""Blocked exact kNN, MAP@R, R-precision and retrieval_metrics against brute-force loops."""
import numpy as np
import pytest

from utils import metrics as M
from utils.metrics import knn_search


def ranked_others(embeddings, q):
    """All other rows sorted by float64 Euclidean distance (ties by index)."""
    e = embeddings.astype(np.float64)
    others = [j for j in range(len(e)) if j != q]
    dists = [float(np.sqrt(np.sum((e[q] - e[j]) ** 2))) for j in others]
    return [others[i] for i in np.argsort(dists, kind="stable")]


def brute_force(embeddings, labels, ks):
    """Recall@k over all queries; MAP@R and R-precision over queries with R > 0, by loops.

    A row with a NaN or inf is in no gallery (R counts the finite rows only) and as a query a
    miss: it hits at no k, and scores 0 in MAP@R and RP when its R > 0."""
    n = len(labels)
    broken = [not np.all(np.isfinite(row)) for row in embeddings]
    hits = {k: 0 for k in ks}
    aps, rps = [], []
    for q in range(n):
        if broken[q]:
            ranked = [j for j in range(n) if j != q and not broken[j]]  # unranked: nothing retrieved
            rel = []
        else:
            ranked = [j for j in ranked_others(embeddings, q) if not broken[j]]
            rel = [labels[j] == labels[q] for j in ranked]
        for k in ks:
            hits[k] += any(rel[:k])
        r = sum(labels[j] == labels[q] for j in ranked)
        if r == 0:
            continue
        correct, ap = 0, 0.0
        for i in range(len(rel[:r])):
            if rel[i]:
                correct += 1
                ap += correct / (i + 1)
        aps.append(ap / r)
        rps.append(sum(rel[:r]) / r)
    out = {"R@%d" % k: hits[k] / n for k in ks}
    out["MAP@R"] = float(np.mean(aps)) if aps else float("nan")
    out["RP"] = float(np.mean(rps)) if rps else float("nan")
    return out


def random_data(seed, n=80, d=8, classes=9, unit=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    if unit:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = rng.integers(0, classes, size=n)
    labels[0] = classes + 5  # a singleton: R = 0, excluded from MAP@R / RP
    return x, labels


@pytest.mark.parametrize("block_size", [1, 7, 100000])
@pytest.mark.parametrize("seed,unit", [(0, True), (1, False)])
def test_knn_equals_brute_force(block_size, seed, unit):
    x, _ = random_data(seed, unit=unit)
    for k in (1, 5, len(x) - 1):
        got = M.knn(x, k, block_size=block_size)
        for q in range(len(x)):
            want = ranked_others(x, q)[:k]
            assert list(got[q]) == want, "block %d, k=%d, query %d: %s != %s" % (
                block_size, k, q, list(got[q]), want)


def test_topk_threshold_path_equals_full_sort():
    # n large enough relative to k for the group-threshold path; ties included.
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 50, size=(13, 3000)).astype(np.float32)
    scores[:, 7] = -np.inf
    for k in (1, 10, 100):
        got = knn_search._topk_rows(scores, k)
        for r in range(13):
            want = sorted(range(3000), key=lambda c: (-scores[r, c], c))[:k]
            assert list(got[r]) == want, "row %d, k=%d: threshold top-k differs from a full sort" % (r, k)


@pytest.mark.parametrize("block_size", [1, 7, None])
def test_retrieval_metrics_equal_brute_force(block_size):
    x, labels = random_data(2)
    ks = [1, 2, 4, 8, 16]
    got = M.retrieval_metrics(x, labels, ks, block_size=block_size)
    want = brute_force(x, labels, ks)
    assert list(got) == list(want), "keys/order: %r vs %r" % (list(got), list(want))
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), "%s: got %r, brute force %r" % (
            key, got[key], want[key])


def test_map_at_r_and_r_precision_functions():
    x, labels = random_data(3, n=60, classes=5)
    want = brute_force(x, labels, [1])
    assert M.map_at_r(x, labels) == pytest.approx(want["MAP@R"]), "map_at_r differs from the loop"
    assert M.r_precision(x, labels) == pytest.approx(want["RP"]), "r_precision differs from the loop"


def test_known_map_at_r():
    # Query 0 (label 0, R=2) ranks: 1 (0), 2 (1), 3 (0) -> AP@R = (1/1)/2 = 0.5, RP = 1/2.
    x = np.array([[0.0], [0.1], [0.25], [0.4], [5.0]], dtype=np.float32)
    labels = np.array([0, 0, 1, 0, 2])
    got = M.retrieval_metrics(x, labels, [1], metrics=("map_at_r", "r_precision"))
    want = brute_force(x, labels, [1])
    assert set(got) == {"MAP@R", "RP"}, "only the asked metrics: %r" % got
    assert got["MAP@R"] == pytest.approx(want["MAP@R"]), "MAP@R %r vs %r" % (got, want)
    assert got["RP"] == pytest.approx(want["RP"]), "RP %r vs %r" % (got, want)


def test_recall_matches_existing_recall_at_k():
    x, labels = random_data(4, n=120)
    old = M.recall_at_k(x, labels, [1, 4, 200])
    new = M.retrieval_metrics(x, labels, [1, 4, 200], metrics=("recall",))
    for k in (1, 4, 200):
        assert new["R@%d" % k] == pytest.approx(old[k]), "R@%d differs from recall_at_k" % k


def test_evaluate_embeddings_normalises_and_reports():
    x, labels = random_data(6, n=90, classes=6, unit=False)
    got = M.evaluate_embeddings(x * 7.0, labels, [1, 2], cluster_backend="sklearn")
    assert set(got) == {"R@1", "R@2", "MAP@R", "RP", "NMI", "F1"}, "keys: %r" % sorted(got)
    want = brute_force(M.l2_normalize(x), labels, [1, 2])
    for key in want:
        assert got[key] == pytest.approx(want[key]), "%s on normalised vectors: %r vs %r" % (
            key, got[key], want[key])
    only = M.evaluate_embeddings(x, labels, [1], metrics=("recall",))
    assert set(only) == {"R@1"}, "no clustering unless nmi/f1 asked: %r" % only


def test_missing_faiss_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(knn_search.importlib, "import_module",
                        lambda name: no_faiss(name) if name == "faiss" else real_import(name))
    x, labels = random_data(7)
    with pytest.raises(ValueError, match="faiss is not installed; pip install faiss-cpu==1.8.0.post1"):
        M.retrieval_metrics(x, labels, [1], knn="faiss")
    with pytest.raises(ValueError, match="--knn=numpy"):
        M.cluster(x, 3, backend="faiss")
    ids = M.cluster(x, 3, backend="auto")
    assert ids.shape == (len(x),), "auto falls back to sklearn without faiss"


def test_bad_arguments():
    x, labels = random_data(8)
    with pytest.raises(ValueError, match="knn must be"):
        M.retrieval_metrics(x, labels, [1], knn="annoy")
    with pytest.raises(ValueError, match="unknown retrieval metrics"):
        M.retrieval_metrics(x, labels, [1], metrics=("nmi",))
    with pytest.raises(ValueError, match="one label per row"):
        M.retrieval_metrics(x, labels[:-1], [1])


@pytest.mark.parametrize("unit", [True, False])
def test_faiss_backend_equals_numpy(unit):
    pytest.importorskip("faiss")
    x, labels = random_data(9, n=150, unit=unit)
    ks = [1, 2, 4, 8]
    got = M.retrieval_metrics(x, labels, ks, knn="faiss", block_size=40)
    want = brute_force(x, labels, ks)
    for key in want:
        assert got[key] == pytest.approx(want[key]), "faiss %s: %r vs brute force %r" % (
            key, got[key], want[key])
    nb = M.knn(x, 10, knn="faiss")
    assert (nb == M.knn(x, 10)).all(), "faiss neighbours differ from the numpy backend"


# ------------------------------------------------------------------------- non-finite rows
@pytest.mark.parametrize("bad", [[1], [0, 5, 6, 40], list(range(0, 90, 3))], ids=["one", "four", "a third"])
@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_rows_are_misses_and_never_neighbours(bad, value):
    x, labels = random_data(7, n=90, classes=6)
    x[bad, 1] = value
    ks = [1, 2, 4, 8]
    got = M.retrieval_metrics(x, labels, ks, block_size=16)
    want = brute_force(x, labels, ks)
    for key in want:
        assert got[key] == pytest.approx(want[key]), "%s with %d broken rows: %r vs %r" % (
            key, len(bad), got[key], want[key])
    assert M.non_finite_rows(x).sum() == len(bad), "non_finite_rows must count the broken rows"
    # No broken row is anyone's neighbour (as zero vectors they were: R@1 dropped).
    finite = ~M.non_finite_rows(x)
    assert got["R@1"] <= finite.mean(), "broken queries are misses"


def test_all_rows_broken_gives_misses():
    x, labels = random_data(8, n=20, classes=3)
    x[:] = np.nan
    got = M.retrieval_metrics(x, labels, [1, 4])
    assert got["R@1"] == got["R@4"] == 0.0, "every query is a miss: %r" % got
    assert np.isnan(got["MAP@R"]) and np.isnan(got["RP"]), "no query has a relevant gallery item: %r" % got


def test_clustering_puts_broken_rows_in_a_cluster_of_their_own():
    from sklearn.metrics import normalized_mutual_info_score

    # Four tight, far-apart classes of 10; rows 3 and 27 broken.
    rng = np.random.default_rng(9)
    labels = np.repeat(np.arange(4), 10)
    x = np.eye(8, dtype=np.float32)[labels] + 0.01 * rng.normal(size=(40, 8)).astype(np.float32)
    x[[3, 27], 0] = np.nan
    got = M.evaluate_embeddings(x, labels, [1], metrics=("nmi", "f1"), cluster_backend="sklearn")
    ids = labels.copy()  # perfect clusters for the finite rows, one more for the broken ones
    ids[[3, 27]] = 4
    assert got["NMI"] == pytest.approx(normalized_mutual_info_score(labels, ids)), "NMI %r" % got
    # Pairwise F1: TP = 4 C(10,2) - 9 - 9 + [3 and 27 differ in class: 0]; same-cluster pairs add C(2,2).
    tp = 4 * 45 - 9 - 9
    precision, recall = tp / (tp + 1), tp / (4 * 45)
    assert got["F1"] == pytest.approx(2 * precision * recall / (precision + recall)), "F1 %r" % got
