"""A kvstore-only worker for tests/test_distributed_sum.py (started by tools.launch_loopback).

    python3 -m tests.dist_sum_job MODE ROUNDS OUT_PATTERN

Each round every worker sums a rank-seeded float32 vector over the workers (MODE ``server``: the
kvstore's own push-pull, summed on the server in arrival order; ``ordered``: train.ordered_sum),
after a random delay so that the arrival order changes from round to round. Each worker saves the
sums it got to ``OUT_PATTERN % rank``.
"""
import os
import sys
import time

import mxnet as mx
import numpy as np

from train.ordered_sum import OrderedWorkerSum

SIZE = 4096
KEYS = 3


def worker_vector(round_index, rank):
    """Values over eight orders of magnitude, so that the summation order shows in the last bits."""
    rng = np.random.RandomState(1000 * round_index + rank)
    return (rng.standard_normal(SIZE) * 10.0 ** rng.uniform(-4, 4, SIZE)).astype(np.float32)


def main(mode, rounds, out_pattern):
    kvstore = mx.kv.create("dist_sync")
    keys = list(range(KEYS))
    kvstore.init(keys, [mx.nd.zeros(SIZE) for _ in keys])
    summer = OrderedWorkerSum(kvstore, KEYS)
    summer.init_slots(keys, [[mx.nd.zeros(SIZE)] for _ in keys])
    delays = np.random.RandomState(os.getpid())
    sums = []
    for round_index in range(rounds):
        key = keys[round_index % KEYS]  # each key summed again and again, like a parameter's
        grads = [mx.nd.array(worker_vector(round_index, kvstore.rank))]
        time.sleep(delays.uniform(0, 0.02))
        if mode == "server":
            kvstore.pushpull(key, grads)
        else:
            summer.sum(key, grads)
        sums.append(grads[0].asnumpy())
    np.save(out_pattern % kvstore.rank, np.stack(sums))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
