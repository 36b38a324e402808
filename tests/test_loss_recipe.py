"""The Symm training recipe pieces: learning-rate schedules, L2 regulariser, gradient multiplier."""
import types

import mxnet as mx
import numpy as np
import pytest

from train.regularization import l2_regularization, regularized_params, scale_gradients
from train.schedules import StepThenFixedScheduler, build_lr_scheduler, lr_scheduler_from_args


# ----------------------------------------------------------------------------- schedules
@pytest.mark.parametrize(
    "iteration, lr",
    [(0, 1e-4), (4999, 1e-4), (5000, 5e-5), (9999, 5e-5), (10000, 2.5e-5), (14999, 2.5e-5), (15000, 1e-5),
     (10 ** 6, 1e-5)],
)
def test_step_then_fixed_matches_the_symm_release(iteration, lr):
    scheduler = StepThenFixedScheduler(1e-4)
    assert isinstance(scheduler, mx.lr_scheduler.LRScheduler), "must be an MXNet LRScheduler"
    np.testing.assert_allclose(scheduler(iteration), lr, rtol=1e-12, err_msg=f"lr at iteration {iteration}")


def test_step_then_fixed_is_stateless():
    scheduler = StepThenFixedScheduler(1e-3, halve_every=10, fix_after=35, fixed_lr=1e-6)
    forward = [scheduler(t) for t in range(50)]
    backward = [scheduler(t) for t in reversed(range(50))][::-1]
    assert forward == backward, "the lr must depend on the iteration only (resume-safe)"
    assert forward[9] == 1e-3 and forward[10] == 5e-4 and forward[30] == 1.25e-4 and forward[35] == 1e-6, f"{forward}"


@pytest.mark.parametrize("kwargs, fragment", [(dict(halve_every=0), "halve_every"), (dict(fix_after=-1), "fix_after"),
                                              (dict(fixed_lr=0), "fixed_lr"), (dict(factor=2), "factor")])
def test_step_then_fixed_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        StepThenFixedScheduler(1e-4, **kwargs)


def test_multifactor_keeps_the_existing_behaviour():
    ours = build_lr_scheduler("multifactor", 1e-4, steps=[10, 20], factor=0.5)
    theirs = mx.lr_scheduler.MultiFactorScheduler(step=[10, 20], factor=0.5)
    theirs.base_lr = 1e-4
    for t in range(30):
        assert ours(t) == theirs(t), f"iteration {t}: {ours(t)} vs {theirs(t)}"
    # MXNet's MultiFactorScheduler is stateful and decays once num_update passes a step.
    fresh = build_lr_scheduler("multifactor", 1e-4, steps=[10, 20], factor=0.5)
    assert [fresh(t) for t in (5, 10, 11, 21)] == [1e-4, 1e-4, 5e-5, 2.5e-5], "x 0.5 after iterations 10 and 20"


def test_build_lr_scheduler_errors():
    with pytest.raises(ValueError, match="valid: multifactor, step"):
        build_lr_scheduler("cosine", 1e-4)
    with pytest.raises(ValueError, match="steps"):
        build_lr_scheduler("multifactor", 1e-4)


def test_lr_scheduler_from_args():
    args = types.SimpleNamespace(lr=1e-4, lr_decay_epochs=[2, 4], lr_decay_factor=0.1, lr_schedule="multifactor",
                                 lr_step_iters=5000, lr_fix_after_iters=15000, lr_fixed=1e-5)
    multifactor = lr_scheduler_from_args(args, iters_per_epoch=24)
    assert multifactor(48) == 1e-4 and np.isclose(multifactor(49), 1e-5), "decays after epoch 2 = iteration 48"
    args.lr_schedule = "step"
    step = lr_scheduler_from_args(args, iters_per_epoch=24)
    assert isinstance(step, StepThenFixedScheduler) and step(5000) == 5e-5 and step(15000) == 1e-5, f"{step!r}"


# ----------------------------------------------------------------------------- regulariser
def small_net():
    net = mx.gluon.nn.HybridSequential()
    with net.name_scope():
        net.add(mx.gluon.nn.Dense(4, in_units=3), mx.gluon.nn.BatchNorm(in_channels=4),
                mx.gluon.nn.Dense(2, in_units=4))
    return net


def test_regularized_params_exclude_batchnorm():
    net = small_net()
    names = [p.name for p in regularized_params(net)]
    assert len(names) == 4 and not any("batchnorm" in n for n in names), f"got {names}"


@pytest.mark.parametrize("contexts", [[mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]], ids=["one", "two"])
def test_l2_regularization_value_and_gradient(contexts):
    net = small_net()
    net.initialize(mx.init.Normal(1.0), ctx=contexts)
    params = regularized_params(net)
    with mx.autograd.record():
        terms = l2_regularization(params, 5e-3, contexts)
    mx.autograd.backward(terms)
    assert len(terms) == len(contexts), "one term per context"
    expected = 5e-3 * sum(0.5 * np.sum(p.data(contexts[0]).asnumpy() ** 2) for p in params)
    total = sum(t.asscalar() for t in terms)
    np.testing.assert_allclose(total, expected, rtol=1e-5, err_msg="sum over contexts = 5e-3 * sum |w|^2 / 2")
    for p in params:
        summed = sum(g.asnumpy() for g in p.list_grad())
        np.testing.assert_allclose(summed, 5e-3 * p.data(contexts[0]).asnumpy(), rtol=1e-5,
                                   err_msg=f"{p.name}: gradient summed over contexts = coefficient * w")
    for p in net.collect_params().values():
        if "batchnorm" in p.name and p.grad_req != "null":
            assert all(np.all(g.asnumpy() == 0) for g in p.list_grad()), f"{p.name} must not be regularised"


def test_scale_gradients_between_backward_and_step():
    net = small_net()
    net.initialize(mx.init.Normal(1.0))
    x = mx.nd.array(np.random.RandomState(0).randn(5, 3))
    with mx.autograd.record():
        loss = net(x).sum()
    loss.backward()
    head = net[2].collect_params()
    before = {p.name: p.grad().asnumpy().copy() for p in net.collect_params().values() if p.grad_req != "null"}
    scale_gradients(head, 10.0)
    for p in net.collect_params().values():
        if p.grad_req == "null":
            continue
        factor = 10.0 if p.name in head else 1.0
        np.testing.assert_allclose(p.grad().asnumpy(), factor * before[p.name], rtol=1e-6,
                                   err_msg=f"{p.name}: gradient x {factor}")
