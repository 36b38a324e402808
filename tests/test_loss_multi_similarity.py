"""MultiSimilarityLoss against a plain-loop NumPy reference of the paper's mining and loss."""
import numpy as np
import pytest

from loss import MultiSimilarityLoss
from loss_helpers import ee_points, finite_difference, mx_loss_and_grad, sampler_batch  # noqa: E402



def reference_ms(x, y, alpha=2.0, beta=50.0, base=0.5, epsilon=0.1, n=0, l2_norm=True):
    x = np.asarray(x, dtype=np.float64)
    synthetic, synthetic_labels = ee_points(x, y, n, l2_norm)
    rows, labels = list(x) + synthetic, list(y) + synthetic_labels
    total = 0.0
    for i in range(len(x)):
        pos = [float(np.dot(x[i], x[j])) for j in range(len(x)) if j != i and y[j] == y[i]]
        neg = [float(np.dot(x[i], rows[k])) for k in range(len(rows)) if labels[k] != y[i]]
        if not pos or not neg:
            continue
        kept_neg = [s for s in neg if s + epsilon > min(pos)]
        kept_pos = [s for s in pos if s - epsilon < max(neg)]
        if not kept_neg or not kept_pos:
            continue
        total += np.log(1 + sum(np.exp(-alpha * (s - base)) for s in kept_pos)) / alpha
        total += np.log(1 + sum(np.exp(beta * (s - base)) for s in kept_neg)) / beta
    return total / len(x)


@pytest.mark.parametrize("n", [0, 1, 2, 4])
@pytest.mark.parametrize("params", [(2.0, 50.0, 0.5, 0.1), (2.0, 40.0, 1.0, 0.05), (10.0, 1.2, 0.5, 0.3)],
                         ids=["paper", "release", "other"])
@pytest.mark.parametrize("num_instances", [2, 4])
def test_values_match_reference(n, params, num_instances):
    x, y = sampler_batch(np.random.RandomState(80 + n), 16 // num_instances, num_instances, dim=6)
    value, _ = mx_loss_and_grad(MultiSimilarityLoss(*params, num_instances, n), x, y)
    assert value.shape == (1,), f"output shape {value.shape}, expected (1,)"
    np.testing.assert_allclose(value[0], reference_ms(x, y, *params, n=n), rtol=1e-9, atol=1e-12,
                               err_msg=f"n={n}, params={params}")


@pytest.mark.parametrize("n, l2_norm", [(0, True), (2, True), (2, False)])
def test_gradients_match_finite_differences(n, l2_norm):
    x, y = sampler_batch(np.random.RandomState(90 + n), 3, 4, dim=5)
    value, grad = mx_loss_and_grad(MultiSimilarityLoss(2.0, 10.0, 0.5, 0.1, 4, n, l2_norm), x, y)
    assert value[0] > 0, "test batch should have mined pairs"
    expected = finite_difference(lambda v: reference_ms(v, y, 2.0, 10.0, 0.5, 0.1, n, l2_norm), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7, err_msg=f"n={n}, l2_norm={l2_norm}")


def test_hand_computed_mining():
    # Similarities: s01 = 0.6, s02 = 0.8, s03 = -1, s12 = 0.96, s13 = -0.6, s23 = -0.8; classes {0,1}, {2,3};
    # alpha 2, beta 50, base 0.5, epsilon 0.1.
    x = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [-1.0, 0.0]])
    y = np.array([0, 0, 1, 1], dtype="int32")
    pos = lambda s: np.log(1 + np.exp(-2 * (s - 0.5))) / 2  # noqa: E731
    neg = lambda *s: np.log(1 + sum(np.exp(50 * (v - 0.5)) for v in s)) / 50  # noqa: E731
    per_anchor = [
        pos(0.6) + neg(0.8),  # anchor 0: negative -1 is dropped (-1 + 0.1 < 0.6)
        pos(0.6) + neg(0.96),  # anchor 1: negative -0.6 is dropped
        pos(-0.8) + neg(0.8, 0.96),  # anchor 2: both negatives kept
        pos(-0.8) + neg(-0.6),  # anchor 3: negative -1 is dropped (-1 + 0.1 < -0.8)
    ]
    value, _ = mx_loss_and_grad(MultiSimilarityLoss(), x, y)
    np.testing.assert_allclose(value[0], np.mean(per_anchor), rtol=1e-9, err_msg="hand-computed mining and loss")
    np.testing.assert_allclose(reference_ms(x, y), np.mean(per_anchor), rtol=1e-12, err_msg="reference disagrees")


def test_no_mined_pair_gives_exactly_zero():
    rng = np.random.RandomState(4)
    x = np.repeat(np.eye(8)[:4], 4, axis=0) + 0.01 * rng.randn(16, 8)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.repeat([4, 1, 9, 2], 4).astype("int32")
    value, grad = mx_loss_and_grad(MultiSimilarityLoss(num_instances=4, n_inner_pts=0), x, y)
    np.testing.assert_array_equal(value, 0.0, err_msg="negatives far below every positive: loss exactly 0")
    np.testing.assert_array_equal(grad, 0.0, err_msg="no mined pair: gradient exactly 0")


def test_one_class_per_batch_gives_exactly_zero():
    x, _ = sampler_batch(np.random.RandomState(7), 1, 8, dim=6)
    y = np.zeros(8, dtype="int32")
    value, grad = mx_loss_and_grad(MultiSimilarityLoss(num_instances=8, n_inner_pts=2), x, y)
    np.testing.assert_array_equal(value, 0.0, err_msg="no negative: loss exactly 0")
    np.testing.assert_array_equal(grad, 0.0, err_msg="no negative: gradient exactly 0")


def test_identical_embeddings_match_reference():
    x = np.tile([[0.6, 0.8, 0.0]], (8, 1))
    y = np.repeat([3, 7], 4).astype("int32")
    value, grad = mx_loss_and_grad(MultiSimilarityLoss(num_instances=4, n_inner_pts=2), x, y)
    np.testing.assert_allclose(value[0], reference_ms(x, y, n=2), rtol=1e-9, err_msg="identical embeddings")
    expected = finite_difference(lambda v: reference_ms(v, y, n=2), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6, err_msg="identical embeddings, gradient")


@pytest.mark.parametrize("kwargs, fragment", [(dict(alpha=0), "positive"), (dict(beta=-1), "positive"),
                                              (dict(epsilon="0.1"), "epsilon"),
                                              (dict(num_instances=3, n_inner_pts=2), "even")])
def test_construction_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        MultiSimilarityLoss(**kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), f"expected one sentence, got {message!r}"
