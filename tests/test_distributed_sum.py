"""The gradient sum over three workers and two servers (loopback only, bounded by a timeout).

The kvstore's own push-pull adds the workers' vectors in arrival order, and the order changes from
step to step: the mechanism behind the 3-worker run-to-run differences. train.ordered_sum gives
``(g0 + g1) + g2`` every time. The expected sums are computed here with NumPy, one permutation at a
time."""
import itertools
import os
import sys

import numpy as np
import pytest

from conftest import SUBPROCESS_TIMEOUT
from tests.dist_sum_job import worker_vector
from utils.loopback_job import launch

ROUNDS = 30
WORKERS = 3


def run_job(mode, tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    pattern = str(tmp_path / "sums-%d.npy")
    result = launch([sys.executable, "-m", "tests.dist_sum_job", mode, str(ROUNDS), pattern],
                    num_workers=WORKERS, num_servers=2, timeout=SUBPROCESS_TIMEOUT, log_dir=str(log_dir))
    logs = "\n".join(open(os.path.join(log_dir, n)).read()[-800:] for n in sorted(os.listdir(log_dir)))
    assert result.codes == [0] * WORKERS and not result.summary(), "%s\n%s" % (result.summary(), logs)
    sums = [np.load(pattern % rank) for rank in range(WORKERS)]
    for rank in range(1, WORKERS):
        assert np.array_equal(sums[rank], sums[0]), "worker %d pulled another sum than worker 0" % rank
    return sums[0]


def sum_in_order(vectors, order):
    total = vectors[order[0]].copy()
    for rank in order[1:]:
        total = total + vectors[rank]  # float32 + float32, one addition at a time
    return total


@pytest.mark.dist
def test_the_server_adds_in_arrival_order(tmp_path, one_openmp_thread_environ):
    sums = run_job("server", tmp_path)
    orders_seen = set()
    for round_index in range(ROUNDS):
        vectors = [worker_vector(round_index, rank) for rank in range(WORKERS)]
        matching = [order for order in itertools.permutations(range(WORKERS))
                    if np.array_equal(sum_in_order(vectors, order), sums[round_index])]
        assert matching, "round %d: the server's sum is no order of additions" % round_index
        orders_seen.add(frozenset(matching))
    # Three vectors have three distinct sums (which pair is added first); over 30 rounds with random
    # delays the server used more than one.
    assert len(orders_seen) > 1, "every round summed in one order: %r" % orders_seen


@pytest.mark.dist
def test_the_ordered_sum_is_the_same_every_time(tmp_path, one_openmp_thread_environ):
    sums = run_job("ordered", tmp_path)
    for round_index in range(ROUNDS):
        vectors = [worker_vector(round_index, rank) for rank in range(WORKERS)]
        want = (vectors[0] + vectors[1]) + vectors[2]
        assert np.array_equal(sums[round_index], want), "round %d: not (g0 + g1) + g2 (max diff %.3g)" % (
            round_index, np.abs(sums[round_index] - want).max())
