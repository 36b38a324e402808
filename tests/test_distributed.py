"""Distributed training with the parameter-server kvstore, on loopback only (scheduler, servers and
workers on 127.0.0.1, every process ended by the launcher, each job bounded by a timeout).

Every worker must end with the same parameters, and those must be what one process computes for the
same global batches: at iteration t worker r trains on batch t * W + r of the epoch, the servers sum
the W gradients, and every worker applies that sum with its own Adam. BatchNorm running statistics
are each worker's own (MXNet keeps them per process), so they are left out of the comparison."""
import json
import os
import re
import sys
import time

import mxnet as mx
import numpy as np
import pytest
from conftest import SUBPROCESS_TIMEOUT

from data.demo import generate_demo
from utils.loopback_job import launch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["--data_name=demo", "--gpu_idx=-1", "--pretrained=none", "--image_size=32", "--embed_dim=16",
         "--batch_size=8", "--num_instances=4", "--num_workers=0", "--epochs=2", "--eval_epoch_term=1",
         "--lr_decay_epochs=1", "--lr=0.001", "--progress=False", "--kvstore=dist_sync"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    # 12 train classes x 4 instances = 6 batches of 8 per epoch: 3 per worker for 2 workers, 2 for 3.
    return str(generate_demo(str(tmp_path_factory.mktemp("demo") / "d"), classes=24, per_class=6,
                             size=40, seed=2))


def worker_command(data_dir, save_dir, *extra):
    return [sys.executable, "main.py", "--data_dir=" + data_dir, "--save_dir=" + save_dir] + FLAGS + list(extra)


def job_logs(log_dir):
    return "\n".join("== %s\n%s" % (name, open(os.path.join(log_dir, name), errors="replace").read()[-1500:])
                     for name in sorted(os.listdir(log_dir)) if name.endswith(".log"))


def files_the_readme_does_not_name(folder):
    """Files of a run folder that README.md and docs/training-and-resume.md (the run folder) do not
    name in backquotes; a name is compared up to its first digit (``checkpoint-e...``,
    ``events.out.tfevents.<time>...``, ``model_final_worker<r>...``)."""
    pages = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "docs", "training-and-resume.md")]
    text = re.sub(r"```.*?```", "", "\n".join(open(page).read() for page in pages), flags=re.S)  # code blocks
    quoted = re.findall(r"`([^`\n]+)`", text)
    stems = {name: re.split(r"\d", name, maxsplit=1)[0] for name in os.listdir(folder)}
    return sorted(name for name, stem in stems.items() if not any(q.startswith(stem) for q in quoted))


def single_process_reference(data_dir, num_workers, extra=()):
    """What the job computes, in one process: the W gradients of each iteration accumulated in rank
    order (for W <= 3 the order train.ordered_sum fixes: ``(g0 + g1) + g2``), then the optimiser's
    update."""
    import data
    import loss.factory as loss_factory
    import main
    import model
    from train.optimizer import build_trainer
    from train.schedules import lr_scheduler_from_args

    args = main.build_full_parser().parse_args(["--data_dir=" + data_dir] + FLAGS + list(extra))
    args.kvstore = "device"
    ctx = [mx.cpu()]
    net = model.build_network(args.backbone, args.embed_dim, l2_normalize=True)
    loss_fn = loss_factory.build_loss_from_args(args)
    loader, _, info = data.build_loaders(args.data_name, data_dir, args.image_size, args.batch_size,
                                         args.num_instances, 0, seed=args.seed)
    mx.random.seed(args.seed)
    np.random.seed(args.seed)
    model.initialize_network(net, ctx, pretrained="none")
    net.hybridize(static_alloc=True)
    loss_fn.hybridize(static_alloc=True)
    model.materialize(net, ctx, args.image_size)
    trainer = build_trainer(net, args)
    net.collect_params().setattr("grad_req", "add")
    net.collect_params("running_.*").setattr("grad_req", "null")  # BatchNorm statistics: no gradient
    iters = len(loader) // num_workers
    scheduler = lr_scheduler_from_args(args, iters)
    for epoch in range(args.epochs):
        info.train_sampler.set_epoch(epoch)
        batches = list(loader)
        for t in range(iters):
            net.collect_params().zero_grad()
            for rank in range(num_workers):
                images, labels = batches[t * num_workers + rank]
                with mx.autograd.record():
                    losses = loss_fn(net(images), labels)
                losses.backward()
            trainer.set_learning_rate(scheduler(epoch * iters + t))
            trainer.step(1)
    return {name: p.data().asnumpy() for name, p in net._collect_params_with_prefix().items()}


@pytest.mark.dist
@pytest.mark.parametrize("num_workers, num_servers", [
    (2, 1),
    # Three workers on two servers: keys spread unevenly, and a sum of three that the server would
    # add in arrival order (train.ordered_sum fixes the order; tests/test_distributed_sum.py).
    (3, 2),
])
def test_workers_agree_with_one_process(demo_dir, tmp_path, one_openmp_thread_environ, num_workers, num_servers):
    save_dir, log_dir = str(tmp_path / "run"), str(tmp_path / "logs")
    os.makedirs(log_dir)
    start = time.time()
    result = launch(worker_command(demo_dir, save_dir), num_workers=num_workers,
                    num_servers=num_servers, timeout=SUBPROCESS_TIMEOUT, log_dir=log_dir)
    assert result.codes == [0] * num_workers and not result.summary(), "job failed after %.0f s: %s\n%s" % (
        time.time() - start, result.summary(), job_logs(log_dir))
    assert sorted(name for name in os.listdir(log_dir) if name.startswith("worker")) == \
        ["worker-%d.log" % r for r in range(num_workers)], "worker logs are named by kvstore rank"

    params = [mx.nd.load(os.path.join(save_dir, "model_final_worker%d.params" % r)) for r in range(num_workers)]
    want = single_process_reference(demo_dir, num_workers)
    trained = [name for name in want if "running_" not in name]
    for rank, got in enumerate(params):
        assert sorted(got) == sorted(want), "worker %d holds other parameters" % rank
        for name in trained:
            assert np.array_equal(got[name].asnumpy(), params[0][name].asnumpy()), \
                "parameter %s differs between worker 0 and worker %d" % (name, rank)
            assert np.allclose(got[name].asnumpy(), want[name], rtol=1e-4, atol=1e-5), \
                "parameter %s of worker %d differs from the single-process computation (max %.3g)" % (
                    name, rank, np.abs(got[name].asnumpy() - want[name]).max())
    results = json.load(open(os.path.join(save_dir, "results.json")))
    assert results["epoch"] == 2 and results["last"]["epoch"] == 2, "worker 0 evaluated: %r" % results
    unnamed = files_the_readme_does_not_name(save_dir)
    assert unnamed == [], "README.md names every file of a distributed run, not %s" % unnamed
    log = open(os.path.join(save_dir, "train.log")).read()
    iters = 6 // num_workers
    assert "%d iterations per epoch per worker (%d workers)" % (iters, num_workers) in log, \
        "each worker reads its shard"


@pytest.mark.dist
def test_a_killed_worker_ends_the_job_and_the_run_resumes(demo_dir, tmp_path, monkeypatch, one_openmp_thread_environ):
    save_dir, log_dir = str(tmp_path / "run"), str(tmp_path / "logs")
    os.makedirs(log_dir)
    # Worker task 1 dies at its 5th update (epoch 2); the chief checkpointed after epoch 1.
    monkeypatch.setenv("EE_GLUON_FAULT", "SIGKILL@step=5,task=1")
    result = launch(worker_command(demo_dir, save_dir), num_workers=2, num_servers=1, timeout=SUBPROCESS_TIMEOUT,
                    log_dir=log_dir)
    assert result.failed_task == 1 and result.codes[1] == -9, "worker task 1 was killed: %r" % result.codes
    line = result.summary()
    assert "worker task 1" in line and "SIGKILL" in line and "\n" not in line, line
    # Worker 0 would wait for task 1 in the kvstore forever: the job ended by the launcher's
    # watch, not by its timeout (a bound on a hung job, not on speed).
    assert not result.timed_out, "the launcher stops the job when a worker dies, not at the timeout"
    monkeypatch.delenv("EE_GLUON_FAULT")
    result = launch(worker_command(demo_dir, save_dir, "--resume=auto"), num_workers=2, num_servers=1,
                    timeout=SUBPROCESS_TIMEOUT, log_dir=log_dir)
    assert result.codes == [0, 0], "the resumed job failed: %s\n%s" % (result.summary(), job_logs(log_dir))
    assert json.load(open(os.path.join(save_dir, "results.json")))["epoch"] == 2
