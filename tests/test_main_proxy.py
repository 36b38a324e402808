"""The proxy losses through main.py: they train (proxies included, at --proxy_lr_mult), their
proxies go into every checkpoint and nowhere else (model_*.params hold the network alone), and a
run killed mid-epoch resumes bit-identical, proxies and Proxy Synthesis's draws included."""
import argparse
import glob
import os
import signal
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import model
from conftest import SUBPROCESS_TIMEOUT, subprocess_env
from data.demo import generate_demo
from loss import get_loss
from train.optimizer import trained_parameters

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def proxy_demo(tmp_path_factory):
    # 8 training classes (demo classes 1..8) x 6 images; 8 test classes.
    return str(generate_demo(str(tmp_path_factory.mktemp("demo") / "demo"), classes=16, per_class=6, size=40))


def main_argv(data_dir, save_dir, *extra):
    # --num_instances=2: an epoch is 8 classes x 2 = 16 images = 2 iterations of 8.
    return [sys.executable, "main.py", "--data_name=demo", "--data_dir=" + data_dir, "--gpu_idx=-1",
            "--pretrained=none", "--image_size=32", "--embed_dim=8", "--batch_size=8", "--num_instances=2",
            "--n_inner_pts=0", "--num_workers=0", "--epochs=2", "--lr=0.001", "--progress=False",
            "--save_dir=" + save_dir] + list(extra)


def run(argv, fault=None):
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          env=subprocess_env(EE_GLUON_FAULT=fault))
    return proc


def checkpoint_files(save_dir, suffix):
    return sorted(glob.glob(os.path.join(save_dir, "checkpoint-*" + suffix)))


def test_norm_softmax_trains_its_proxies_and_keeps_them_out_of_the_network(proxy_demo, tmp_path):
    save_dir = str(tmp_path / "run")
    proc = run(main_argv(proxy_demo, save_dir, "--loss=norm_softmax"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, last = checkpoint_files(save_dir, ".loss.params")
    before, after = mx.nd.load(first), mx.nd.load(last)
    assert sorted(after) == ["class_ids", "proxies"], sorted(after)
    assert after["proxies"].shape == (8, 8), "one proxy per training class, embed_dim wide"
    np.testing.assert_array_equal(after["class_ids"].asnumpy(), np.arange(1, 9), "the demo's train classes")
    assert not np.array_equal(before["proxies"].asnumpy(), after["proxies"].asnumpy()), "the proxies trained"
    for name in ("model_best.params", "model_last.params"):
        keys = mx.nd.load(os.path.join(save_dir, name))
        assert not [k for k in keys if "prox" in k or "class_ids" in k], "%s holds the network alone" % name
        net_keys = mx.nd.load(checkpoint_files(save_dir, "00004.params")[0])
        assert sorted(keys) == sorted(net_keys), "the checkpoint's .params is the network's"


def test_proxy_anchor_with_synthesis_trains(proxy_demo, tmp_path):
    proc = run(main_argv(proxy_demo, str(tmp_path / "run"), "--loss=proxy_anchor", "--ps_mu=1"))
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_proxy_loss_refuses_several_devices(proxy_demo, tmp_path):
    proc = run(main_argv(proxy_demo, str(tmp_path / "run"), "--loss=proxy_nca") + ["--gpu_idx=cpu:2"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == ("error: --loss=proxy_nca keeps its class proxies on one device, and --gpu_idx "
                                   "gives 2; pass one device (several machines: --kvstore=dist_sync)"), proc.stderr
    assert not os.path.exists(str(tmp_path / "run")), "refused before the run folder is written"


def test_the_proxies_train_at_their_own_learning_rate():
    net = model.build_network("googlenet", 8)
    loss_fn = get_loss("proxy_anchor", num_classes=3, embed_dim=8)
    params = trained_parameters(net, loss_fn, argparse.Namespace(base_lr_mult=1.0, proxy_lr_mult=100.0))
    proxies = [p for name, p in params.items() if name.endswith("proxies")]
    assert len(proxies) == 1 and proxies[0].lr_mult == 100.0, "the proxies train, at x100"
    assert not [name for name in params if name.endswith("class_ids")], "the class ids are no parameter"
    assert len(list(params.keys())) == len(list(net.collect_params().keys())) + 1


def test_killed_mid_epoch_resumes_bit_identical_with_synthesis(proxy_demo, tmp_path):
    # A checkpoint after epoch 1 (its evaluation), the kill in epoch 2: the resume starts from trained proxies.
    flags = ("--loss=proxy_anchor", "--ps_mu=1", "--proxy_lr_mult=10", "--eval_epoch_term=1", "--eval_at_start=False")
    straight, stopped = str(tmp_path / "straight"), str(tmp_path / "stopped")
    assert run(main_argv(proxy_demo, straight, *flags)).returncode == 0
    proc = run(main_argv(proxy_demo, stopped, *flags), fault="SIGKILL@step=3")  # epoch 2, iteration 1
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    proc = run([sys.executable, "main.py", "--save_dir=" + stopped, "--resume=auto"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming from" in open(os.path.join(stopped, "train.log")).read()
    for name in ("model_last.params", "model_best.params", "results.json", "summary.csv"):
        with open(os.path.join(straight, name), "rb") as a, open(os.path.join(stopped, name), "rb") as b:
            assert a.read() == b.read(), "%s differs from the uninterrupted run's" % name
    want, got = checkpoint_files(straight, ".loss.params")[-1], checkpoint_files(stopped, ".loss.params")[-1]
    assert os.path.basename(want) == os.path.basename(got)
    with open(want, "rb") as a, open(got, "rb") as b:
        assert a.read() == b.read(), "the proxies after the resumed run differ from the uninterrupted run's"
