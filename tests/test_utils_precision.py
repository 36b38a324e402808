"""--dtype (utils.precision): which devices may run which dtype, bfloat16 numerics against the float32
network with the same weights, and float16's dynamic loss scaling (its logic, on the CPU)."""
import mxnet as mx
import numpy as np
import pytest
from conftest import needs_bf16, write_cpuinfo

import model
from loss import get_loss
from train.step import forward_backward
from utils import precision

CPU = [mx.cpu(0)]

# Stated tolerance of one step's loss in bfloat16 against float32 (same batch, same weights):
# relative 3 %. bfloat16 keeps 8 significant bits (relative rounding 2^-9 ~ 0.2 %) in the
# convolutions; the loss itself is float32. Measured here: 0.2 % (GoogLeNet, 227 px) and see below.
LOSS_RTOL = 0.03


# ------------------------------------------------------------------------------- which dtype where

def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    assert precision.cpu_bf16_flags(write_cpuinfo(tmp_path, ["avx512_bf16"])) == ["avx512_bf16"], \
        "avx512_bf16 must be found"
    assert precision.cpu_bf16_flags(write_cpuinfo(tmp_path, ["amx_bf16", "amx_tile"])) == ["amx_bf16"], \
        "amx_bf16 must be found"
    assert precision.cpu_bf16_flags(write_cpuinfo(tmp_path, ["avx512_vnni"])) == [], \
        "avx512_vnni is not a BF16 flag"
    assert precision.cpu_bf16_flags(str(tmp_path / "missing")) == [], "no cpuinfo means no BF16"


@pytest.mark.parametrize("flags", [["avx512_bf16"], []])
def test_ee_gluon_cpuinfo_is_read_instead_of_proc_cpuinfo(tmp_path, monkeypatch, flags):
    # Both cases, so that the test fails on a CPU with BF16 and on one without when the variable is ignored.
    fake = write_cpuinfo(tmp_path, flags)
    monkeypatch.setenv("EE_GLUON_CPUINFO", fake)
    assert precision.cpuinfo_path() == fake, "the flags are read from $EE_GLUON_CPUINFO"
    assert precision.cpu_bf16_flags() == flags, "the default cpuinfo is $EE_GLUON_CPUINFO's file"
    if flags:
        assert precision.check_dtype("bfloat16", CPU, onednn=True) == "bfloat16", "its BF16 flag is honoured"
    else:
        with pytest.raises(ValueError) as error:
            precision.check_dtype("bfloat16", CPU, onednn=True)
        assert fake in str(error.value), "the refusal names the file the flags came from: %s" % error.value


def test_ee_gluon_cpuinfo_naming_no_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("EE_GLUON_CPUINFO", str(tmp_path / "typo"))
    with pytest.raises(ValueError) as error:
        precision.cpu_bf16_flags()
    message = str(error.value)
    assert "\n" not in message and "EE_GLUON_CPUINFO=%s" % (tmp_path / "typo") in message and "unset" in message, \
        message
    monkeypatch.delenv("EE_GLUON_CPUINFO")
    assert precision.cpuinfo_path() == "/proc/cpuinfo", "unset, the CPU's own flags are read"


def test_float32_runs_anywhere(tmp_path):
    for contexts in (CPU, [mx.gpu(0)]):
        assert precision.check_dtype("float32", contexts, cpuinfo=str(tmp_path / "missing")) == "float32", \
            "float32 must be accepted on %s" % contexts


@pytest.mark.parametrize("flags, hint", [(["avx512_bf16"], "--dtype=bfloat16"), ([], "--dtype=float32")])
def test_float16_on_the_cpu_is_refused_naming_the_flag_that_works(tmp_path, flags, hint):
    with pytest.raises(ValueError) as error:
        precision.check_dtype("float16", CPU, cpuinfo=write_cpuinfo(tmp_path, flags), onednn=True)
    message = str(error.value)
    assert "\n" not in message and hint in message and "--gpu_idx" in message, message


def test_float16_on_gpus_is_accepted(tmp_path):
    contexts = [mx.gpu(0), mx.gpu(1)]  # Context objects only: nothing is allocated
    assert precision.check_dtype("float16", contexts, cpuinfo=str(tmp_path / "missing")) == "float16", \
        "float16 on GPUs must be accepted"


@pytest.mark.parametrize("case, contexts, flags, onednn, hint", [
    ("gpu", [mx.gpu(0)], ["avx512_bf16"], True, "--dtype=float16"),
    ("no BF16 instructions", CPU, [], True, "--dtype=float32"),
    ("no oneDNN", CPU, ["avx512_bf16"], False, "--dtype=float32"),
])
def test_bfloat16_refused_where_it_cannot_run(tmp_path, case, contexts, flags, onednn, hint):
    with pytest.raises(ValueError) as error:
        precision.check_dtype("bfloat16", contexts, cpuinfo=write_cpuinfo(tmp_path, flags), onednn=onednn)
    message = str(error.value)
    assert "\n" not in message and hint in message, "%s: %s" % (case, message)


def test_bfloat16_accepted_with_bf16_instructions_and_onednn(tmp_path):
    assert precision.check_dtype("bfloat16", CPU, cpuinfo=write_cpuinfo(tmp_path, ["amx_bf16"]),
                                 onednn=True) == "bfloat16", "bfloat16 must be accepted"


# ---------------------------------------------------------------------------- bfloat16 numerics

def build_net(dtype, backbone="resnet18_v1", embed_dim=16, seed=0):
    """A hybridized network with the weights of ``seed``, in ``dtype``."""
    mx.random.seed(seed)
    net = model.build_network(backbone, embed_dim)
    model.initialize_network(net, CPU, pretrained="none")
    net.hybridize(static_alloc=True)
    return precision.use_mixed_precision(net, dtype)


def batch(size=8, image_size=48, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    images = mx.nd.array(rng.integers(0, 256, (size, image_size, image_size, 3)), dtype="uint8")
    labels = mx.nd.array(np.repeat(np.arange(classes), size // classes), dtype="int32")
    return images, labels


def copy_params(source, target):
    """The same weights in ``target`` (matched by structure: the two networks' prefixes differ)."""
    target_params = target._collect_params_with_prefix()
    for name, param in source._collect_params_with_prefix().items():
        target_params[name].set_data(param.data())


def cosines(a, b):
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_float32_leaves_the_network_untouched():
    net = build_net("float32")
    assert not net._cached_graph, "float32 must not trace or convert anything"


def cast_weights(net):
    """The weights the bfloat16 graph of ``net`` casts (``NAME_amp_cast_bfloat16`` nodes)."""
    names = set(net._cached_graph[1].attr_dict())
    return {name[: -len("_amp_cast_bfloat16")] for name in names if name.endswith("_amp_cast_bfloat16")}


def convolution_weights(net):
    """``(first, others)``: the weight of the convolution that reads the image (3 input
    channels) and those of the other convolutions, by shape (after a forward pass)."""
    shapes = {p.name: p.shape for p in net.collect_params().values() if p.name.endswith("_weight")}
    first = [name for name, shape in shapes.items() if len(shape) == 4 and shape[1] == 3]
    others = [name for name, shape in shapes.items() if len(shape) == 4 and shape[1] != 3]
    assert len(first) == 1 and others, "expected one image convolution, found %s" % first
    return first[0], others


@needs_bf16
@pytest.mark.parametrize("backbone", ["resnet18_v1", "googlenet"])
def test_bfloat16_graph_casts_the_backbone_but_its_first_convolution_and_the_head(backbone):
    net = build_net("bfloat16", backbone)
    net(batch()[0])
    first, others = convolution_weights(net)
    cast = cast_weights(net)
    assert first not in cast, "the first convolution (3 input channels) must stay float32"
    assert set(others) <= cast, "every other convolution must be cast: %s" % sorted(set(others) - cast)[:3]
    assert net.head.embedding.weight.name not in cast, "the head's Dense must stay float32"
    dtypes = {np.dtype(param.dtype) for param in net.collect_params().values()}
    assert dtypes == {np.dtype(np.float32)}, "parameters stay float32 master copies: %s" % dtypes


@needs_bf16
@pytest.mark.parametrize("backbone, image_size", [("resnet18_v1", 64), ("googlenet", 112)])
def test_hybridized_bfloat16_embeds_close_to_float32(backbone, image_size):
    reference, low = build_net("float32", backbone, 32), build_net("bfloat16", backbone, 32)
    images, _ = batch(size=8, image_size=image_size)
    want = reference(images).asnumpy()
    copy_params(reference, low)
    got = low(images)
    assert got.dtype == np.float32, "the network's output must be float32, got %s" % got.dtype
    got = got.asnumpy()
    assert not np.array_equal(got, want), "bfloat16 must actually compute differently from float32"
    worst = cosines(got, want).min()
    assert worst > 0.99, "%s: cosine of a bfloat16 row with its float32 row %.5f <= 0.99" % (backbone, worst)


@needs_bf16
def test_one_bfloat16_step_loss_is_close_to_float32():
    images, labels = batch(size=16, image_size=64, classes=4)
    losses = {}
    for dtype in ("float32", "bfloat16"):
        net = build_net(dtype, embed_dim=32)
        net(images[:1])  # the parameters exist before they are overwritten
        if dtype == "float32":
            reference = net
        else:
            copy_params(reference, net)
        loss_fn = get_loss("hphn_triplet", margin=0.1, num_instances=4, n_inner_pts=2)
        loss_fn.hybridize(static_alloc=True)
        per_sample = forward_backward(net, loss_fn, images, labels, CPU)
        assert per_sample.dtype == np.float32, "the loss must be float32, got %s" % per_sample.dtype
        losses[dtype] = float(per_sample.mean().asscalar())
        grad = net.head.embedding.weight.grad().asnumpy()
        assert np.isfinite(grad).all() and np.abs(grad).sum() > 0, "%s: head gradient broken" % dtype
    assert np.isfinite(losses["bfloat16"]) and losses["bfloat16"] > 0, "bfloat16 loss %r" % losses
    assert abs(losses["bfloat16"] - losses["float32"]) <= LOSS_RTOL * abs(losses["float32"]), \
        "bfloat16 loss %.6f vs float32 %.6f: beyond %.0f %%" % (losses["bfloat16"], losses["float32"],
                                                                 100 * LOSS_RTOL)


@needs_bf16
def test_use_float32_returns_to_the_float32_graph():
    reference, net = build_net("float32"), build_net("bfloat16")
    images, _ = batch()
    want = reference(images).asnumpy()
    copy_params(reference, net)
    precision.use_float32(net)
    assert np.array_equal(net(images).asnumpy(), want), "after use_float32 the network is float32 again"


# ------------------------------------------------------------------- float16's loss scaling (CPU)

def sgd_net_and_trainer(dtype):
    net = model.materialize(build_net("float32"), CPU, 32)  # the scaling logic alone: float32 graph
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    return net, precision.attach_loss_scaler(trainer, dtype)


def test_only_float16_gets_a_loss_scaler():
    for dtype in ("float32", "bfloat16"):
        _, trainer = sgd_net_and_trainer(dtype)
        assert precision.loss_scaler_state(trainer) is None, "%s needs no loss scaling" % dtype
        assert precision.loss_scale_for_step(trainer) == 1.0, "%s: the loss is not scaled" % dtype
    _, trainer = sgd_net_and_trainer("float16")
    assert precision.loss_scale_for_step(trainer) == 2.0 ** 16, "AMP's initial loss scale is 2^16"
    assert trainer._scale == 1.0 / 2.0 ** 16, "the trainer divides the gradients by the scale"


def test_scaled_step_equals_the_unscaled_step():
    images, labels = batch(size=8, image_size=32)
    params = {}
    for dtype in ("float32", "float16"):
        net, trainer = sgd_net_and_trainer(dtype)
        loss_fn = get_loss("hphn_triplet", margin=0.1, num_instances=4, n_inner_pts=2)
        scale = precision.loss_scale_for_step(trainer)
        forward_backward(net, loss_fn, images, labels, CPU, loss_scale=scale)
        trainer.step(1)
        params[dtype] = {name: p.data().asnumpy() for name, p in net._collect_params_with_prefix().items()}
    for name, want in params["float32"].items():
        np.testing.assert_allclose(params["float16"][name], want, rtol=1e-4, atol=1e-6,
                                   err_msg="%s: the scaled step must equal the unscaled one" % name)


def test_overflow_skips_the_step_and_halves_the_scale():
    images, labels = batch(size=8, image_size=32)
    net, trainer = sgd_net_and_trainer("float16")
    loss_fn = get_loss("hphn_triplet", margin=0.1, num_instances=4, n_inner_pts=2)
    before = {name: p.data().asnumpy() for name, p in net.collect_params().items()}
    forward_backward(net, loss_fn, images, labels, CPU, loss_scale=precision.loss_scale_for_step(trainer))
    net.head.embedding.weight.grad()[:] = np.inf  # as a float16 overflow leaves it
    trainer.step(1)
    for name, value in net.collect_params().items():
        if value.grad_req == "null":
            continue  # BatchNorm's running statistics move in the forward pass
        assert np.array_equal(value.data().asnumpy(), before[name]), "%s updated despite overflow" % name
    state = precision.loss_scaler_state(trainer)
    assert state["_next_loss_scale"] == 2.0 ** 15, "an overflow halves the next scale: %r" % state


def test_loss_scaler_state_round_trips():
    _, trainer = sgd_net_and_trainer("float16")
    saved = {"_loss_scale": 1024.0, "_next_loss_scale": 512.0, "_unskipped": 7}
    _, restored = sgd_net_and_trainer("float32")
    restored = precision.attach_loss_scaler(restored, "float16", saved)
    assert precision.loss_scaler_state(restored) == saved, "the checkpoint's scaler state is restored"
    assert precision.loss_scale_for_step(restored) == 1024.0, "the restored scale is used"
    with pytest.raises(ValueError):
        precision.attach_loss_scaler(trainer, "float16", {"bogus": 1})


def test_checkpoint_meta_carries_the_loss_scaler_to_the_resumed_state():
    import argparse

    from train.state import TrainingState

    meta = {"epoch": 1, "batch_in_epoch": 2, "global_step": 6, "epoch_loss": [0.5, 2],
            "pending_eval": None, "pending_row": None, "results": {}, "run_files": {}}
    args = argparse.Namespace(epochs=3)
    assert "loss_scaler" not in TrainingState.from_checkpoint(meta, args).to_json(), \
        "float32/bfloat16 checkpoints have no scaler"
    scaler = {"_loss_scale": 256.0, "_next_loss_scale": 256.0, "_unskipped": 3}
    resumed = TrainingState.from_checkpoint(dict(meta, loss_scaler=scaler), args).to_json()
    assert resumed["loss_scaler"] == scaler, \
        "a float16 checkpoint's scaler state must reach the resumed run"
