"""EmbeddingExpansion against a plain-loop NumPy reference, hand-computed points, and hybridization."""
import functools

import mxnet as mx
import numpy as np
import pytest

from loss import EmbeddingExpansion
from loss_helpers import sampler_batch  # noqa: E402

# float32 batches here: EE's outputs are compared at float32 precision.
sampler_batch = functools.partial(sampler_batch, dtype="float32")

HYBRID_FLAGS = [
    dict(static_alloc=False, static_shape=False),
    dict(static_alloc=True, static_shape=False),
    dict(static_alloc=True, static_shape=True),
]
CONTEXTS = [mx.cpu(0), mx.cpu(1)]


def reference_expansion(x, y, n, l2_norm):
    """Embedding Expansion written from the formula, one point at a time."""
    batch = len(x)
    rows = [np.array(x[i], dtype=np.float64) for i in range(batch)]
    labels = [y[i] for i in range(batch)]
    for k in range(1, n + 1):
        for i in range(batch):
            partner = i + 1 if i % 2 == 0 else i - 1
            point = (k * np.asarray(x[partner], np.float64) + (n + 1 - k) * np.asarray(x[i], np.float64))
            point = point / (n + 1)
            if l2_norm:
                norm = 0.0
                for value in point:
                    norm += value * value
                point = point / np.sqrt(norm + 1e-10)
            rows.append(point)
            labels.append(y[i])
    return np.array(rows), np.array(labels)


def run(block, x, y, ctx=mx.cpu(), dtype="float32"):
    out, out_labels = block(mx.nd.array(x, ctx=ctx, dtype=dtype), mx.nd.array(y, ctx=ctx, dtype=y.dtype))
    return out.asnumpy(), out_labels.asnumpy()


def test_hand_computed_midpoints_l2_normalised():
    x = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype="float32")
    y = np.array([0, 0, 1, 1], dtype="int32")
    out, out_labels = run(EmbeddingExpansion(num_instances=2, n_inner_pts=1), x, y)
    h = np.sqrt(0.5)
    expected = np.array(
        [[1, 0], [0, 1], [-1, 0], [0, -1], [h, h], [h, h], [-h, -h], [-h, -h]], dtype="float32"
    )
    assert out.shape == (8, 2), f"expanded shape {out.shape}, expected (8, 2)"
    np.testing.assert_allclose(out, expected, atol=1e-6, err_msg="midpoints of (1,0)-(0,1) and (-1,0)-(0,-1)")
    assert out_labels.tolist() == [0, 0, 1, 1, 0, 0, 1, 1], f"labels not tiled: {out_labels.tolist()}"


def test_hand_computed_thirds_without_normalisation():
    x = np.array([[3, 0], [0, 3], [0, 0], [6, 6]], dtype="float32")
    y = np.array([5, 5, 7, 7], dtype="int32")
    out, _ = run(EmbeddingExpansion(num_instances=2, n_inner_pts=2, l2_norm=False), x, y)
    expected = np.array(
        [
            [3, 0], [0, 3], [0, 0], [6, 6],  # originals first
            [2, 1], [1, 2], [2, 2], [4, 4],  # S_1 = (1 * partner + 2 * self) / 3
            [1, 2], [2, 1], [4, 4], [2, 2],  # S_2 = (2 * partner + 1 * self) / 3
        ],
        dtype="float32",
    )
    np.testing.assert_allclose(out, expected, atol=1e-6, err_msg="points at 1/3 and 2/3 of each segment")


@pytest.mark.parametrize("n", [0, 1, 2, 4])
@pytest.mark.parametrize("l2_norm", [True, False])
def test_matches_loop_reference(n, l2_norm):
    rng = np.random.RandomState(n)
    x, y = sampler_batch(rng, num_classes=3, num_instances=4, dim=6)
    out, out_labels = run(EmbeddingExpansion(4, n, l2_norm=l2_norm), x, y)
    ref, ref_labels = reference_expansion(x, y, n, l2_norm)
    assert out.shape == ref.shape, f"n={n}: shape {out.shape} vs reference {ref.shape}"
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6, err_msg=f"n={n}, l2_norm={l2_norm}")
    assert np.array_equal(out_labels, ref_labels), f"n={n}: labels {out_labels} vs {ref_labels}"


def test_synthetic_points_lie_on_the_segment_and_on_the_sphere():
    rng = np.random.RandomState(1)
    x, y = sampler_batch(rng, num_classes=2, num_instances=4, dim=5)
    n = 3
    raw, _ = run(EmbeddingExpansion(4, n, l2_norm=False), x, y)
    normed, _ = run(EmbeddingExpansion(4, n, l2_norm=True), x, y)
    batch = len(x)
    for k in range(1, n + 1):
        for i in range(batch):
            point = raw[k * batch + i]
            partner = x[i ^ 1]
            # Distance along the segment from X[i] is k / (n + 1) of its length.
            expected = x[i] + (partner - x[i]) * k / (n + 1)
            np.testing.assert_allclose(point, expected, atol=1e-6, err_msg=f"S_{k}[{i}] is off the segment")
    norms = np.linalg.norm(normed[batch:], axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5, err_msg="normalised synthetic points must be unit vectors")
    np.testing.assert_array_equal(normed[:batch], x, err_msg="originals must come first, untouched")


def test_zero_inner_points_returns_inputs_unchanged():
    rng = np.random.RandomState(2)
    x, y = sampler_batch(rng, num_classes=2, num_instances=2, dim=3)
    out, out_labels = run(EmbeddingExpansion(2, 0), x, y)
    np.testing.assert_array_equal(out, x, err_msg="n=0 must return the embeddings unchanged")
    np.testing.assert_array_equal(out_labels, y, err_msg="n=0 must return the labels unchanged")


@pytest.mark.parametrize("label_dtype", ["int32", "int64", "float32"])
def test_label_dtype_is_kept(label_dtype):
    rng = np.random.RandomState(3)
    x, y = sampler_batch(rng, num_classes=2, num_instances=2, dim=3, label_dtype=label_dtype)
    _, out_labels = run(EmbeddingExpansion(2, 2), x, y)
    assert out_labels.dtype == np.dtype(label_dtype), f"labels came back as {out_labels.dtype}, not {label_dtype}"


@pytest.mark.parametrize("flags", HYBRID_FLAGS, ids=lambda f: f"sa{int(f['static_alloc'])}ss{int(f['static_shape'])}")
@pytest.mark.parametrize("ctx", CONTEXTS, ids=str)
@pytest.mark.parametrize("n", [0, 2])
def test_hybridized_matches_imperative(flags, ctx, n):
    imperative = EmbeddingExpansion(4, n)
    hybrid = EmbeddingExpansion(4, n)
    hybrid.hybridize(**flags)
    rng = np.random.RandomState(4)
    for num_classes in (2, 4, 2):  # batch sizes 8, 16 and back to 8, one hybridized block
        x, y = sampler_batch(rng, num_classes, 4, dim=5)
        weights = rng.randn((n + 1) * len(x), 5).astype("float32")
        grads, outs = [], []
        for block in (imperative, hybrid):
            xe = mx.nd.array(x, ctx=ctx)
            xe.attach_grad()
            with mx.autograd.record():
                out, out_labels = block(xe, mx.nd.array(y, ctx=ctx, dtype="int32"))
                scalar = (out * mx.nd.array(weights, ctx=ctx)).sum()
            scalar.backward()
            assert out.context == ctx, f"output on {out.context}, expected {ctx}"
            outs.append((out.asnumpy(), out_labels.asnumpy()))
            grads.append(xe.grad.asnumpy())
        batch = len(x)
        assert outs[1][0].shape == ((n + 1) * batch, 5), f"hybridized shape {outs[1][0].shape} at B={batch}"
        np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-6, atol=1e-6, err_msg=f"values, B={batch}")
        np.testing.assert_array_equal(outs[1][1], outs[0][1], err_msg=f"labels, B={batch}")
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6, err_msg=f"gradients, B={batch}")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(num_instances=3, n_inner_pts=1), "even"),
        (dict(num_instances=0, n_inner_pts=1), "at least 2"),
        (dict(num_instances=-2, n_inner_pts=1), "at least 2"),
        (dict(num_instances=4.0, n_inner_pts=1), "integer"),
        (dict(num_instances="4", n_inner_pts=1), "integer"),
        (dict(num_instances=True, n_inner_pts=1), "integer"),
        (dict(num_instances=4, n_inner_pts=-1), "at least 0"),
        (dict(num_instances=4, n_inner_pts=1.5), "integer"),
        (dict(num_instances=4, n_inner_pts=None), "integer"),
        (dict(num_instances=4, n_inner_pts=1, l2_norm="yes"), "True or False"),
    ],
)
def test_construction_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        EmbeddingExpansion(**kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), f"expected one sentence, got {message!r}"


def test_numpy_integers_are_accepted():
    block = EmbeddingExpansion(np.int64(4), np.int32(2), np.bool_(True))
    assert (block.num_instances, block.n_inner_pts, block.l2_norm) == (4, 2, True), f"got {block!r}"
