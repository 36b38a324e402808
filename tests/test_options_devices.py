"""Flags: the original's names and defaults, the seed command, bad values; device selection."""
import argparse

import mxnet as mx
import pytest

from train.options import build_parser, validate_args
from utils.devices import parse_gpu_idx, resolve_contexts
from utils.flags import int_list, str2bool

SEED_COMMAND = (
    "--gpu_idx=0 --data_name=cars196 --backbone=googlenet --embed_dim=512 --loss=hphn_triplet "
    "--n_inner_pts=2 --ee_l2norm=True --seed=0 --batch_size=128 --image_size=227 --optim=adam "
    "--lr=0.0001 --lr_decay_factor=0.5 --lr_decay_epochs=400,800,1200,1600 --epochs=4000 "
    "--eval_epoch_term=5 --save_dir=results/inner-2"
)

ORIGINAL_DEFAULTS = {
    "gpu_idx": None, "lr_decay_factor": 0.5, "epochs": 5000, "save_dir": "./log/will/be/saved/here",
    "base_lr_mult": 1.0, "eval_epoch_term": 50, "beta": 1.2, "lr": 0.0001, "optim": "adam",
    "image_size": 227, "data_name": "car196", "start_epoch": 0, "sigma": 0.5, "momentum": 0.9,
    "summary_step": 10, "wd": 0.0005, "embed_dim": 512, "seed": 0, "batch_size": 128,
    "soft_margin": False, "lr_decay_epochs": [10, 20, 40, 80], "n_inner_pts": 2, "ee_l2norm": True,
    "alpha": 10, "margin": 1e-5, "num_workers": 10, "num_instances": 32, "backbone": "googlenet",
    "loss": "hphn-triplet", "kvstore": "device",
}


def test_original_flags_and_defaults():
    from train import setup

    assert setup.DEFAULT_RECALLK == (1, 2, 4, 8), "--recallk falls back to the original's 1,2,4,8"
    args = build_parser().parse_args([])
    for name, value in ORIGINAL_DEFAULTS.items():
        assert getattr(args, name) == value, "--%s default %r, original %r" % (
            name, getattr(args, name), value)


@pytest.mark.parametrize("n_inner_pts", ["2", "0"])
def test_seed_command_parses(n_inner_pts):
    argv = SEED_COMMAND.replace("--n_inner_pts=2", "--n_inner_pts=" + n_inner_pts).split()
    args = validate_args(build_parser().parse_args(argv))
    assert args.lr_decay_epochs == [400, 800, 1200, 1600], "decay epochs parsed at parse time"
    assert args.n_inner_pts == int(n_inner_pts) and args.ee_l2norm is True and args.epochs == 4000


def test_str2bool_rejects_garbage():
    assert str2bool("True") is True and str2bool("0") is False and str2bool("FALSE") is False
    with pytest.raises(argparse.ArgumentTypeError):
        str2bool("yes please")


def test_list_flags_reject_non_numbers(capsys):
    with pytest.raises(argparse.ArgumentTypeError):
        int_list("1,two")
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--recallk=1,x"])
    assert info.value.code == 2, "argparse errors exit with 2"
    assert "comma-separated integers" in capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["--batch_size=100", "--num_instances=32"], "not a multiple of --num_instances"),
    (["--n_inner_pts=-1"], "--n_inner_pts"),
    (["--lr_decay_epochs=20,10"], "strictly increasing"),
    (["--epochs=0"], "--epochs"),
])
def test_validation_errors(argv, fragment):
    with pytest.raises(ValueError, match=fragment):
        validate_args(build_parser().parse_args(argv))


def test_gpu_idx_parsing():
    assert parse_gpu_idx(None) is None and parse_gpu_idx("-1") == [] and parse_gpu_idx("0,1") == [0, 1]
    for bad in ("a", "0,0", "-2"):
        with pytest.raises(ValueError, match="--gpu_idx"):
            parse_gpu_idx(bad)


def test_context_resolution():
    assert resolve_contexts(None, num_gpus=0) == [mx.cpu()], "auto without GPU is the CPU"
    assert resolve_contexts(None, num_gpus=2) == [mx.gpu(0)], "auto with GPUs is GPU 0"
    assert resolve_contexts("-1", num_gpus=2) == [mx.cpu()]
    assert resolve_contexts("0,1", num_gpus=2) == [mx.gpu(0), mx.gpu(1)]
    with pytest.raises(ValueError, match="GPU 2 but only 2 GPU"):
        resolve_contexts("0,2", num_gpus=2)
    with pytest.raises(ValueError, match="no GPU is visible"):
        resolve_contexts("0")


def test_cpu_contexts_for_the_multi_device_path():
    assert parse_gpu_idx("cpu:2") == ("cpu", 2)
    assert resolve_contexts("cpu:2", num_gpus=0) == [mx.cpu(0), mx.cpu(1)]
    assert resolve_contexts("CPU:1") == [mx.cpu(0)]
    for bad in ("cpu:0", "cpu:", "cpu:x"):
        with pytest.raises(ValueError, match="--gpu_idx"):
            parse_gpu_idx(bad)


class _Features:
    def __init__(self, cuda):
        self.cuda = cuda

    def is_enabled(self, name):
        return self.cuda if name == "CUDA" else False


def _no_driver(name):
    raise OSError("%s: cannot open shared object file" % name)


def test_no_gpu_is_explained_by_its_cause():
    from utils.devices import no_gpu_cause
    assert "CPU build" in no_gpu_cause({}, _Features(False)), "this machine's MXNet"
    assert "CPU build" in no_gpu_cause(), "the real check on this CPU-only machine"
    assert "CUDA_VISIBLE_DEVICES=''" in no_gpu_cause({"CUDA_VISIBLE_DEVICES": ""}, _Features(True))
    assert "libcuda.so.1" in no_gpu_cause({}, _Features(True), _no_driver)
    assert "450.80.02" in no_gpu_cause({}, _Features(True), lambda name: None)
    with pytest.raises(ValueError, match=r"no GPU is visible: the NVIDIA driver .* --gpu_idx=-1"):
        resolve_contexts("0", num_gpus=0, explain=lambda: no_gpu_cause({}, _Features(True), _no_driver))
