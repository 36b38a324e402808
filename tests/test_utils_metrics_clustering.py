"""NMI, pairwise F1 and k-means clustering against sklearn / pair loops."""
import itertools

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score
from sklearn.metrics.cluster import pair_confusion_matrix

from utils import metrics as M


def pair_loop_f1(ids, labels):
    tp = same_cluster = same_class = 0
    for i, j in itertools.combinations(range(len(ids)), 2):
        sc, sl = ids[i] == ids[j], labels[i] == labels[j]
        same_cluster += sc
        same_class += sl
        tp += sc and sl
    if tp == 0:
        return 0.0
    p, r = tp / same_cluster, tp / same_class
    return 2 * p * r / (p + r)


CASES = [
    ([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2]),
    ([0, 0, 1, 1, 2, 2], [5, 5, 9, 9, 7, 7]),
    ([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2]),
    ([0, 1, 2, 3, 4, 5], [0, 0, 1, 1, 2, 2]),
    ([0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 2, 2]),
    ([3, 3, 1, 1, 1, 7, 7], [0, 0, 0, 1, 1, 1, 2]),
]


@pytest.mark.parametrize("ids,labels", CASES)
def test_nmi_and_f1_fixed(ids, labels):
    ids, labels = np.array(ids), np.array(labels)
    want = normalized_mutual_info_score(labels, ids)
    assert M.nmi(ids, labels) == pytest.approx(want, abs=1e-12), "NMI %r vs sklearn %r" % (
        M.nmi(ids, labels), want)
    assert M.pairwise_f1(ids, labels) == pytest.approx(pair_loop_f1(ids, labels)), "F1 vs pair loop"


@pytest.mark.parametrize("seed", range(5))
def test_nmi_and_f1_random(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 200))
    ids = rng.integers(0, int(rng.integers(1, 30)), size=n)
    labels = rng.integers(0, int(rng.integers(1, 30)), size=n) * 3 - 7  # arbitrary label values
    want = normalized_mutual_info_score(labels, ids)
    assert M.nmi(ids, labels) == pytest.approx(want, abs=1e-10), "seed %d: NMI %r vs %r" % (
        seed, M.nmi(ids, labels), want)
    assert M.pairwise_f1(ids, labels) == pytest.approx(pair_loop_f1(ids, labels), abs=1e-12), (
        "seed %d: pairwise F1 differs from the pair loop" % seed)


def test_sparse_contingency_path():
    # C·K large relative to N: the np.unique path; same values as sklearn.
    rng = np.random.default_rng(11)
    ids = rng.integers(0, 3000, size=4000)
    labels = rng.integers(0, 3000, size=4000)
    assert M.nmi(ids, labels) == pytest.approx(normalized_mutual_info_score(labels, ids), abs=1e-10), (
        "NMI on the sparse path differs from sklearn")
    (_, fp), (fn, tp) = pair_confusion_matrix(labels, ids)  # ordered pairs; ratios unchanged
    p, r = tp / (tp + fp), tp / (tp + fn)
    assert M.pairwise_f1(ids, labels) == pytest.approx(2 * p * r / (p + r)), (
        "F1 on the sparse path differs from sklearn's pair confusion matrix")


def test_edge_cases_match_sklearn():
    one = np.zeros(5, dtype=int)
    assert M.nmi(one, one) == normalized_mutual_info_score(one, one), "single cluster and class"
    assert M.nmi(np.arange(5), one) == pytest.approx(normalized_mutual_info_score(one, np.arange(5))), (
        "MI = 0 case")
    assert M.pairwise_f1(np.arange(5), one) == 0.0, "all singletons: no same-cluster pairs -> 0"
    with pytest.raises(ValueError, match="same length"):
        M.nmi([0, 1], [0])


def blobs(seed=0, k=5, per=20, d=16):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 10
    x = np.concatenate([c + rng.normal(size=(per, d)) for c in centers]).astype(np.float32)
    return x, np.repeat(np.arange(k), per)


def test_cluster_sklearn_recovers_blobs():
    x, labels = blobs()
    ids = M.cluster(x, 5, backend="sklearn", seed=0)
    assert ids.shape == labels.shape and ids.dtype == np.int64, "ids: %s %s" % (ids.shape, ids.dtype)
    assert M.nmi(ids, labels) == pytest.approx(1.0), "well separated blobs must be recovered"
    assert M.pairwise_f1(ids, labels) == pytest.approx(1.0), "F1 of a perfect clustering is 1"
    with pytest.raises(ValueError, match="backend"):
        M.cluster(x, 5, backend="kmeans++")


def test_cluster_faiss_recovers_blobs():
    pytest.importorskip("faiss")
    x, labels = blobs(1, per=60)
    ids = M.cluster(x, 5, backend="faiss", seed=0)
    assert ids.shape == labels.shape and ids.dtype == np.int64, "ids: %s %s" % (ids.shape, ids.dtype)
    # One k-means run may merge two blobs (local minimum); it must still be far from chance.
    assert M.nmi(ids, labels) > 0.8, "faiss k-means NMI too low: %r" % M.nmi(ids, labels)
