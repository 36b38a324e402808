"""One training update: the batch split over the devices, forward, loss of the whole batch, backward,
and the update when the loss is finite (what the training loop, ``train.loop``, calls).
"""
import logging
from dataclasses import dataclass
from typing import Any, Optional

import mxnet as mx
import numpy as np

from utils.precision import loss_scale_for_step
from utils.run import faults

from .regularization import l2_regularization, regularized_params, scale_gradients

logger = logging.getLogger(__name__)


@dataclass
class StepOptions:
    """The optional parts of an update (:func:`forward_backward`): the Symmetrical Synthesis
    recipe's L2 term ``l2_coefficient * sum |w|^2 / 2`` over ``l2_params`` (None: no term), and
    ``grad_mult``, the multiplier of the gradients of ``scaled_params`` (the embedding head)."""

    l2_params: Optional[Any] = None
    l2_coefficient: float = 0.0
    scaled_params: Optional[Any] = None
    grad_mult: float = 1.0

    @classmethod
    def from_args(cls, args, net):
        """``--l2_reg`` over the parameters it regularizes, ``--embed_grad_mult`` on ``net.head``."""
        return cls(l2_params=regularized_params(net) if args.l2_reg else None, l2_coefficient=args.l2_reg,
                   scaled_params=net.head.collect_params(), grad_mult=args.embed_grad_mult)


def forward_backward(net, loss_fn, images, labels, ctx, l2_params=None, l2_coefficient=0.0,
                     scaled_params=None, grad_mult=1.0, loss_scale=1.0):
    """Split a batch over ``ctx``, embed each slice on its device, compute the loss of the whole
    batch, and back-propagate.

    Each device embeds a contiguous slice of the batch (BatchNorm sees that slice, as in MXNet's
    data parallelism). With several devices the embeddings are gathered on the first one, in
    order, so the loss sees the whole batch: the sampler's layout (classes in runs of
    num_instances, pairs in rows 2i, 2i+1), every negative of every class, and EE's synthetic
    points of every class. Computed per slice instead, a batch of 4 classes on 4 devices would give
    each device one class and no negative at all. The copy to the first device is recorded, so the
    gradient flows back to every device. On one device nothing is gathered: the original's step.
    The loss vector is back-propagated as it is: the gradient is that of its sum, as in the
    original (``trainer.step(1)``).

    Optional parts of the Symmetrical Synthesis recipe: ``l2_coefficient * sum |w|^2 / 2`` over
    ``l2_params`` joins the objective (back-propagated once, not once per sample), and the
    gradients of ``scaled_params`` are multiplied by ``grad_mult`` after the backward pass.

    ``loss_scale`` (float16's dynamic loss scaling, ``utils.precision``): what is back-propagated
    is multiplied by it; the trainer divides the gradients by it again. 1.0 multiplies nothing.

    Returns
    -------
    NDArray
        The per-sample losses of the batch, on ``ctx[0]`` (without the regulariser).
    """
    image_parts = mx.gluon.utils.split_and_load(images, ctx)  # one device: the batch itself
    whole_labels = labels.as_in_context(ctx[0])
    with mx.autograd.record():
        embeddings = [net(part) for part in image_parts]
        if len(embeddings) > 1:
            embeddings = [mx.nd.concat(*[e.as_in_context(ctx[0]) for e in embeddings], dim=0)]
        losses = loss_fn(embeddings[0], whole_labels)
        heads = [losses]
        if l2_params and l2_coefficient:
            heads += l2_regularization(l2_params, l2_coefficient, contexts=ctx)
        if loss_scale != 1.0:
            heads = [head * loss_scale for head in heads]
    mx.autograd.backward(heads)
    if scaled_params is not None and grad_mult != 1.0:
        scale_gradients(scaled_params, grad_mult)
    return losses


class NonFiniteError(ValueError):
    """Training diverged: its values became NaN or infinite. The run stops with exit code 1 (not 2:
    the input was valid), keeping its last checkpoint of a finite state."""


class NonFiniteLossError(NonFiniteError):
    """The loss became NaN or infinite."""


class NonFiniteEmbeddingsError(NonFiniteError):
    """Every test embedding of an evaluation is NaN or infinite: the network has collapsed."""


def train_step(net, loss_fn, trainer, images, labels, ctx, learning_rate, step_options=None,
               nan_policy="stop", step=0, where="", before_update=None):
    """One iteration: forward, backward and, when the loss is finite, the update.

    The loss of an iteration is the mean per-sample loss of the batch (the original's logged
    value). It is read back every iteration to catch a non-finite loss before
    the update is applied (the original read it every iteration too, to print it).

    Parameters
    ----------
    learning_rate : float
        Set on the trainer before the update (the schedule's value for this iteration).
    step_options : StepOptions, optional
        The regulariser and gradient multiplier (default: neither).
    nan_policy : {'stop', 'skip_batch'}
        On a non-finite loss, raise ``NonFiniteLossError`` (naming ``where``; the caller adds how
        to go on) before updating, or skip the update and return None.
    step : int
        The global step this iteration completes (fault injection, see ``utils.run.faults``).
    before_update : callable, optional
        Called after the backward pass, right before the update.

    Returns
    -------
    float or None
        The iteration's loss, or None when its update was skipped.
    """
    trainer.set_learning_rate(learning_rate)
    options = step_options or StepOptions()
    losses = forward_backward(net, loss_fn, images, labels, ctx, l2_params=options.l2_params,
                              l2_coefficient=options.l2_coefficient, scaled_params=options.scaled_params,
                              grad_mult=options.grad_mult, loss_scale=loss_scale_for_step(trainer))
    value = float(losses.mean().asscalar())
    if faults.loss_is_nan(step):
        value = float("nan")
    if not np.isfinite(value):
        if nan_policy == "stop":
            raise NonFiniteLossError("the loss became %s at %s; parameters of that step were not "
                                     "updated" % (value, where))
        logger.warning("non-finite loss at %s: update skipped", where)
        return None
    if before_update is not None:
        before_update()
    trainer.step(1)
    return value
