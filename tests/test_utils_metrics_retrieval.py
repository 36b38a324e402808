"""Blocked exact kNN, MAP@R, R-precision and retrieval_metrics against brute-force loops."""
import numpy as np
import pytest

from utils import metrics as M


def ranked_others(embeddings, q):
    """All other rows sorted by float64 Euclidean distance (ties by index)."""
    e = embeddings.astype(np.float64)
    others = [j for j in range(len(e)) if j != q]
    dists = [float(np.sqrt(np.sum((e[q] - e[j]) ** 2))) for j in others]
    return [others[i] for i in np.argsort(dists, kind="stable")]


def brute_force(embeddings, labels, ks):
    """Recall@k over all queries; MAP@R and R-precision over queries with R > 0, by loops."""
    n = len(labels)
    hits = {k: 0 for k in ks}
    aps, rps = [], []
    for q in range(n):
        ranked = ranked_others(embeddings, q)
        rel = [labels[j] == labels[q] for j in ranked]
        for k in ks:
            hits[k] += any(rel[:k])
        r = sum(rel)
        if r == 0:
            continue
        correct, ap = 0, 0.0
        for i in range(r):
            if rel[i]:
                correct += 1
                ap += correct / (i + 1)
        aps.append(ap / r)
        rps.append(sum(rel[:r]) / r)
    out = {"R@%d" % k: hits[k] / n for k in ks}
    out["MAP@R"] = float(np.mean(aps))
    out["RP"] = float(np.mean(rps))
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
        got = M._topk_rows(scores, k)
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

    monkeypatch.setattr(M.importlib, "import_module",
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
