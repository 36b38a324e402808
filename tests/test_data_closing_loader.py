"""data.closing_loader: a training run's loader workers (which inherit handlers that note SIGTERM
instead of dying) end when the loader goes, whatever it was doing, and never hang the run's end."""
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time

from conftest import ROOT, SUBPROCESS_TIMEOUT, subprocess_env
from data.closing_loader import close_worker_pool

# Loaders of two workers built and dropped many times under the run's signal handlers, one batch
# taken (tasks still queued) or all. With MXNet's own DataLoader this hung within a few dozen
# cycles (a worker waiting for the queue lock ignored Pool.terminate's SIGTERM).
CYCLES = """
import multiprocessing, sys
import mxnet as mx
from utils.run.interrupts import Interrupts
from data.closing_loader import ClosingDataLoader

interrupts = Interrupts().install()
interrupts.defer_all()
data = mx.gluon.data.SimpleDataset(list(range(16)))
for cycle in range(int(sys.argv[1])):
    loader = ClosingDataLoader(data, batch_size=4, num_workers=2)
    batches = iter(loader)
    first = next(batches)
    if cycle % 2:
        rest = [batch for batch in batches]
        assert len(rest) == 3, len(rest)
    del batches, loader
left = multiprocessing.active_children()
assert not left, "workers left: %r" % left
print("closed", sys.argv[1])
"""


def test_loaders_under_the_run_handlers_close_every_time():
    proc = subprocess.run([sys.executable, "-c", CYCLES, "60"], cwd=ROOT, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT, env=subprocess_env())
    assert proc.returncode == 0 and "closed 60" in proc.stdout, proc.stderr[-2000:]


def _sleep_forever(_):
    time.sleep(3600)


def _square(value):
    return value * value


def test_a_closed_pool_whose_workers_end_by_themselves():
    pool = multiprocessing.get_context("fork").Pool(2)
    pending = pool.map_async(_square, range(8))
    assert close_worker_pool(pool, bound_s=SUBPROCESS_TIMEOUT) is True
    assert pending.get(0) == [value * value for value in range(8)], "queued tasks finish before the end"
    assert [worker.exitcode for worker in pool._pool] == [0, 0], "each worker ended by itself"


def test_a_pool_whose_task_never_returns_is_killed_after_the_bound():
    pool = multiprocessing.get_context("fork").Pool(1)
    pool.apply_async(_sleep_forever, (0,))
    started = list(pool._pool)
    assert close_worker_pool(pool, bound_s=0.5) is False
    workers = started + [worker for worker in pool._pool if worker not in started]
    assert [worker.exitcode for worker in workers] == [-9] * len(workers), \
        "every worker of the pool is killed, none started in its place: %r" % workers
    assert not pool._worker_handler.is_alive(), "the pool starts no worker any more"


def test_the_training_and_test_loaders_are_closing_loaders(tmp_path):
    from data.closing_loader import ClosingDataLoader
    from data.demo import generate_demo
    from data.loaders import build_loaders

    demo = generate_demo(str(tmp_path / "d"), classes=4, per_class=4, size=24, seed=0)
    train_loader, test_loader, _ = build_loaders("demo", str(demo), 16, 8, 4, num_workers=1)
    try:
        assert isinstance(train_loader, ClosingDataLoader) and isinstance(test_loader, ClosingDataLoader)
        workers = [p.pid for p in train_loader._worker_pool._pool + test_loader._worker_pool._pool]
    finally:
        train_loader.close()
        test_loader.close()
    for pid in workers:
        assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z", \
            "worker %d is gone" % pid
