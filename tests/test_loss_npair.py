"""NPairLoss (with and without EE) and AngularLoss against plain-loop NumPy references (float64)."""
import math

import numpy as np
import pytest

from loss import AngularLoss, NPairLoss
from loss_helpers import cross_entropy, finite_difference, mx_loss_and_grad, regulariser  # noqa: E402



# ----------------------------------------------------------------------------- reference
def reference_npair(x, y, reg=0.002, n=0):
    x = np.asarray(x, dtype=np.float64)
    a, p, labels = x[0::2], x[1::2], y[0::2]
    logits = [[0.0] * len(a) for _ in range(len(a))]
    for i in range(len(a)):
        for j in range(len(a)):
            candidates = [p[j]]
            if labels[i] != labels[j]:
                candidates += [(k * p[j] + (n + 1 - k) * a[j]) / (n + 1) for k in range(1, n + 1)]
            logits[i][j] = max(float(np.dot(a[i], c)) for c in candidates)
    return cross_entropy(logits, labels) + regulariser(a, p, reg)


def reference_angular(x, y, alpha=45.0, reg=0.002, weight=2.0):
    x = np.asarray(x, dtype=np.float64)
    a, p, labels = x[0::2], x[1::2], y[0::2]
    t = math.tan(math.radians(alpha)) ** 2
    logits = [[2 * (1 + t) * np.dot(a[i], p[i]) if i == j else 4 * t * np.dot(a[i] + p[i], p[j])
               for j in range(len(a))] for i in range(len(a))]
    return weight * (cross_entropy(logits, labels) + regulariser(a, p, reg))


# ----------------------------------------------------------------------------- helpers
def pair_batch(rng, num_classes, num_instances, dim, scale=1.0):
    x = scale * rng.randn(num_classes * num_instances, dim)
    y = np.repeat(rng.permutation(100)[:num_classes], num_instances).astype("int32")
    return x, y


# ----------------------------------------------------------------------------- N-pair
@pytest.mark.parametrize("n", [0, 1, 2, 4])
@pytest.mark.parametrize("num_instances", [2, 4])
@pytest.mark.parametrize("reg", [0.002, 0.5])
def test_npair_values_match_reference(n, num_instances, reg):
    x, y = pair_batch(np.random.RandomState(100 + n), 16 // num_instances, num_instances, dim=6)
    value, _ = mx_loss_and_grad(NPairLoss(reg, num_instances, n), x, y)
    assert value.shape == (1,), f"output shape {value.shape}, expected (1,)"
    np.testing.assert_allclose(value[0], reference_npair(x, y, reg, n), rtol=1e-9, err_msg=f"n={n}, reg={reg}")


@pytest.mark.parametrize("n, num_instances", [(0, 2), (0, 4), (2, 2), (3, 4)])
def test_npair_gradients_match_finite_differences(n, num_instances):
    x, y = pair_batch(np.random.RandomState(110 + n), 12 // num_instances, num_instances, dim=4)
    _, grad = mx_loss_and_grad(NPairLoss(0.002, num_instances, n), x, y)
    expected = finite_difference(lambda v: reference_npair(v, y, 0.002, n), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8, err_msg=f"n={n}, num_instances={num_instances}")


def test_npair_hand_computed():
    # Pairs (A, P): ((1,0),(1,0)) class 0 and ((0,1),(0,2)) class 1; reg 0.
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    y = np.array([0, 0, 1, 1], dtype="int32")
    # logits [[1, 0], [0, 2]]: CE = (log(1 + e^-1) + log(1 + e^-2)) / 2
    expected = (np.log(1 + np.exp(-1)) + np.log(1 + np.exp(-2))) / 2
    value, _ = mx_loss_and_grad(NPairLoss(reg=0.0), x, y)
    np.testing.assert_allclose(value[0], expected, rtol=1e-9, err_msg="two pairs by hand")
    # With EE (n = 1) the midpoint (0, 1.5) of pair 1 is no harder for A_0 (logit 0), but the midpoint
    # (1, 0) of pair 0 gives A_1 . (1, 0) = 0 = the original logit: the value is unchanged.
    value_ee, _ = mx_loss_and_grad(NPairLoss(reg=0.0, n_inner_pts=1), x, y)
    np.testing.assert_allclose(value_ee[0], expected, rtol=1e-9, err_msg="EE points no harder than P_j")


def test_npair_ee_point_becomes_the_negative_logit():
    # A_1 = (1, 1); pair 0 runs from A_0 = (2, 0) to P_0 = (0, 0.1): its midpoint (1, 0.05) beats P_0.
    x = np.array([[2.0, 0.0], [0.0, 0.1], [1.0, 1.0], [1.0, 1.2]])
    y = np.array([0, 0, 1, 1], dtype="int32")
    value, _ = mx_loss_and_grad(NPairLoss(reg=0.0, n_inner_pts=1), x, y)
    logits = [[np.dot(x[0], x[1]), np.dot(x[0], x[3])], [np.dot(x[2], [1.0, 0.05]), np.dot(x[2], x[3])]]
    np.testing.assert_allclose(value[0], cross_entropy(logits, [0, 1]), rtol=1e-9, err_msg="midpoint as negative")


def test_npair_one_class_and_identical_embeddings():
    x = np.tile([[0.3, -0.2, 0.5]], (8, 1))
    y = np.zeros(8, dtype="int32")
    value, grad = mx_loss_and_grad(NPairLoss(), x, y)
    np.testing.assert_allclose(value[0], reference_npair(x, y), rtol=1e-9, err_msg="one class, identical rows")
    np.testing.assert_allclose(grad, finite_difference(lambda v: reference_npair(v, y), x), rtol=1e-5, atol=1e-8,
                               err_msg="one class, identical rows: gradient")


# ----------------------------------------------------------------------------- angular
@pytest.mark.parametrize("alpha", [45.0, 30.0])
@pytest.mark.parametrize("num_instances", [2, 4])
def test_angular_values_and_gradients_match_reference(alpha, num_instances):
    x, y = pair_batch(np.random.RandomState(int(alpha)), 12 // num_instances, num_instances, dim=4, scale=0.5)
    block = AngularLoss(alpha, 0.002, 2.0, num_instances)
    value, grad = mx_loss_and_grad(block, x, y)
    np.testing.assert_allclose(value[0], reference_angular(x, y, alpha), rtol=1e-9, err_msg=f"alpha={alpha}")
    expected = finite_difference(lambda v: reference_angular(v, y, alpha), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8, err_msg=f"alpha={alpha}: gradient")


def test_angular_is_the_papers_f_apn_with_one_pair_per_class():
    x, y = pair_batch(np.random.RandomState(5), 4, 2, dim=3)
    a, p = x[0::2], x[1::2]
    t = 1.0  # tan(45 deg)^2
    expected = np.mean([np.log(1 + sum(np.exp(4 * t * np.dot(a[i] + p[i], p[j]) - 2 * (1 + t) * np.dot(a[i], p[i]))
                                       for j in range(4) if j != i)) for i in range(4)])
    value, _ = mx_loss_and_grad(AngularLoss(reg=0.0, weight=1.0), x, y)
    np.testing.assert_allclose(value[0], expected, rtol=1e-6, err_msg="log(1 + sum exp f_apn)")


def test_angular_identical_embeddings():
    x = np.tile([[0.3, -0.2, 0.5]], (8, 1))
    y = np.repeat([1, 2, 3, 4], 2).astype("int32")
    value, _ = mx_loss_and_grad(AngularLoss(), x, y)
    np.testing.assert_allclose(value[0], reference_angular(x, y), rtol=1e-9, err_msg="identical rows")


# ----------------------------------------------------------------------------- construction
@pytest.mark.parametrize(
    "cls, kwargs, fragment",
    [
        (NPairLoss, dict(num_instances=3), "even"),
        (NPairLoss, dict(n_inner_pts=2, l2_norm=True), "unnormalised"),
        (NPairLoss, dict(reg="0.002"), "reg"),
        (AngularLoss, dict(n_inner_pts=2), "Embedding Expansion"),
        (AngularLoss, dict(alpha=90), "between 0 and 90"),
        (AngularLoss, dict(num_instances=5), "even"),
    ],
)
def test_construction_errors(cls, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        cls(**kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), f"expected one sentence, got {message!r}"
