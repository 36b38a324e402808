"""The Symmetrical Synthesis training recipe's regulariser and gradient multiplier.

The Symm release trains on ``loss + 5e-3 * sum over non-BatchNorm variables of |w|^2 / 2`` and
multiplies the gradient of the embedding layer by 10 before Adam's update. In a Gluon loop::

    params = regularized_params(net)                      # once
    with autograd.record():
        losses = [loss_fn(net(x), y) + reg for x, y, reg in
                  zip(xs, ys, l2_regularization(params, 5e-3, ctx))]
    autograd.backward(losses)
    scale_gradients(net.head.collect_params(), 10.0)     # between backward and trainer.step
    trainer.step(1)

Pass ``--wd=0`` with it: the optimiser's own weight decay would regularise the BatchNorm
parameters too and come on top.

Why a gradient multiplier and not ``lr_mult``: with SGD, gradient x 10 and lr_mult = 10 are the
same update. Adam divides the first moment by the root of the second, so its step hardly changes
when a gradient is multiplied by a constant (only epsilon and the optimiser's weight decay, which
is added to the gradient before the moments, see the difference); ``lr_mult = 10`` instead makes
that layer's Adam steps 10 times larger. The release multiplies gradients, so to follow it use
:func:`scale_gradients`, not ``lr_mult``.
"""
import mxnet as mx


def is_batchnorm(block):
    """True for BatchNorm layers (including SyncBatchNorm and other subclasses)."""
    return isinstance(block, mx.gluon.nn.BatchNorm)


def regularized_params(net):
    """The trainable parameters of ``net`` that do not belong to a BatchNorm layer, in order.

    Weights and biases of convolutions and dense layers are included (the release excludes only
    BatchNorm variables); parameters with ``grad_req='null'`` are left out.
    """
    excluded = set()

    def visit(block):
        if is_batchnorm(block):
            excluded.update(id(p) for p in block.params.values())
        for child in block._children.values():
            visit(child)

    visit(net)
    return [p for p in net.collect_params().values() if id(p) not in excluded and p.grad_req != "null"]


def l2_regularization(params, coefficient, contexts=None):
    """coefficient * sum over ``params`` of |w|^2 / 2, one NDArray of shape (1,) per context.

    Call it inside ``autograd.record()`` and add entry k to the loss of context k. With several
    contexts each entry is divided by their number, so that the gradients, summed over contexts
    by the trainer, are those of one regulariser.

    Parameters
    ----------
    params : list of Parameter, or ParameterDict
        Typically :func:`regularized_params` of the network.
    coefficient : float
        5e-3 in the Symm recipe.
    contexts : list of Context, optional
        Default: the contexts of the first parameter.
    """
    params = list(params.values()) if hasattr(params, "values") else list(params)
    if not params:
        raise ValueError("l2_regularization needs at least one parameter.")
    if contexts is None:
        contexts = params[0].list_ctx()
    share = float(coefficient) / len(contexts)
    terms = []
    for ctx in contexts:
        total = mx.nd.add_n(*[mx.nd.sum(mx.nd.square(p.data(ctx))) for p in params])
        terms.append(total * (0.5 * share))
    return terms


def scale_gradients(params, factor):
    """Multiply the gradients of ``params`` (on every context) by ``factor``, in place.

    Call it after ``backward`` and before ``trainer.step``. Parameters with ``grad_req='null'``
    are skipped.
    """
    params = params.values() if hasattr(params, "values") else params
    if factor == 1:
        return
    for param in params:
        if param.grad_req == "null":
            continue
        for grad in param.list_grad():
            grad *= factor
