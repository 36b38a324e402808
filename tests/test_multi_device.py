"""Data parallel over two contexts: each device embeds its slice, one loss sees the whole batch;
one step equals the same step on one context with the same embeddings."""
import mxnet as mx
import numpy as np

import model
from loss import get_loss
from train.step import forward_backward


def _setup(ctx, num_instances=4):
    mx.random.seed(7)
    net = model.build_network("googlenet", embed_dim=16)
    model.initialize_network(net, ctx, pretrained="none")
    net.hybridize(static_alloc=True)
    loss_fn = get_loss("hphn_triplet", margin=0.2, num_instances=num_instances, n_inner_pts=2)
    loss_fn.hybridize(static_alloc=True)
    trainer = mx.gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-2, "wd": 5e-4},
                               kvstore="device" if len(ctx) > 1 else None)
    return net, loss_fn, trainer


def test_two_devices_with_one_class_each_train_with_the_loss_of_the_whole_batch():
    rng = np.random.default_rng(0)
    images = mx.nd.array(rng.integers(0, 256, size=(16, 32, 32, 3)), dtype="uint8")
    # Two classes of 8 and num_instances=8: each device's slice holds one class only.
    labels = mx.nd.array(np.repeat(np.arange(2), 8), dtype="int32")

    two = [mx.cpu(0), mx.cpu(1)]
    net2, loss2, trainer2 = _setup(two, num_instances=8)
    losses = forward_backward(net2, loss2, images, labels, two)
    assert losses.context == mx.cpu(0) and losses.shape[0] >= 16, \
        "one loss vector for the whole batch, on the first device: %s %s" % (losses.context, losses.shape)
    # The gradient of a data-parallel step is the sum of the devices' gradients (the kvstore adds them).
    grads2 = {k: v.grad(mx.cpu(0)).asnumpy() + v.grad(mx.cpu(1)).asnumpy()
              for k, v in net2._collect_params_with_prefix().items() if v.grad_req != "null"}
    trainer2.step(1)

    one = [mx.cpu(0)]
    net1, loss1, trainer1 = _setup(one, num_instances=8)
    net1(images[:8])  # finish deferred initialisation (inference mode: BatchNorm stats untouched)
    initial = {k: v.data(mx.cpu(0)).asnumpy().copy() for k, v in net1._collect_params_with_prefix().items()}
    with mx.autograd.record():
        # The same embeddings: each slice through the network on its own (BatchNorm sees the
        # per-device slice), then one loss over the concatenated batch.
        embeddings = mx.nd.concat(net1(images[:8]), net1(images[8:]), dim=0)
        want_losses = loss1(embeddings, labels)
    want_losses.backward()
    grads1 = {k: v.grad(mx.cpu(0)).asnumpy().copy() for k, v in net1._collect_params_with_prefix().items()
              if v.grad_req != "null"}
    trainer1.step(1)
    assert np.allclose(losses.asnumpy(), want_losses.asnumpy(), rtol=1e-5, atol=1e-6), \
        "loss: two devices %r, one device %r" % (losses.asnumpy(), want_losses.asnumpy())
    # The degenerate per-slice loss (one class, no negative) would differ: the whole batch has negatives.
    per_slice = np.concatenate([loss1(net1(images[:8]), labels[:8]).asnumpy(),
                                loss1(net1(images[8:]), labels[8:]).asnumpy()])
    assert not np.allclose(per_slice.mean(), want_losses.asnumpy().mean(), rtol=1e-3), \
        "the test must tell the whole-batch loss from the per-slice one"
    for name, grad in grads1.items():
        assert np.allclose(grads2[name], grad, rtol=1e-4, atol=1e-6), \
            "gradient of %s: two devices differ from one by %g" % (name, np.abs(grads2[name] - grad).max())

    params1 = net1._collect_params_with_prefix()
    changed = 0
    for name, param in net2._collect_params_with_prefix().items():
        if param.grad_req == "null":
            # BatchNorm running statistics are per device and not synchronised (as in MXNet);
            # the one-context reference updated them twice.
            continue
        got0 = param.data(mx.cpu(0)).asnumpy()
        got1 = param.data(mx.cpu(1)).asnumpy()
        want = params1[name].data(mx.cpu(0)).asnumpy()
        assert np.allclose(got0, got1, atol=1e-6), "%s differs between the two devices" % name
        assert np.allclose(got0, want, rtol=1e-4, atol=1e-5), \
            "%s: two-device step differs from the one-device step by %g" % (name, np.abs(got0 - want).max())
        changed += not np.allclose(want, initial[name])
    assert changed > 10, "the step must actually change the parameters (changed %d)" % changed


# ---------------------------------------------------------------------- whole runs on cpu:2

import json  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402
from conftest import SUBPROCESS_TIMEOUT, subprocess_env  # noqa: E402

from data.demo import generate_demo  # noqa: E402
from train.optimizer import device_free_states  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return str(generate_demo(str(tmp_path_factory.mktemp("demo") / "d"), classes=8, per_class=6, size=40, seed=3))


def train(demo_dir, save_dir, *extra, backbone="googlenet"):
    """A short run. ResNet-18's BatchNorm layers initialise on the first forward pass (deferred),
    which is the evaluation before training (--eval_at_start=True, the default)."""
    proc = subprocess.run(
        [sys.executable, "main.py", "--data_name=demo", "--data_dir=" + demo_dir, "--save_dir=" + save_dir,
         "--pretrained=none", "--backbone=" + backbone, "--image_size=32", "--embed_dim=16", "--batch_size=8", "--num_instances=4",
         "--num_workers=0", "--epochs=2", "--eval_epoch_term=1", "--lr=0.001", "--progress=False"] + list(extra),
        cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, env=subprocess_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def epoch_losses(save_dir):
    rows = open(os.path.join(save_dir, "summary.csv")).read().splitlines()[1:]
    return [float(row.split(",")[2]) for row in rows]


def test_a_cpu2_run_evaluates_what_evaluate_py_measures(demo_dir, tmp_path):
    two, one = str(tmp_path / "two"), str(tmp_path / "one")
    train(demo_dir, two, "--gpu_idx=cpu:2")
    train(demo_dir, one, "--gpu_idx=-1")
    for run in (one, two):
        last = json.load(open(os.path.join(run, "results.json")))["last"]
        proc = subprocess.run(
            [sys.executable, "evaluate.py", "--checkpoint", os.path.join(run, "model_last.params"), "--gpu_idx=-1",
             "--num_workers", "0", "--batch_size", "8", "--out", str(tmp_path / "m.json")], cwd=ROOT, capture_output=True, text=True,
            timeout=SUBPROCESS_TIMEOUT, env=subprocess_env())
        assert proc.returncode == 0, proc.stderr[-2000:]
        measured = json.load(open(str(tmp_path / "m.json")))["metrics"]
        for key in ("R@1", "R@2", "MAP@R", "NMI"):
            assert abs(measured[key] - last[key]) < 1e-9, "%s: training evaluated %s, evaluate.py measures %s " \
                "on the saved file (same batch size)" % (key, last[key], measured[key])
    # Each device's slice holds one class; the loss still sees the whole batch, so the epoch loss
    # is the one-device run's up to BatchNorm's statistics, taken here over 4 images of one class,
    # which raise it by a factor that depends on the CPU (epoch 1: 0.77 vs 0.49 on one machine,
    # 0.88 vs 0.37 on another). The per-slice loss, with no negative at all, was margin-sized
    # (0.008 in the measurement): far below half the one-device loss.
    two_losses, one_losses = epoch_losses(two), epoch_losses(one)
    for epoch, (a, b) in enumerate(zip(two_losses, one_losses), start=1):
        assert 0.5 * b <= a <= 4 * b, "epoch %d loss: cpu:2 %.4f vs one device %.4f" % (epoch, a, b)


def test_a_checkpoint_of_two_devices_resumes_on_one_and_the_reverse(demo_dir, tmp_path):
    for first, then in (("cpu:2", "-1"), ("-1", "cpu:2")):
        save_dir = str(tmp_path / first.replace(":", ""))
        train(demo_dir, save_dir, "--gpu_idx=" + first, "--epochs=1", backbone="resnet18_v1")
        states_files = sorted(f for f in os.listdir(save_dir) if f.endswith(".states"))
        train(demo_dir, save_dir, "--resume=auto", "--gpu_idx=" + then, "--epochs=2", backbone="resnet18_v1")
        results = json.load(open(os.path.join(save_dir, "results.json")))
        assert results["epoch"] == 2, "resumed %s -> %s: %r" % (first, then, results)
        history = json.load(open(os.path.join(save_dir, "args.json")))["history"]
        assert history[-1]["changed"]["gpu_idx"] == [first, then], history[-1]
        assert states_files, "a checkpoint with optimiser states was written"


class _RawArray:
    """Stands in for NDArray when unpickling: keeps the serialised bytes, which record the device
    (MXNet itself would load any CPU array onto cpu(0), hiding it)."""

    def __init__(self, *handle):
        self.raw = None

    def __setstate__(self, state):
        self.raw = state["handle"]


class _RawUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if name == "NDArray":
            return _RawArray
        return super().find_class(module, name)


def _raw_bytes_of(array, ctx):
    return array.as_in_context(ctx).__getstate__()["handle"]


def test_saved_optimiser_states_are_device_free():
    # A trainer whose states live on cpu(1), as a GPU run's live on its GPUs.
    ctx = [mx.cpu(1)]
    net = mx.gluon.nn.Dense(3, in_units=4)
    net.initialize(ctx=ctx)
    trainer = mx.gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.1})
    with mx.autograd.record():
        out = net(mx.nd.ones((2, 4), ctx=ctx[0])).sum()
    out.backward()
    trainer.step(1)
    live = trainer._updaters[0].states
    assert all(a.context == mx.cpu(1) for state in live.values() for a in state), "states on cpu(1)"

    import io
    mine, _ = _RawUnpickler(io.BytesIO(device_free_states(trainer))).load()
    theirs, _ = _RawUnpickler(io.BytesIO(trainer._updaters[0].get_states(dump_optimizer=True))).load()
    for index, state in live.items():
        for k, array in enumerate(state):
            assert mine[index][k].raw == _raw_bytes_of(array, mx.cpu(0)), "state %d.%d saved on cpu(0)" % (index, k)
            assert theirs[index][k].raw == _raw_bytes_of(array, mx.cpu(1)), \
                "MXNet's own save_states records the state's device (what this replaces)"
    states, optimizer = pickle.loads(device_free_states(trainer))
    for index, state in live.items():
        for k, array in enumerate(state):
            assert np.array_equal(states[index][k].asnumpy(), array.asnumpy()), "same values"
    assert optimizer.num_update == 1, "the optimiser (update counts, schedule) is saved with the states"
