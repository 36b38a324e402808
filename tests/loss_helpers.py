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
