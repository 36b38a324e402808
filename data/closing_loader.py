"""A Gluon DataLoader whose forked workers are ended by asking them, never by SIGTERM.

MXNet's DataLoader ends its worker pool with ``multiprocessing.Pool.terminate`` when it is deleted.
``terminate`` takes the pool's task-queue lock, then ends every worker still running with SIGTERM,
counting on SIGTERM to end a worker that waits for that lock. A training run's workers inherit the
run's signal handlers (``utils.run.interrupts``), which note SIGTERM instead of dying, so that a
signal to the whole process group never kills a worker in the middle of a batch; and a worker's
SIGTERM may be taken by one of its helper threads, which never wakes the thread waiting for the lock.
Either way such a worker waits forever and the run hangs at its very end (seen about once in ten
Ctrl-C-and-resume cycles with two workers).

:class:`ClosingDataLoader` ends its pool with ``Pool.close``: after the tasks already queued, each
worker receives an end-of-work message from the queue and ends by itself, holding no lock. Only
when a worker has not ended within ``CLOSE_BOUND_S`` (a worker killed from outside loses its task,
and a closed pool then waits for that task forever) are the workers killed and the pool's own
``terminate`` (which could wait for a lock a killed worker held) left out.
"""
import multiprocessing.pool
import os
import signal

import mxnet as mx

CLOSE_BOUND_S = 120.0  # as long as MXNet's own wait for one batch of a worker (DataLoader timeout)


def close_worker_pool(pool, bound_s=CLOSE_BOUND_S):
    """End a ``multiprocessing.pool.Pool``'s workers by closing it (see the module docstring);
    True when they ended by themselves, False when they had to be killed."""
    pool.close()
    pool._worker_handler.join(bound_s)  # it sends the end-of-work messages once no task is left
    if not pool._worker_handler.is_alive():
        pool.join()
        return True
    # A closed pool with a task left replaces every worker that ends: stop its worker handler first
    # (it sends the end-of-work messages as it goes), so that no worker is started behind our back.
    pool._worker_handler._state = multiprocessing.pool.TERMINATE
    pool._change_notifier.put(None)
    pool._worker_handler.join()
    for worker in list(pool._pool):
        if worker.exitcode is None:
            os.kill(worker.pid, signal.SIGKILL)
        worker.join()
    pool._terminate.cancel()  # nothing left to end, and its lock may be held by a killed worker
    return False


class ClosingDataLoader(mx.gluon.data.DataLoader):
    """``mxnet.gluon.data.DataLoader`` (same arguments) whose worker processes are ended by
    :func:`close_worker_pool` when the loader is closed or deleted."""

    def close(self):
        """End the worker processes (if any); the loader cannot load afterwards."""
        pool, self._worker_pool = getattr(self, "_worker_pool", None), None
        if isinstance(pool, multiprocessing.pool.ThreadPool):
            pool.terminate()  # threads: no signal involved
        elif isinstance(pool, multiprocessing.pool.Pool):
            close_worker_pool(pool)

    def __del__(self):
        self.close()
