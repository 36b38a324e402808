"""LiftedStructuredLoss and SymmLiftedLoss against a plain-loop NumPy reference (float64)."""
import numpy as np
import pytest

from loss import LiftedStructuredLoss, SymmLiftedLoss
from loss_helpers import ee_points, finite_difference, mirror, mx_loss_and_grad, sampler_batch  # noqa: E402



# ----------------------------------------------------------------------------- reference
def distance(a, b):
    return np.sqrt(min(max(np.dot(a, a) + np.dot(b, b) - 2 * np.dot(a, b), 1e-12), 1e12))


def reference_lifted(x, y, margin=1.0, synthetic=((), ())):
    """1 / (2|P|) sum over {i, j} in P of relu(J_ij)^2, J from the paper's eq. 4."""
    x = np.asarray(x, dtype=np.float64)
    rows = list(x) + list(synthetic[0])
    labels = list(y) + list(synthetic[1])
    total, num_pairs = 0.0, 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            if y[i] != y[j]:
                continue
            num_pairs += 1
            terms = [np.exp(margin - distance(x[i], rows[k])) for k in range(len(rows)) if labels[k] != y[i]]
            terms += [np.exp(margin - distance(x[j], rows[k])) for k in range(len(rows)) if labels[k] != y[j]]
            if not terms:
                continue
            objective = np.log(sum(terms)) + distance(x[i], x[j])
            total += max(objective, 0.0) ** 2
    return total / (2 * num_pairs) if num_pairs else 0.0


def reference_for(kind, x, y, n=0, l2_norm=True, margin=1.0):
    x = np.asarray(x, dtype=np.float64)
    if kind == "symm":
        return reference_lifted(x, y, margin, ([mirror(x[i], x[i ^ 1]) for i in range(len(x))], list(y)))
    return reference_lifted(x, y, margin, ee_points(x, y, n, l2_norm))


# ----------------------------------------------------------------------------- helpers
# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("n", [0, 1, 2, 4])
@pytest.mark.parametrize("margin", [1.0, 0.5])
@pytest.mark.parametrize("num_instances", [2, 4])
def test_values_match_reference(n, margin, num_instances):
    x, y = sampler_batch(np.random.RandomState(50 + n), 16 // num_instances, num_instances, dim=6)
    value, _ = mx_loss_and_grad(LiftedStructuredLoss(margin, num_instances, n), x, y)
    assert value.shape == (1,), f"output shape {value.shape}, expected (1,)"
    np.testing.assert_allclose(value[0], reference_for("ee", x, y, n, True, margin), rtol=1e-9,
                               err_msg=f"n={n}, margin={margin}")


@pytest.mark.parametrize("n, l2_norm", [(0, True), (2, True), (2, False)])
def test_gradients_match_finite_differences(n, l2_norm):
    x, y = sampler_batch(np.random.RandomState(60 + n), 3, 4, dim=5)
    _, grad = mx_loss_and_grad(LiftedStructuredLoss(1.0, 4, n, l2_norm), x, y)
    expected = finite_difference(lambda v: reference_for("ee", v, y, n, l2_norm), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7, err_msg=f"n={n}, l2_norm={l2_norm}")


def test_hand_computed_single_pair():
    # Pair {0, 1} at distance 1 (class 0), one negative per anchor of class 1; margin 1.
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 3.0]])
    y = np.array([0, 0, 1, 1], dtype="int32")
    d = lambda a, b: np.linalg.norm(x[a] - x[b])  # noqa: E731
    j01 = np.log(np.exp(1 - d(0, 2)) + np.exp(1 - d(0, 3)) + np.exp(1 - d(1, 2)) + np.exp(1 - d(1, 3))) + d(0, 1)
    j23 = np.log(np.exp(1 - d(2, 0)) + np.exp(1 - d(2, 1)) + np.exp(1 - d(3, 0)) + np.exp(1 - d(3, 1))) + d(2, 3)
    expected = (max(j01, 0) ** 2 + max(j23, 0) ** 2) / (2 * 2)
    value, _ = mx_loss_and_grad(LiftedStructuredLoss(), x, y)
    np.testing.assert_allclose(value[0], expected, rtol=1e-9, err_msg="two positive pairs by hand")


@pytest.mark.parametrize("n", [0, 2])
def test_no_active_pair_gives_exactly_zero(n):
    # Classes 100 apart: J = log(sum exp(1 - 100)) + ~0 < 0 for every pair.
    rng = np.random.RandomState(2)
    x = np.repeat(100 * np.eye(6)[:3], 4, axis=0) + 0.01 * rng.randn(12, 6)
    y = np.repeat([3, 1, 2], 4).astype("int32")
    value, grad = mx_loss_and_grad(LiftedStructuredLoss(1.0, 4, n, l2_norm=False), x, y)
    np.testing.assert_array_equal(value, 0.0, err_msg="every J < 0: loss must be exactly 0")
    np.testing.assert_array_equal(grad, 0.0, err_msg="every J < 0: gradient must be exactly 0")


@pytest.mark.parametrize("block", [LiftedStructuredLoss(num_instances=8, n_inner_pts=2), SymmLiftedLoss()],
                         ids=["ee", "symm"])
def test_one_class_per_batch_gives_exactly_zero(block):
    x, _ = sampler_batch(np.random.RandomState(7), 1, 8, dim=6)
    y = np.zeros(8, dtype="int32")
    value, grad = mx_loss_and_grad(block, x, y)
    np.testing.assert_array_equal(value, 0.0, err_msg="no negative: loss exactly 0")
    np.testing.assert_array_equal(grad, 0.0, err_msg="no negative: gradient exactly 0")


def test_identical_embeddings_match_reference_without_gradient():
    x = np.zeros((8, 4))
    x[:, 1] = 1.0
    y = np.repeat([3, 7], 4).astype("int32")
    value, grad = mx_loss_and_grad(LiftedStructuredLoss(num_instances=4, n_inner_pts=2), x, y)
    np.testing.assert_allclose(value[0], reference_for("ee", x, y, 2), rtol=1e-9, err_msg="identical embeddings")
    np.testing.assert_array_equal(grad, 0.0, err_msg="clipped distances pass no gradient")


def test_large_distances_stay_finite():
    x, y = sampler_batch(np.random.RandomState(3), 4, 2, dim=4, normalise=False)
    value, grad = mx_loss_and_grad(LiftedStructuredLoss(), 300 * x, y, dtype="float32")
    assert np.isfinite(value).all() and np.isfinite(grad).all(), "log-sum-exp must not overflow"


def test_symm_values_and_gradients_match_reference():
    x, y = sampler_batch(np.random.RandomState(70), 4, 2, dim=5, normalise=False)
    value, grad = mx_loss_and_grad(SymmLiftedLoss(), x, y)
    np.testing.assert_allclose(value[0], reference_for("symm", x, y), rtol=1e-9, err_msg="symm_lifted value")
    assert value[0] != reference_for("ee", x, y), "mirror points should change the loss"
    expected = finite_difference(lambda v: reference_for("symm", v, y), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7, err_msg="symm_lifted gradient")


@pytest.mark.parametrize(
    "cls, kwargs, fragment",
    [
        (LiftedStructuredLoss, dict(margin=None), "margin"),
        (LiftedStructuredLoss, dict(num_instances=5, n_inner_pts=1), "even"),
        (SymmLiftedLoss, dict(num_instances=4), "num_instances must be 2"),
        (SymmLiftedLoss, dict(n_inner_pts=1), "Embedding Expansion"),
    ],
)
def test_construction_errors(cls, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        cls(**kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), f"expected one sentence, got {message!r}"
