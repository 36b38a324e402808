"""Symmetrical Synthesis: hand-computed mirror points, and SymmNPairLoss / SymmAngularLoss against
plain-loop NumPy references (float64), values and finite-difference gradients."""
import math

import mxnet as mx
import numpy as np
import pytest

from loss import SymmAngularLoss, SymmetricalSynthesis, SymmNPairLoss
from loss_helpers import cross_entropy, finite_difference, mirror, mx_loss_and_grad, regulariser  # noqa: E402

HYBRID_FLAGS = [dict(static_alloc=False, static_shape=False), dict(static_alloc=True, static_shape=True)]


# ----------------------------------------------------------------------------- reference
def symm_sets(x, **options):
    a, p = x[0::2], x[1::2]
    sym1 = [mirror(a[i], p[i], **options) for i in range(len(a))]
    sym2 = [mirror(p[i], a[i], **options) for i in range(len(a))]
    return a, p, sym1, sym2


def reference_symm_npair(x, y, reg=0.002, **options):
    x = np.asarray(x, dtype=np.float64)
    a, p, s1, s2 = symm_sets(x, **options)
    pairs = [(a, p), (a, s1), (a, s2), (p, s1), (p, s2), (s1, s2)]
    n = len(a)
    logits = [[max(float(np.dot(u[i], v[j])) for u, v in pairs) for j in range(n)] for i in range(n)]
    return cross_entropy(logits, y[0::2]) + regulariser(a, p, reg)


def angular_entry(u, v, i, j, t):
    if i == j:
        return 2 * (1 + t) * float(np.dot(u[i], v[i]))
    return 4 * t * float(np.dot(u[i] + v[i], v[j]))


def reference_symm_angular(x, y, alpha=45.0, reg=0.002, weight=1.0, **options):
    x = np.asarray(x, dtype=np.float64)
    a, p, s1, s2 = symm_sets(x, **options)
    pairs = [(a, p), (a, s1), (a, s2), (p, a), (p, s1), (p, s2), (s1, p), (s1, a), (s1, s2), (s2, p), (s2, a),
             (s2, s1)]
    t = math.tan(math.radians(alpha)) ** 2
    n = len(a)
    logits = [[max(angular_entry(u, v, i, j, t) for u, v in pairs) for j in range(n)] for i in range(n)]
    return weight * (cross_entropy(logits, y[0::2]) + regulariser(a, p, reg))


# ----------------------------------------------------------------------------- helpers
def pair_batch(rng, num_pairs, dim, scale=1.0):
    x = scale * rng.randn(2 * num_pairs, dim)
    y = np.repeat(rng.permutation(100)[:num_pairs], 2).astype("int32")
    return x, y


def synthesize(x, y=None, **options):
    y = np.arange(len(x)) // 2 if y is None else y
    rows, labels = SymmetricalSynthesis(**options)(mx.nd.array(x, dtype="float64"), mx.nd.array(y, dtype="int32"))
    return rows.asnumpy(), labels.asnumpy()


# ----------------------------------------------------------------------------- synthetic points
def test_hand_computed_mirror_points():
    # A = (1, 0), P = (0, 1): sym1 = P mirrored about the x axis = (0, -1); sym2 = A mirrored about the
    # y axis = (-1, 0). A = (2, 0), P = (1, 1): sym1 = (1, -1); sym2 = A mirrored about y = x = (0, 2).
    x = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 1.0]])
    rows, labels = synthesize(x, np.array([4, 4, 9, 9]))
    expected = np.array([[1, 0], [0, 1], [2, 0], [1, 1], [0, -1], [-1, 0], [1, -1], [0, 2]], dtype="float64")
    np.testing.assert_allclose(rows, expected, atol=1e-9, err_msg="[X; Z], Z[2i] = sym1, Z[2i+1] = sym2")
    assert labels.tolist() == [4, 4, 9, 9, 4, 4, 9, 9], f"labels not tiled: {labels.tolist()}"


@pytest.mark.parametrize(
    "options, expected",
    [
        (dict(symm_ratio=1.0), [-0.5, 0.5]),  # R - P = (0.5, 0.5) - (1, 0)
        (dict(symm_norm_ratio=2.0), [0.0, 2.0]),  # 2 (2R - P) = 2 (0, 1)
        (dict(symm_norm=True), [0.0, 2 * math.sqrt(2)]),  # (0, 1) rescaled to |A| = 2 sqrt 2
    ],
    ids=["ratio1", "norm_ratio2", "norm"],
)
def test_hand_computed_options(options, expected):
    x = np.array([[2.0, 2.0], [1.0, 0.0]])  # A = (2, 2), P = (1, 0): R = (0.5, 0.5), 2R - P = (0, 1)
    rows, _ = synthesize(x, **options)
    np.testing.assert_allclose(rows[2], mirror(x[0], x[1], **{k.replace("symm_", ""): v for k, v in options.items()}),
                               atol=1e-12, err_msg=f"{options}: block vs formula")
    np.testing.assert_allclose(rows[2], expected, atol=1e-9, err_msg=f"{options}: by hand")


def test_mirror_points_keep_norm_and_dot_product_with_the_basis():
    x, y = pair_batch(np.random.RandomState(1), 5, 6)
    rows, _ = synthesize(x, y)
    z = rows[len(x):]
    for i in range(len(x)):
        partner = x[i ^ 1]
        np.testing.assert_allclose(np.linalg.norm(z[i]), np.linalg.norm(partner), rtol=1e-9,
                                   err_msg=f"row {i}: a reflection keeps the norm")
        np.testing.assert_allclose(np.dot(z[i], x[i]), np.dot(partner, x[i]), rtol=1e-9, atol=1e-12,
                                   err_msg=f"row {i}: and the dot product with the basis")
        np.testing.assert_allclose(z[i], mirror(x[i], partner), rtol=1e-12, atol=1e-12, err_msg=f"row {i}: formula")


@pytest.mark.parametrize("flags", HYBRID_FLAGS, ids=["imperative-graph", "static"])
@pytest.mark.parametrize("ctx", [mx.cpu(0), mx.cpu(1)], ids=str)
def test_synthesis_hybridizes(flags, ctx):
    block, hybrid = SymmetricalSynthesis(), SymmetricalSynthesis()
    hybrid.hybridize(**flags)
    rng = np.random.RandomState(2)
    for pairs in (4, 8, 4):
        x, y = pair_batch(rng, pairs, 5)
        want = block(mx.nd.array(x, ctx=ctx), mx.nd.array(y, ctx=ctx))
        got = hybrid(mx.nd.array(x, ctx=ctx), mx.nd.array(y, ctx=ctx))
        np.testing.assert_allclose(got[0].asnumpy(), want[0].asnumpy(), rtol=1e-6, atol=1e-6, err_msg=f"{pairs} pairs")


# ----------------------------------------------------------------------------- losses
SYMM_OPTIONS = [dict(), dict(ratio=1.5), dict(norm=True), dict(norm_ratio=0.5)]


def block_options(options):
    return {"symm_" + key: value for key, value in options.items()}


@pytest.mark.parametrize("options", SYMM_OPTIONS, ids=str)
def test_symm_npair_matches_reference(options):
    x, y = pair_batch(np.random.RandomState(3), 5, 4)
    block = SymmNPairLoss(**block_options(options))
    value, grad = mx_loss_and_grad(block, x, y)
    assert value.shape == (1,), f"output shape {value.shape}"
    np.testing.assert_allclose(value[0], reference_symm_npair(x, y, **options), rtol=1e-9, err_msg=f"{options}")
    expected = finite_difference(lambda v: reference_symm_npair(v, y, **options), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8, err_msg=f"{options}: gradient")


@pytest.mark.parametrize("options", SYMM_OPTIONS, ids=str)
def test_symm_angular_matches_reference(options):
    x, y = pair_batch(np.random.RandomState(4), 5, 4, scale=0.5)
    block = SymmAngularLoss(**block_options(options))
    value, grad = mx_loss_and_grad(block, x, y)
    np.testing.assert_allclose(value[0], reference_symm_angular(x, y, **options), rtol=1e-9, err_msg=f"{options}")
    expected = finite_difference(lambda v: reference_symm_angular(v, y, **options), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8, err_msg=f"{options}: gradient")


def test_symm_angular_weight_and_alpha():
    x, y = pair_batch(np.random.RandomState(5), 4, 3, scale=0.5)
    value, _ = mx_loss_and_grad(SymmAngularLoss(alpha=30.0, reg=0.01, weight=2.0), x, y)
    np.testing.assert_allclose(value[0], reference_symm_angular(x, y, 30.0, 0.01, 2.0), rtol=1e-9,
                               err_msg="alpha 30, reg 0.01, weight 2")


def test_symm_npair_hand_computed():
    # Pair 0: A = (1, 0), P = (0, 1): sym1 = (0, -1), sym2 = (-1, 0). Pair 1: A' = P' = (1, 1), so
    # sym1' = sym2' = (1, 1). Max over (A,P), (A,sym1), (A,sym2), (P,sym1), (P,sym2), (sym1,sym2) of X_i . Y_j:
    #   L[0][0] = max(0, 0, -1, -1, 0, 0) = 0      L[0][1] = max(1, 1, 1, 1, 1, -1) = 1
    #   L[1][0] = max(1, -1, -1, -1, -1, -1) = 1   L[1][1] = 2
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    y = np.array([0, 0, 1, 1], dtype="int32")
    expected = (np.log(1 + np.e) + (np.log(1 + np.e) - 1)) / 2  # rows: -0 + log(1 + e), -2 + log(e + e^2)
    value, _ = mx_loss_and_grad(SymmNPairLoss(reg=0.0), x, y)
    np.testing.assert_allclose(value[0], expected, rtol=1e-9, err_msg="hand-computed logits [[0, 1], [1, 2]]")
    np.testing.assert_allclose(reference_symm_npair(x, y, reg=0.0), expected, rtol=1e-9, err_msg="reference disagrees")


def test_one_class_and_identical_embeddings_stay_finite():
    x = np.tile([[0.3, -0.2, 0.5]], (8, 1))
    y = np.zeros(8, dtype="int32")
    for block, reference in ((SymmNPairLoss(), reference_symm_npair), (SymmAngularLoss(), reference_symm_angular)):
        value, grad = mx_loss_and_grad(block, x, y)
        assert np.isfinite(value).all() and np.isfinite(grad).all(), f"{block}: not finite"
        np.testing.assert_allclose(value[0], reference(x, y), rtol=1e-9, err_msg=f"{block}: identical rows")


@pytest.mark.parametrize(
    "cls, kwargs, fragment",
    [
        (SymmNPairLoss, dict(num_instances=4), "num_instances must be 2"),
        (SymmNPairLoss, dict(n_inner_pts=2), "Embedding Expansion"),
        (SymmAngularLoss, dict(num_instances=32), "num_instances must be 2"),
        (SymmAngularLoss, dict(alpha=0), "between 0 and 90"),
        (SymmAngularLoss, dict(symm_ratio="2"), "symm_ratio"),
        (SymmetricalSynthesis, dict(num_instances=4), "num_instances must be 2"),
    ],
)
def test_construction_errors(cls, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        cls(**kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), f"expected one sentence, got {message!r}"


def test_defaults_match_the_release():
    npair, angular = SymmNPairLoss(), SymmAngularLoss()
    s = npair.synthesis
    assert (s.symm_ratio, s.symm_norm_ratio, s.symm_norm) == (2.0, 1.0, False), f"synthesis defaults {s!r}"
    assert (npair.reg, npair.weight) == (0.002, 1.0), f"symm_npair defaults {npair!r}"
    assert (angular.alpha, angular.reg, angular.weight) == (45.0, 0.002, 1.0), f"symm_angular defaults {angular!r}"
