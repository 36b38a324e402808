"""Forward + backward time of Embedding Expansion + HPHN triplet: hybridized vs imperative.

    python bench/bench_loss.py [--iters 100] [--warmup 10] [--n_list 0,2,4,8]

Embeddings are L2-normalised random (batch_size x dim) rows in the sampler's layout
(num_instances consecutive rows per class), with a gradient attached as in training. Each
iteration records the loss, runs backward of the loss vector and waits for the gradient, so the
figures include MXNet's asynchronous work. Prints figures only; nothing is asserted.
"""
import argparse
import os
import sys
import time

import mxnet as mx
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loss import HPHNTripletLoss  # noqa: E402
from utils.metrics import l2_normalize  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=128, help="rows per batch")
    parser.add_argument("--dim", type=int, default=512, help="embedding dimension")
    parser.add_argument("--num_instances", type=int, default=32, help="consecutive rows per class")
    parser.add_argument("--n_list", type=lambda s: [int(v) for v in s.split(",")], default=[0, 2, 4, 8],
                        help="comma-separated n_inner_pts values")
    parser.add_argument("--iters", type=int, default=100, help="timed iterations per setting")
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations first")
    return parser.parse_args()


def make_batch(batch_size, dim, num_instances, normalise=True, seed=0):
    """Embeddings (optionally unit rows, gradient attached) and sampler-layout labels."""
    rng = np.random.RandomState(seed)
    x = rng.randn(batch_size, dim).astype("float32")
    if normalise:
        x = l2_normalize(x)
    y = np.repeat(np.arange(batch_size // num_instances), num_instances).astype("int32")
    embeddings = mx.nd.array(x)
    embeddings.attach_grad()
    return embeddings, mx.nd.array(y, dtype="int32")


def step(block, embeddings, labels):
    with mx.autograd.record():
        values = block(embeddings, labels)
    values.backward()
    embeddings.grad.wait_to_read()
    return values


def time_block(block, embeddings, labels, iters, warmup):
    """Milliseconds per forward + backward of ``block``, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step(block, embeddings, labels)
    mx.nd.waitall()
    start = time.perf_counter()
    for _ in range(iters):
        step(block, embeddings, labels)
    mx.nd.waitall()
    return (time.perf_counter() - start) / iters * 1e3  # ms per iteration


def main():
    args = parse_args()
    embeddings, labels = make_batch(args.batch_size, args.dim, args.num_instances)
    print(f"EE + HPHN triplet, forward + backward, {args.batch_size} x {args.dim} float32, "
          f"num_instances {args.num_instances}, {args.iters} iterations after {args.warmup} warm-up, "
          f"mxnet {mx.__version__}, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"{'n_inner_pts':>11} {'rows':>6} {'imperative ms':>14} {'hybridized ms':>14} {'speed-up':>9}")
    for n in args.n_list:
        kwargs = dict(margin=1e-5, num_instances=args.num_instances, n_inner_pts=n)
        imperative = HPHNTripletLoss(**kwargs)
        hybrid = HPHNTripletLoss(**kwargs)
        hybrid.hybridize(static_alloc=True, static_shape=True)
        # Same numbers from both, then time them.
        gap = np.abs(step(imperative, embeddings, labels).asnumpy() - step(hybrid, embeddings, labels).asnumpy()).max()
        t_imp = time_block(imperative, embeddings, labels, args.iters, args.warmup)
        t_hyb = time_block(hybrid, embeddings, labels, args.iters, args.warmup)
        print(f"{n:>11} {(n + 1) * args.batch_size:>6} {t_imp:>14.3f} {t_hyb:>14.3f} {t_imp / t_hyb:>8.2f}x"
              f"   (max |value difference| {gap:.1e})")


if __name__ == "__main__":
    main()
