"""Shared pieces of the loss tests: MXNet value + gradient, and central finite differences."""
import mxnet as mx
import numpy as np

STEP = 1e-6  # finite-difference step (float64 inputs)


def mx_loss_and_grad(block, x, y, dtype="float64"):
    """The block's output and the gradient of its sum with respect to ``x``, as NumPy arrays."""
    xe = mx.nd.array(x, dtype=dtype)
    xe.attach_grad()
    with mx.autograd.record():
        value = block(xe, mx.nd.array(y, dtype=y.dtype))
    value.backward()
    return value.asnumpy(), xe.grad.asnumpy()


def finite_difference(fn, x, step=STEP):
    """Central differences of the scalar ``fn`` at every entry of ``x``."""
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        grad[index] = (fn(plus) - fn(minus)) / (2 * step)
    return grad


# ------------------------------------------------------------- NumPy references shared by tests
# Written from the papers' formulas, one point at a time, in float64; never from the code under test.

def ee_points(x, y, n, l2_norm):
    """EE's distinct synthetic points: S_k[2j] = (k X[2j+1] + (n+1-k) X[2j]) / (n+1), k = 1..n,
    each optionally L2-normalised (with EE's 1e-10 inside the root), and their labels."""
    points, labels = [], []
    for k in range(1, n + 1):
        for j in range(len(x) // 2):
            point = (k * x[2 * j + 1] + (n + 1 - k) * x[2 * j]) / (n + 1)
            if l2_norm:
                point = point / np.sqrt(np.sum(point * point) + 1e-10)
            points.append(point)
            labels.append(y[2 * j])
    return points, labels


def mirror(basis, other, ratio=2.0, norm_ratio=1.0, norm=False):
    """Symm's Q(A, P) = c (s R - P), R = A + ((P - A) . U) U, U = A / |A|; optionally rescaled
    to |A|."""
    basis_norm = np.sqrt(np.dot(basis, basis) + 1e-12)
    unit = basis / basis_norm
    projection = basis + np.dot(other - basis, unit) * unit
    point = norm_ratio * (ratio * projection - other)
    if norm:
        point = point / np.sqrt(np.dot(point, point) + 1e-12) * basis_norm
    return point


def cross_entropy(logits, y):
    """N-pair's softmax loss: mean over rows of -sum_j T_ij log softmax(L_i)_j, T = same label
    row-normalised."""
    total = 0.0
    for i in range(len(logits)):
        top = max(logits[i])
        log_norm = top + np.log(sum(np.exp(v - top) for v in logits[i]))
        same = [j for j in range(len(logits)) if y[j] == y[i]]
        total += -sum(logits[i][j] - log_norm for j in same) / len(same)
    return total / len(logits)


def regulariser(a, p, reg):
    """N-pair's embedding regulariser: reg * 0.25 * (mean |a|^2 + mean |p|^2)."""
    return reg * 0.25 * (np.mean([np.dot(v, v) for v in a]) + np.mean([np.dot(v, v) for v in p]))


def sampler_batch(rng, num_classes, num_instances, dim, normalise=True, label_dtype="int32", dtype="float64"):
    """Random embeddings in the sampler's layout (num_instances consecutive rows per class, classes
    drawn from 0..99), L2-normalised unless ``normalise`` is False."""
    x = rng.randn(num_classes * num_instances, dim)
    if normalise:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.repeat(rng.permutation(100)[:num_classes], num_instances).astype(label_dtype)
    return x.astype(dtype), y
