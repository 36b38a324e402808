"""Distributed training with the parameter-server kvstore, on loopback only: a scheduler, one
server and two workers train two epochs; both workers must end with identical parameters."""
import json
import os
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from data.demo import generate_demo
from tools.launch_loopback import launch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.dist
@pytest.mark.parametrize("kvstore", ["dist_sync"])
def test_two_workers_one_server(tmp_path, monkeypatch, kvstore):
    monkeypatch.chdir(ROOT)
    data_dir = str(generate_demo(str(tmp_path / "demo"), classes=16, per_class=6, size=40, seed=2))
    save_dir = str(tmp_path / "run")
    command = [sys.executable, "main.py", "--kvstore=" + kvstore, "--data_name=demo",
               "--data_dir=" + data_dir, "--gpu_idx=-1", "--pretrained=none", "--image_size=32",
               "--embed_dim=16", "--batch_size=8", "--num_instances=4", "--num_workers=0",
               "--epochs=2", "--eval_epoch_term=1", "--lr_decay_epochs=1", "--lr=0.001",
               "--progress=False", "--save_dir=" + save_dir]
    start = time.time()
    codes = launch(command, num_workers=2, num_servers=1, timeout=240, log_dir=str(tmp_path))
    logs = "\n".join(open(os.path.join(tmp_path, f)).read()[-1500:]
                     for f in sorted(os.listdir(tmp_path)) if f.endswith(".log"))
    assert codes == [0, 0], "workers exited with %s after %.0f s:\n%s" % (codes, time.time() - start, logs)

    params = [mx.nd.load(os.path.join(save_dir, "model_final_worker%d.params" % r)) for r in (0, 1)]
    assert sorted(params[0]) == sorted(params[1]), "both workers hold the same parameters"
    moved = 0
    initial_like = mx.nd.load(os.path.join(save_dir, "model_last.params"))
    for name in params[0]:
        assert np.array_equal(params[0][name].asnumpy(), params[1][name].asnumpy()) or \
            "running_" in name, "parameter %s differs between the workers" % name
        moved += name in initial_like
    assert moved, "worker 0 saved its evaluated parameters too"
    results = json.load(open(os.path.join(save_dir, "results.json")))
    assert results["epoch"] == 2 and results["last"]["epoch"] == 2, "worker 0 evaluated: %r" % results
    # 8 train classes x 4 instances = 4 batches per epoch, 2 per worker.
    log = open(os.path.join(save_dir, "train.log")).read()
    assert "2 iterations per epoch per worker (2 workers)" in log, "each worker reads its shard"
