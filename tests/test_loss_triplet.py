"""TripletSemiHardLoss and SymmTripletLoss against a plain-loop NumPy reference.

The reference is written from the docstring's formula, one (anchor, positive) pair and one
candidate at a time, in float64; gradients are compared with central finite differences of it on
batches where no selection sits near a tie or a hinge corner.
"""
import mxnet as mx
import numpy as np
import pytest

from loss import EmbeddingExpansion, SymmTripletLoss, TripletSemiHardLoss
from loss._candidates import negative_candidates
from loss_helpers import ee_points, finite_difference, mirror, mx_loss_and_grad, sampler_batch  # noqa: E402



# ----------------------------------------------------------------------------- reference
def symm_points(x, y):
    points, labels = [], []
    for i in range(len(x)):
        points.append(mirror(x[i], x[i ^ 1]))
        labels.append(y[i])
    return points, labels


def distance(a, b, squared):
    value = np.sqrt(min(max(np.dot(a, a) + np.dot(b, b) - 2 * np.dot(a, b), 1e-12), 1e12))
    return value * value if squared else value


def reference_triplet(x, y, margin=0.2, squared=True, synthetic=((), ())):
    x = np.asarray(x, dtype=np.float64)
    rows = list(x) + list(synthetic[0])
    labels = list(y) + list(synthetic[1])
    total, count = 0.0, 0
    for a in range(len(x)):
        negatives = [c for c in range(len(rows)) if labels[c] != y[a]]
        for p in range(len(x)):
            if p == a or y[p] != y[a] or not negatives:
                continue
            d_ap = distance(x[a], x[p], squared)
            d_neg = [distance(x[a], rows[c], squared) for c in negatives]
            semi_hard = [d for d in d_neg if d > d_ap]
            d_an = min(semi_hard) if semi_hard else max(d_neg)
            value = max(d_ap - d_an + margin, 0.0)
            if value > 0:
                total += value
                count += 1
    return total / count if count else 0.0


def reference_for(block_kind, x, y, n=0, l2_norm=True, margin=0.2, squared=True):
    x = np.asarray(x, dtype=np.float64)
    if block_kind == "symm":
        return reference_triplet(x, y, margin, squared, symm_points(x, y))
    return reference_triplet(x, y, margin, squared, ee_points(x, y, n, l2_norm))


# ----------------------------------------------------------------------------- helpers
# ----------------------------------------------------------------------------- values and gradients
@pytest.mark.parametrize("n", [0, 1, 2, 4])
@pytest.mark.parametrize("squared, margin", [(True, 0.2), (False, 0.2), (True, 1.0)])
@pytest.mark.parametrize("num_instances", [2, 4])
def test_values_match_reference(n, squared, margin, num_instances):
    rng = np.random.RandomState(20 + n)
    x, y = sampler_batch(rng, 16 // num_instances, num_instances, dim=6)
    block = TripletSemiHardLoss(margin, squared, num_instances, n)
    value, _ = mx_loss_and_grad(block, x, y)
    expected = reference_for("ee", x, y, n, True, margin, squared)
    assert value.shape == (1,), f"output shape {value.shape}, expected (1,)"
    np.testing.assert_allclose(value[0], expected, rtol=1e-9, atol=1e-12, err_msg=f"n={n}, squared={squared}")


@pytest.mark.parametrize("n, l2_norm", [(0, True), (2, True), (3, False)])
@pytest.mark.parametrize("squared", [True, False])
def test_gradients_match_finite_differences(n, l2_norm, squared):
    x, y = sampler_batch(np.random.RandomState(30 + n), 3, 4, dim=5)
    block = TripletSemiHardLoss(0.2, squared, 4, n, l2_norm)
    value, grad = mx_loss_and_grad(block, x, y)
    assert value[0] > 0, "the test batch should have active triplets"
    expected = finite_difference(lambda v: reference_for("ee", v, y, n, l2_norm, 0.2, squared), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7, err_msg=f"n={n}, squared={squared}")


def test_ee_points_change_the_mined_negative():
    # A synthetic point closer than every original negative must become the semi-hard negative.
    x, y = sampler_batch(np.random.RandomState(3), 4, 2, dim=6)
    plain = reference_for("ee", x, y, 0)
    expanded = reference_for("ee", x, y, 4)
    got = mx_loss_and_grad(TripletSemiHardLoss(n_inner_pts=4), x, y)[0][0]
    assert plain != expanded, "test batch should be one where EE changes the loss"
    np.testing.assert_allclose(got, expanded, rtol=1e-9, err_msg="EE points must join the negatives")


# ----------------------------------------------------------------------------- hand-computed
def test_hand_computed_semi_hard_and_fallback():
    # 1-D on a line, classes 0 (at 0 and 1) and 1 (at 1.5 and 3); Euclidean, margin 1.
    x = np.array([[0.0], [1.0], [1.5], [3.0]])
    y = np.array([0, 0, 1, 1], dtype="int32")
    # (0,1): d_ap 1; negatives 1.5, 3 -> semi-hard 1.5 -> 1 - 1.5 + 1 = 0.5
    # (1,0): d_ap 1; negatives 0.5, 2 -> semi-hard 2 -> 1 - 2 + 1 = 0
    # (2,3): d_ap 1.5; negatives 1.5, 0.5 -> none > 1.5 -> farthest 1.5 -> 1.5 - 1.5 + 1 = 1
    # (3,2): d_ap 1.5; negatives 3, 2 -> semi-hard 2 -> 1.5 - 2 + 1 = 0.5
    value, _ = mx_loss_and_grad(TripletSemiHardLoss(margin=1.0, squared=False), x, y)
    np.testing.assert_allclose(value[0], (0.5 + 1 + 0.5) / 3, rtol=1e-9, err_msg="mean over the 3 active triplets")


def test_hand_computed_ee_candidates():
    x = np.array([[3, 0], [0, 3], [0, 0], [6, 6]], dtype="float64")
    y = np.array([5, 5, 7, 7], dtype="int32")
    rows, labels = negative_candidates(mx.nd, EmbeddingExpansion(2, 2, l2_norm=False), mx.nd.array(x),
                                       mx.nd.array(y, dtype="int32"))
    expected = [[3, 0], [0, 3], [0, 0], [6, 6], [2, 1], [2, 2], [1, 2], [4, 4]]
    np.testing.assert_allclose(rows.asnumpy(), expected, atol=1e-6,
                               err_msg="originals, then S_1, S_2 of each pair once")
    assert labels.asnumpy().tolist() == [5, 5, 7, 7, 5, 7, 5, 7], f"labels {labels.asnumpy().tolist()}"


# ----------------------------------------------------------------------------- degenerate cases
@pytest.mark.parametrize("n", [0, 2])
def test_no_active_triplet_gives_exactly_zero(n):
    rng = np.random.RandomState(9)
    x = np.repeat(np.eye(8)[:4], 4, axis=0) + 0.01 * rng.randn(16, 8)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.repeat([4, 1, 9, 2], 4).astype("int32")
    value, grad = mx_loss_and_grad(TripletSemiHardLoss(0.2, True, 4, n), x, y)
    np.testing.assert_array_equal(value, 0.0, err_msg="all triplets satisfied: loss must be exactly 0")
    np.testing.assert_array_equal(grad, 0.0, err_msg="all triplets satisfied: gradient must be exactly 0")


@pytest.mark.parametrize("block", [TripletSemiHardLoss(n_inner_pts=2, num_instances=8), SymmTripletLoss()],
                         ids=["ee", "symm"])
def test_one_class_per_batch_gives_exactly_zero(block):
    x, _ = sampler_batch(np.random.RandomState(7), 1, 8, dim=6)
    y = np.zeros(8, dtype="int32")
    value, grad = mx_loss_and_grad(block, x, y)
    np.testing.assert_array_equal(value, 0.0, err_msg="no negative: no triplet, loss exactly 0")
    np.testing.assert_array_equal(grad, 0.0, err_msg="no negative: gradient exactly 0")


@pytest.mark.parametrize("squared", [True, False])
def test_identical_embeddings_give_the_margin_and_no_gradient(squared):
    x = np.zeros((8, 4))
    x[:, 0] = 1.0
    y = np.repeat([3, 7], 4).astype("int32")
    value, grad = mx_loss_and_grad(TripletSemiHardLoss(0.2, squared, 4, 2), x, y)
    np.testing.assert_allclose(value, 0.2, rtol=1e-9, err_msg="all distances equal: every triplet gives the margin")
    np.testing.assert_array_equal(grad, 0.0, err_msg="clipped distances pass no gradient")


# ----------------------------------------------------------------------------- Symm
def test_symm_values_and_gradients_match_reference():
    x, y = sampler_batch(np.random.RandomState(40), 5, 2, dim=5, normalise=False)
    value, grad = mx_loss_and_grad(SymmTripletLoss(), x, y)
    np.testing.assert_allclose(value[0], reference_for("symm", x, y), rtol=1e-9, err_msg="symm_triplet value")
    assert value[0] > 0, "the test batch should have active triplets"
    expected = finite_difference(lambda v: reference_for("symm", v, y), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7, err_msg="symm_triplet gradient")


def test_symm_mirror_point_is_the_hardest_negative_by_hand():
    # Pair 0: A=(1,0), P=(0,1); pair 1: A=(0,-0.9), P=(1,-1.3). sym1 of pair 0 is (0,-1), which sits
    # 0.1 from pair 1's anchor.
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -0.9], [1.0, -1.3]])
    y = np.array([0, 0, 1, 1], dtype="int32")
    np.testing.assert_allclose(mirror(x[0], x[1]), [0.0, -1.0], atol=1e-9, err_msg="reflection about the x axis")
    value, _ = mx_loss_and_grad(SymmTripletLoss(margin=1.0, squared=False), x, y)
    np.testing.assert_allclose(value[0], reference_for("symm", x, y, margin=1.0, squared=False), rtol=1e-9,
                               err_msg="symm_triplet, hand-made batch")
    assert value[0] != reference_triplet(x, y, 1.0, False), "the mirror point should change the mined negative"


# ----------------------------------------------------------------------------- construction
@pytest.mark.parametrize(
    "cls, kwargs, fragment",
    [
        (TripletSemiHardLoss, dict(margin=-0.1), "margin"),
        (TripletSemiHardLoss, dict(margin="0.2"), "margin"),
        (TripletSemiHardLoss, dict(squared="yes"), "squared"),
        (TripletSemiHardLoss, dict(num_instances=3, n_inner_pts=2), "even"),
        (TripletSemiHardLoss, dict(n_inner_pts=-1), "n_inner_pts"),
        (SymmTripletLoss, dict(num_instances=4), "num_instances must be 2"),
        (SymmTripletLoss, dict(n_inner_pts=2), "Embedding Expansion"),
        (SymmTripletLoss, dict(symm_norm="no"), "symm_norm"),
    ],
)
def test_construction_errors(cls, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        cls(**kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), f"expected one sentence, got {message!r}"


def test_odd_num_instances_without_ee_is_accepted():
    block = TripletSemiHardLoss(num_instances=3)
    x, y = sampler_batch(np.random.RandomState(1), 3, 3, dim=4)
    value, _ = mx_loss_and_grad(block, x, y)
    np.testing.assert_allclose(value[0], reference_for("ee", x, y), rtol=1e-9, err_msg="odd layout without EE")
