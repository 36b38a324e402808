"""HPHNTripletLoss against a plain-loop NumPy reference: values, gradients, hybridization, edge cases.

The reference is written from the formulas (SEMANTICS.md, "HPHN triplet"), one anchor and one
distance at a time, in float64. Gradients are compared with central finite differences of it.

One behaviour of the original that a finite difference cannot see: MXNet's max/min backward sends
the full gradient to every entry equal to the extreme. Embedding Expansion makes every synthetic
point twice (S_k[j] and S_{n+1-k}[j XOR 1] are the same point, bit for bit), so when the hardest
negative is synthetic two columns tie and both get the gradient. `test_tied_hardest_negatives_...`
checks that behaviour with the selection frozen; the plain finite-difference test uses batches whose
hardest examples are unique. The ``distinct_points`` form mines over the distinct points, each
extreme picked once: its values are the same reference's and its gradient is the finite difference
of it, also on the batches where the release's form ties.
"""
import mxnet as mx
import numpy as np
import pytest

from loss import HPHNTripletLoss
from loss_helpers import sampler_batch  # noqa: E402

HYBRID_FLAGS = [
    dict(static_alloc=False, static_shape=False),
    dict(static_alloc=True, static_shape=False),
    dict(static_alloc=True, static_shape=True),
]
CONTEXTS = [mx.cpu(0), mx.cpu(1)]
STEP = 1e-6  # finite-difference step (float64)


# ----------------------------------------------------------------------------- reference
def reference_expansion(x, y, n, l2_norm):
    """Originals, then S_k[i] = (k X[i^1] + (n+1-k) X[i]) / (n+1) for k = 1..n; labels repeated."""
    batch = len(x)
    rows, labels = [x[i] for i in range(batch)], [y[i] for i in range(batch)]
    for k in range(1, n + 1):
        for i in range(batch):
            point = (k * x[i ^ 1] + (n + 1 - k) * x[i]) / (n + 1)
            if l2_norm:
                point = point / np.sqrt(np.sum(point * point) + 1e-10)
            rows.append(point)
            labels.append(y[i])
    return rows, labels


def reference_distance(a, b):
    """sqrt(clip(|a|^2 + |b|^2 - 2 a.b, 1e-12, 1e12))."""
    squared = np.dot(a, a) + np.dot(b, b) - 2.0 * np.dot(a, b)
    return float(np.sqrt(min(max(squared, 1e-12), 1e12)))


def reference_hphn(x, y, margin, soft_margin, n, l2_norm=True):
    """Loss per original row, plus what each anchor selected (for the gradient tests).

    Returns (losses, selections); selections[i] = (slope, positive pairs, negative pairs, gaps) where
    the pair lists hold every (row, column) of E attaining the hardest positive / negative, slope is
    d loss / d (d_ap - d_an), and gaps are the distances to the nearest kink (second-best candidate,
    hinge corner).
    """
    x = np.asarray(x, dtype=np.float64)
    rows, labels = reference_expansion(x, y, n, l2_norm)
    batch, total = len(x), len(rows)
    losses, selections = [], []
    for i in range(batch):
        positives = {}
        for j in range(batch):  # originals only, the anchor itself included
            if labels[j] == labels[i]:
                positives[(i, j)] = reference_distance(rows[i], rows[j])
        d_ap = max(positives.values())

        negatives = {}
        for k in range(n + 1):  # the anchor and each of its synthetic points
            r = i + k * batch
            row = [reference_distance(rows[r], rows[c]) for c in range(total)]
            found = False
            for c in range(total):
                if labels[c] != labels[r]:
                    negatives[(r, c)] = row[c]
                    found = True
            if not found:  # no negative in the batch: the original falls back on the row maximum
                negatives[(r, "row max")] = max(row)
        d_an = min(negatives.values())

        z = d_ap - d_an
        if soft_margin:
            losses.append(np.log(1.0 + np.exp(z)))
            slope, hinge_gap = 1.0 / (1.0 + np.exp(-z)), np.inf
        else:
            losses.append(max(z + margin, 0.0))
            slope, hinge_gap = float(z + margin > 0), abs(z + margin)
        pos_pairs = [p for p, d in positives.items() if d == d_ap]
        neg_pairs = [p for p, d in negatives.items() if d == d_an]
        pos_values = sorted(positives.values(), reverse=True)
        neg_values = sorted(negatives.values())
        gaps = (
            pos_values[0] - pos_values[1] if len(pos_values) > 1 else np.inf,
            neg_values[1] - neg_values[0] if len(neg_values) > 1 else np.inf,
            hinge_gap,
        )
        selections.append((slope, pos_pairs, neg_pairs, gaps))
    return np.array(losses), selections


def finite_difference(fn, x):
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += STEP
        minus[index] -= STEP
        grad[index] = (fn(plus) - fn(minus)) / (2 * STEP)
    return grad


# ----------------------------------------------------------------------------- helpers
def mx_loss_and_grad(block, x, y, dtype="float32", ctx=mx.cpu()):
    xe = mx.nd.array(x, ctx=ctx, dtype=dtype)
    xe.attach_grad()
    with mx.autograd.record():
        values = block(xe, mx.nd.array(y, ctx=ctx, dtype=y.dtype))
    values.backward()  # as the trainer does: backward of the vector = gradient of its sum
    return values.asnumpy(), xe.grad.asnumpy()


def find_batch(n, num_instances, predicate, dim=6, num_classes=2, tries=400):
    """First seeded sampler batch whose reference selection satisfies `predicate`."""
    for seed in range(tries):
        x, y = sampler_batch(np.random.RandomState(seed), num_classes, num_instances, dim)
        if predicate(reference_hphn(x, y, 0.2, False, n)[1]):
            return x, y
    raise AssertionError(f"no batch among {tries} seeds fits the test's condition (n={n})")


def unique_and_smooth(selections, min_gap=1e-4):
    return all(min(gaps) > min_gap for _, _, _, gaps in selections)


# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize("n", [0, 1, 2, 4])
@pytest.mark.parametrize(
    "margin, soft_margin", [(0.2, False), (1e-5, False), (1.5, False), (0.2, True)],
    ids=["margin0.2", "margin1e-5", "margin1.5", "soft"],
)
@pytest.mark.parametrize("num_instances", [2, 4])
def test_values_match_reference(n, margin, soft_margin, num_instances):
    rng = np.random.RandomState(10 + n)
    x, y = sampler_batch(rng, num_classes=8 // num_instances * 2, num_instances=num_instances, dim=8)
    block = HPHNTripletLoss(margin, soft_margin, num_instances=num_instances, n_inner_pts=n)
    values, _ = mx_loss_and_grad(block, x, y)
    expected, _ = reference_hphn(x, y, margin, soft_margin, n)
    assert values.shape == (len(x),), f"loss shape {values.shape}, expected ({len(x)},)"
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=2e-6, err_msg=f"n={n}, margin={margin}")


def test_margin_shifts_hinge_values():
    x, y = sampler_batch(np.random.RandomState(3), num_classes=2, num_instances=4, dim=8)
    small = mx_loss_and_grad(HPHNTripletLoss(margin=0.1, num_instances=4, n_inner_pts=2), x, y)[0]
    large = mx_loss_and_grad(HPHNTripletLoss(margin=0.6, num_instances=4, n_inner_pts=2), x, y)[0]
    active = small > 0
    assert active.any(), "test input should have active triplets at margin 0.1"
    np.testing.assert_allclose(large[active] - small[active], 0.5, atol=1e-5, err_msg="active hinges move with the margin")


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("n", [0, 1, 2, 4])
@pytest.mark.parametrize("soft_margin", [False, True])
def test_gradient_matches_finite_differences(n, soft_margin):
    # Unique hardest positive and negative for every anchor, away from the hinge corner; with
    # n > 0, some active anchor's hardest negative is seen from one of its synthetic points, so the
    # gradient also flows through Embedding Expansion.
    def fits(selections):
        through_synthetic = any(
            slope > 0 and any(r >= 8 for r, _ in neg) for slope, _, neg, _ in selections
        )
        return unique_and_smooth(selections) and (n == 0 or through_synthetic)

    x, y = find_batch(n, 2, fits, num_classes=4)
    assert len(x) == 8, "the predicate above assumes B = 8"
    _, grad = mx_loss_and_grad(HPHNTripletLoss(0.2, soft_margin, 2, n), x, y, dtype="float64")
    expected = finite_difference(lambda v: reference_hphn(v, y, 0.2, soft_margin, n)[0].sum(), x)
    assert np.abs(expected).max() > 1e-3, "reference gradient vanished; the test would prove nothing"
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-7, err_msg=f"n={n}, soft={soft_margin}")


def frozen_selection_gradient(x, y, n, soft_margin, margin=0.2):
    """Gradient with MXNet's tie rule: every tied winner of a max/min gets the full gradient.

    With the selection frozen at x, the loss is locally
        sum_i slope_i * (sum over tied positives d(E_r, E_c) - sum over tied negatives d(E_r, E_c));
    its finite difference is the expected gradient.
    """
    _, selections = reference_hphn(x, y, margin, soft_margin, n)

    def linearised(v):
        rows, _ = reference_expansion(v, y, n, True)
        total = 0.0
        for slope, pos_pairs, neg_pairs, _ in selections:
            total += slope * sum(reference_distance(rows[r], rows[c]) for r, c in pos_pairs)
            total -= slope * sum(reference_distance(rows[r], rows[c]) for r, c in neg_pairs)
        return total

    return finite_difference(linearised, x), selections


@pytest.mark.parametrize("n", [1, 2, 4])
def test_tied_hardest_negatives_all_receive_gradient(n):
    batch = len(sampler_batch(np.random.RandomState(0), 4, 2, 6)[0])

    def synthetic_winner(selections):
        # Some active anchor's hardest negative is a synthetic column (index >= B), so it comes
        # with its twin.
        synthetic = any(slope > 0 and any(c >= batch for _, c in neg) for slope, _, neg, _ in selections)
        return synthetic and all(
            gaps[0] > 1e-4 and gaps[2] > 1e-4 for _, _, _, gaps in selections
        )

    x, y = find_batch(n, 2, synthetic_winner, num_classes=4)
    expected, selections = frozen_selection_gradient(x, y, n, soft_margin=False)
    twins = [neg for slope, _, neg, _ in selections if slope > 0 and len(neg) > 1]
    assert twins, "a synthetic hardest negative should tie with its twin column"
    _, grad = mx_loss_and_grad(HPHNTripletLoss(0.2, False, 2, n), x, y, dtype="float64")
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-7, err_msg=f"n={n}: tied winners")
    plain = finite_difference(lambda v: reference_hphn(v, y, 0.2, False, n)[0].sum(), x)
    assert not np.allclose(grad, plain, atol=1e-4), "ties should make the gradient differ from the plain derivative"


# ----------------------------------------------------------------------------- distinct points
def distinct_negative_gaps(x, y, n):
    """Per anchor: the gap between its smallest and its second-smallest *different* negative
    distance (twins, equal by construction, count once)."""
    rows, labels = reference_expansion(np.asarray(x, dtype=np.float64), y, n, True)
    batch, gaps = len(x), []
    for i in range(batch):
        values = sorted(
            reference_distance(rows[i + k * batch], rows[c])
            for k in range(n + 1) for c in range(len(rows)) if labels[c] != labels[i]
        )
        different = [v for v in values if v > values[0] + 1e-12]
        gaps.append(different[0] - values[0] if different else np.inf)
    return gaps


@pytest.mark.parametrize("n", [0, 1, 2, 4])
@pytest.mark.parametrize("margin, soft_margin", [(0.2, False), (1e-5, False), (0.2, True)], ids=["m0.2", "m1e-5", "soft"])
def test_distinct_points_values_match_the_release_formula(n, margin, soft_margin):
    x, y = sampler_batch(np.random.RandomState(20 + n), num_classes=4, num_instances=4, dim=8)
    block = HPHNTripletLoss(margin, soft_margin, num_instances=4, n_inner_pts=n, distinct_points=True)
    for dtype, tol in (("float64", 1e-12), ("float32", 2e-6)):
        values, _ = mx_loss_and_grad(block, x, y, dtype=dtype)
        expected, _ = reference_hphn(x, y, margin, soft_margin, n)
        np.testing.assert_allclose(values, expected, rtol=tol, atol=tol, err_msg=f"n={n}, {dtype}")


@pytest.mark.parametrize("n", [1, 2, 4])
@pytest.mark.parametrize("soft_margin", [False, True])
def test_distinct_points_gradient_is_the_derivative_where_twins_tie(n, soft_margin):
    # Batches where some active anchor's hardest negative is synthetic, so the release's form
    # doubles it (its gradient must differ from the finite difference: the test can fail), with
    # every other selection unique and away from a kink.
    def fits(selections):
        tied = any(slope > 0 and len(neg) > 1 for slope, _, neg, _ in selections)
        return tied and all(gaps[0] > 1e-4 and gaps[2] > 1e-4 for _, _, _, gaps in selections)

    for seed in range(400):
        x, y = sampler_batch(np.random.RandomState(seed), 4, 2, 6)
        if fits(reference_hphn(x, y, 0.2, soft_margin, n)[1]) and min(distinct_negative_gaps(x, y, n)) > 1e-4:
            break
    else:
        raise AssertionError(f"no seeded batch with a tied synthetic hardest negative (n={n})")
    expected = finite_difference(lambda v: reference_hphn(v, y, 0.2, soft_margin, n)[0].sum(), x)
    assert np.abs(expected).max() > 1e-3, "reference gradient vanished; the test would prove nothing"
    _, release = mx_loss_and_grad(HPHNTripletLoss(0.2, soft_margin, 2, n), x, y, dtype="float64")
    assert np.abs(release - expected).max() > 1e-2, "the release's form should double the tied twin here"
    _, grad = mx_loss_and_grad(HPHNTripletLoss(0.2, soft_margin, 2, n, distinct_points=True), x, y, dtype="float64")
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-7, err_msg=f"distinct points, n={n}")


def test_distinct_points_gradient_on_a_sampler_sized_batch():
    # 8 classes x 4, n = 2: the size at which the release's form was measured 1.2-2.2 off.
    x, y = sampler_batch(np.random.RandomState(2), 8, 4, dim=16)
    expected = finite_difference(lambda v: reference_hphn(v, y, 0.2, False, 2)[0].sum(), x)
    _, grad = mx_loss_and_grad(HPHNTripletLoss(0.2, False, 4, 2, distinct_points=True), x, y, dtype="float64")
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7, err_msg="distinct points, 8 x 4, n = 2")
    _, release = mx_loss_and_grad(HPHNTripletLoss(0.2, False, 4, 2), x, y, dtype="float64")
    assert np.abs(release - expected).max() > 0.5, "the release's form should be far from the derivative here"


def test_distinct_points_one_class_batch_has_the_derivative_of_a_constant():
    # n = 0, one class: the loss is the margin whatever x is, so its derivative is 0 (the
    # release's form gives (1 - B) times the row-maximum gradient instead, tested above).
    x, _ = sampler_batch(np.random.RandomState(8), 1, 8, dim=6)
    y = np.zeros(8, dtype="int32")
    values, grad = mx_loss_and_grad(HPHNTripletLoss(0.2, num_instances=8, distinct_points=True), x, y, dtype="float64")
    np.testing.assert_array_equal(values, 0.2, err_msg="one class, n=0: loss = margin")
    np.testing.assert_array_equal(grad, 0.0, err_msg="one class, n=0: constant loss, zero gradient")


# ----------------------------------------------------------------------------- hybridization
@pytest.mark.parametrize("flags", HYBRID_FLAGS, ids=lambda f: f"sa{int(f['static_alloc'])}ss{int(f['static_shape'])}")
@pytest.mark.parametrize("ctx", CONTEXTS, ids=str)
@pytest.mark.parametrize(
    "n, soft_margin, distinct", [(0, False, False), (2, False, False), (2, True, False), (2, False, True)]
)
def test_hybridized_matches_imperative(flags, ctx, n, soft_margin, distinct):
    imperative = HPHNTripletLoss(0.2, soft_margin, num_instances=4, n_inner_pts=n, distinct_points=distinct)
    hybrid = HPHNTripletLoss(0.2, soft_margin, num_instances=4, n_inner_pts=n, distinct_points=distinct)
    hybrid.hybridize(**flags)
    rng = np.random.RandomState(5)
    for num_classes in (2, 4, 2):  # batch sizes 8, 16, 8 through one hybridized block
        x, y = sampler_batch(rng, num_classes, 4, dim=16)
        want_values, want_grad = mx_loss_and_grad(imperative, x, y, ctx=ctx)
        got_values, got_grad = mx_loss_and_grad(hybrid, x, y, ctx=ctx)
        batch = len(x)
        assert got_values.shape == (batch,), f"hybridized output {got_values.shape} at B={batch}"
        np.testing.assert_allclose(got_values, want_values, rtol=1e-6, atol=1e-6, err_msg=f"values, B={batch}")
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-6, err_msg=f"gradients, B={batch}")


# ----------------------------------------------------------------------------- degenerate cases
@pytest.mark.parametrize("n", [0, 2])
def test_identical_embeddings_give_margin_and_no_gradient(n):
    # |a|^2 + |a|^2 - 2 a.a is exactly 0 for a one-hot row, so every distance is clipped to 1e-6:
    # d_ap = d_an, the loss is the margin, and clipped distances pass no gradient.
    x = np.zeros((8, 4))
    x[:, 0] = 1.0
    y = np.repeat([3, 7], 4).astype("int32")
    values, grad = mx_loss_and_grad(HPHNTripletLoss(0.2, num_instances=4, n_inner_pts=n), x, y)
    np.testing.assert_array_equal(values, np.float32(0.2), err_msg="identical embeddings: loss = margin")
    np.testing.assert_array_equal(grad, 0.0, err_msg="identical embeddings: all distances clipped, no gradient")


def test_identical_random_embeddings_stay_finite():
    rng = np.random.RandomState(6)
    row = rng.randn(16)
    x = np.tile(row / np.linalg.norm(row), (8, 1))
    y = np.repeat([0, 1], 4).astype("int32")
    values, grad = mx_loss_and_grad(HPHNTripletLoss(0.2, num_instances=4, n_inner_pts=2), x, y)
    assert np.isfinite(values).all() and np.isfinite(grad).all(), "loss or gradient not finite"
    np.testing.assert_allclose(values, 0.2, atol=1e-3, err_msg="identical embeddings: loss about the margin")


@pytest.mark.parametrize("n", [0, 2])
def test_single_class_batch_falls_back_on_row_maximum(n):
    # No negatives: each row's d_neg is its row maximum (the original's substitution). For n = 0
    # that equals d_ap, so the loss is exactly the margin.
    x, _ = sampler_batch(np.random.RandomState(7), 1, 8, dim=6)
    y = np.zeros(8, dtype="int32")
    values, _ = mx_loss_and_grad(HPHNTripletLoss(0.2, num_instances=8, n_inner_pts=n), x, y)
    expected, _ = reference_hphn(x, y, 0.2, False, n)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=2e-6, err_msg=f"one class, n={n}")
    if n == 0:
        np.testing.assert_array_equal(values, np.float32(0.2), err_msg="one class, n=0: loss = margin exactly")


def test_single_class_batch_gradient_mirrors_the_original():
    # For n = 0 the value is constant (the margin) but the gradient is not 0: d_ap takes the row
    # maximum once, d_an takes it from all B tied entries of its row (MXNet passes the gradient to
    # each), so the gradient is (1 - B) times that of the row maxima. Kept as in the original.
    x, _ = sampler_batch(np.random.RandomState(8), 1, 8, dim=6)
    y = np.zeros(8, dtype="int32")
    batch = len(x)
    _, grad = mx_loss_and_grad(HPHNTripletLoss(0.2, num_instances=8), x, y, dtype="float64")
    farthest = [max(range(batch), key=lambda j: reference_distance(x[i], x[j])) for i in range(batch)]
    expected = finite_difference(
        lambda v: (1 - batch) * sum(reference_distance(v[i], v[farthest[i]]) for i in range(batch)), x
    )
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-7, err_msg="one class: (1 - B) x row-max gradient")


@pytest.mark.parametrize("n", [0, 2])
def test_zero_loss_when_every_triplet_is_satisfied(n):
    # Four tight clusters on orthogonal axes: d_ap < 0.1 while d_an > 1.2, margin 0.2.
    rng = np.random.RandomState(9)
    centers = np.repeat(np.eye(8)[:4], 4, axis=0)
    x = centers + 0.01 * rng.randn(16, 8)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.repeat([4, 1, 9, 2], 4).astype("int32")
    values, grad = mx_loss_and_grad(HPHNTripletLoss(0.2, num_instances=4, n_inner_pts=n), x, y)
    np.testing.assert_array_equal(values, 0.0, err_msg="all triplets satisfied: loss must be exactly 0")
    np.testing.assert_array_equal(grad, 0.0, err_msg="all triplets satisfied: gradient must be exactly 0")


@pytest.mark.parametrize("label_dtype", ["int64", "float32", "float64"])
def test_label_dtype_does_not_matter(label_dtype):
    x, y = sampler_batch(np.random.RandomState(11), 4, 4, dim=8)
    block = HPHNTripletLoss(0.2, num_instances=4, n_inner_pts=2)
    base = mx_loss_and_grad(block, x, y)
    other = mx_loss_and_grad(block, x, y.astype(label_dtype))
    np.testing.assert_array_equal(other[0], base[0], err_msg=f"{label_dtype} labels change the loss")
    np.testing.assert_array_equal(other[1], base[1], err_msg=f"{label_dtype} labels change the gradient")


# ----------------------------------------------------------------------------- construction
@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(margin="0.2"), "margin"),
        (dict(margin=float("nan")), "margin"),
        (dict(margin=None), "margin"),
        (dict(soft_margin="False"), "soft_margin"),
        (dict(num_instances=3, n_inner_pts=2), "num_instances"),
        (dict(n_inner_pts=-1), "n_inner_pts"),
        (dict(l2_norm=1), "l2_norm"),
        (dict(distinct_points="yes"), "distinct_points"),
    ],
)
def test_construction_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        HPHNTripletLoss(**kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), f"expected one sentence, got {message!r}"


def test_defaults_match_the_original():
    block = HPHNTripletLoss()
    got = (block.margin, block.soft_margin, block.expansion.num_instances, block.n_inner_pts, block.expansion.l2_norm,
           block.distinct_points)
    assert got == (0.2, False, 2, 0, True, False), f"defaults {got} differ from the original's (0.2, False, 2, 0, True, False)"
    assert not list(block.collect_params().keys()), "the loss must have no parameters"
