"""Forward + backward time of every registered loss, hybridized, with EE n = 0, 2, 4, 8 where it applies.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_losses.py [--iters 30] [--warmup 5] [--n_list 0,2,4,8]

Embeddings are random (batch_size x dim) float32 rows with a gradient attached, L2-normalised for
the losses that want it (loss.wants_unit_embeddings), in the sampler's layout:
--num_instances consecutive rows per class for hphn_triplet, triplet, lifted and multi_similarity,
pairs (2 per class) for npair, angular and the symm_* losses. Each iteration records the loss, runs
backward and waits for the gradient. Prints figures only; nothing is asserted.
"""
import argparse
import os
import sys

import mxnet as mx
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_loss import make_batch, time_block  # noqa: E402  (same folder, on sys.path[0])
from loss import LOSSES, get_loss, wants_unit_embeddings  # noqa: E402
from loss.factory import ee_losses  # noqa: E402

PAIR_LOSSES = ("npair", "angular", "symm_npair", "symm_angular", "symm_triplet", "symm_lifted")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=128, help="rows per batch")
    parser.add_argument("--dim", type=int, default=512, help="embedding dimension")
    parser.add_argument("--num_instances", type=int, default=32,
                        help="consecutive rows per class for the non-pair losses")
    parser.add_argument("--n_list", type=lambda s: [int(v) for v in s.split(",")], default=[0, 2, 4, 8],
                        help="comma-separated n_inner_pts values for the losses that take EE")
    parser.add_argument("--proxy_classes", type=int, default=98,
                        help="classes (proxies) of the proxy losses (CARS196's training split: 98)")
    parser.add_argument("--iters", type=int, default=30, help="timed iterations per setting")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations first")
    return parser.parse_args()


def settings(args):
    for name in LOSSES:
        pairs = name in PAIR_LOSSES
        num_instances = 2 if pairs else args.num_instances
        for n in (args.n_list if name in ee_losses() else [0]):
            kwargs = dict(num_instances=num_instances, n_inner_pts=n)
            if name == "npair" and n:
                kwargs["l2_norm"] = False
            yield name, n, num_instances, kwargs


def main():
    args = parse_args()
    print(f"every loss, forward + backward, hybridized (static_alloc, static_shape), {args.batch_size} x {args.dim} "
          f"float32, {args.iters} iterations after {args.warmup} warm-up, mxnet {mx.__version__}, "
          f"{os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"{'loss':>17} {'n_inner_pts':>11} {'per class':>9} {'ms':>9} {'x n=0':>7}")
    base = {}
    for name, n, num_instances, kwargs in settings(args):
        block = get_loss(name, **kwargs)
        block.hybridize(static_alloc=True, static_shape=True)
        embeddings, labels = make_batch(args.batch_size, args.dim, num_instances,
                                        wants_unit_embeddings(name))
        if block.uses_proxies:  # proxies for the batch's classes (a dataset has more: see --proxy_classes)
            block.attach_classes(np.arange(max(args.proxy_classes, int(labels.max().asscalar()) + 1)), args.dim)
            block.initialize()
        ms = time_block(block, embeddings, labels, args.iters, args.warmup)
        base.setdefault(name, ms)
        print(f"{name:>17} {n:>11} {num_instances:>9} {ms:>9.3f} {ms / base[name]:>6.2f}x")


if __name__ == "__main__":
    main()
