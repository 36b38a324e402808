"""Images per second of one full training step on the CPU: forward, EE + HPHN loss, backward, update.

    .venv/bin/python bench/bench_train_step.py [--batch_size 32 --image_size 227 --iters 5]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import model  # noqa: E402
from loss import get_loss  # noqa: E402
from train.step import forward_backward  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--image_size", type=int, default=227)
    parser.add_argument("--num_instances", type=int, default=8)
    parser.add_argument("--iters", type=int, default=5)
    args = parser.parse_args()

    ctx = [mx.cpu()]
    net = model.build_network("googlenet", 512)
    model.initialize_network(net, ctx, pretrained="none")
    net.hybridize(static_alloc=True)
    loss_fn = get_loss("hphn_triplet", margin=1e-5, num_instances=args.num_instances, n_inner_pts=2)
    loss_fn.hybridize(static_alloc=True)
    trainer = mx.gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-4, "wd": 5e-4})
    rng = np.random.default_rng(0)
    images = mx.nd.array(rng.integers(0, 256, (args.batch_size, args.image_size, args.image_size, 3)),
                         dtype="uint8")
    labels = mx.nd.array(np.repeat(np.arange(args.batch_size // args.num_instances), args.num_instances),
                         dtype="int32")
    for _ in range(2):  # warm-up: graph construction and memory planning
        forward_backward(net, loss_fn, images, labels, ctx)
        trainer.step(1)
    mx.nd.waitall()
    start = time.perf_counter()
    for _ in range(args.iters):
        forward_backward(net, loss_fn, images, labels, ctx)
        trainer.step(1)
    mx.nd.waitall()
    elapsed = time.perf_counter() - start
    print("training step, GoogLeNet + EE(n=2) + HPHN, batch %d, %dx%d, CPU (%d cores): "
          "%.2f s/step, %.1f images/s" % (args.batch_size, args.image_size, args.image_size,
                                          os.cpu_count(), elapsed / args.iters,
                                          args.iters * args.batch_size / elapsed))


if __name__ == "__main__":
    main()
