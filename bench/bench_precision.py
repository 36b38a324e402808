"""Images per second in float32 and bfloat16 (--dtype, utils/precision.py), side by side on this CPU:
one training step (forward, EE + HPHN loss, backward, Adam update) and inference (embedding a batch
with a trained network, as embed.py and evaluate.py do: ``inference.embedding_graph``).

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_precision.py [--backbone googlenet --batch_size 32
        --image_size 227 --rounds 5 --iters 3]

All networks start from the same weights. The settings alternate round by round (float32,
bfloat16, float32, ...) so that a load on the machine falls on all; each figure is the median over
the rounds of the images/s of ``--iters`` timed iterations. Inference is also measured in float32
with its BatchNorms folded as bfloat16's are (not what the tools do in float32), to show what
the folding alone gives. It also prints one step's loss and the embeddings' cosine in both dtypes
on the same batch and weights.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from utils.environment import allow_deep_hybridization  # noqa: E402

allow_deep_hybridization()

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import model  # noqa: E402
from inference.embedding_graph import for_inference  # noqa: E402
from loss import get_loss  # noqa: E402
from train.step import forward_backward  # noqa: E402
from utils import precision  # noqa: E402

DTYPES = ("float32", "bfloat16")
FOLDED = "float32, BatchNorm folded"
INFERENCE = ("float32", FOLDED, "bfloat16")


def build(dtype, args, ctx, images):
    mx.random.seed(0)
    net = model.build_network(args.backbone, args.embed_dim)
    model.initialize_network(net, ctx, pretrained="none")
    net.hybridize(static_alloc=True)
    precision.use_mixed_precision(net, dtype)
    net(images[:1])  # deferred initialisation, with the same seed in both dtypes
    loss_fn = get_loss("hphn_triplet", margin=1e-5, num_instances=args.num_instances, n_inner_pts=2)
    loss_fn.hybridize(static_alloc=True)
    trainer = mx.gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-4, "wd": 5e-4})
    return net, loss_fn, trainer


def inference_net(setting, args, ctx, params_file):
    """A network loaded as embed.py loads one, embedding as ``setting`` says (``for_inference``)."""
    net = model.build_network(args.backbone, args.embed_dim)
    net.load_parameters(params_file, ctx=ctx)
    net.hybridize(static_alloc=True)
    if setting == FOLDED:
        return for_inference(net, "float32", ctx, fold=True)
    return for_inference(net, setting, ctx)


def train_rate(parts, images, labels, ctx, iters):
    net, loss_fn, trainer = parts
    mx.nd.waitall()
    start = time.perf_counter()
    for _ in range(iters):
        forward_backward(net, loss_fn, images, labels, ctx)
        trainer.step(1)
    mx.nd.waitall()
    return iters * images.shape[0] / (time.perf_counter() - start)


def inference_rate(net, images, iters):
    mx.nd.waitall()
    start = time.perf_counter()
    for _ in range(iters):
        net(images).wait_to_read()
    return iters * images.shape[0] / (time.perf_counter() - start)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="googlenet")
    parser.add_argument("--embed_dim", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_instances", type=int, default=8)
    parser.add_argument("--image_size", type=int, default=227)
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two dtypes")
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per round")
    return parser.parse_args()


def random_batch(args):
    """One batch of random uint8 images and their labels, ``num_instances`` per class."""
    rng = np.random.default_rng(0)
    images = mx.nd.array(rng.integers(0, 256, (args.batch_size, args.image_size, args.image_size, 3)),
                         dtype="uint8")
    labels = mx.nd.array(np.repeat(np.arange(args.batch_size // args.num_instances), args.num_instances),
                         dtype="int32")
    return images, labels


def networks(args, ctx, images):
    """``(training parts by dtype, inference networks by setting)``, all from the same weights."""
    parts = {dtype: build(dtype, args, ctx, images) for dtype in DTYPES}
    with tempfile.TemporaryDirectory() as folder:
        params_file = os.path.join(folder, "net.params")
        parts["float32"][0].save_parameters(params_file)
        inference = {setting: inference_net(setting, args, ctx, params_file) for setting in INFERENCE}
    return parts, inference


def same_batch_results(parts, inference, images, labels, ctx):
    """Same weights, same batch, before any update: ``(one step's loss by dtype, the lowest cosine
    of each inference setting's embeddings with float32's)``."""
    losses = {}
    for dtype in DTYPES:
        net, loss_fn, _ = parts[dtype]
        losses[dtype] = float(forward_backward(net, loss_fn, images, labels, ctx).mean().asscalar())
    embeddings = {setting: inference[setting](images).asnumpy() for setting in INFERENCE}
    a = embeddings["float32"]
    cos = {setting: ((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min()
           for setting, b in embeddings.items() if setting != "float32"}
    return losses, cos


def measure_rates(parts, inference, images, labels, ctx, args):
    """Images/s of every setting, ``{(phase, setting): [one figure per round]}``, the settings
    alternating round by round after one warm-up iteration each."""
    for dtype in DTYPES:  # warm-up: graph construction and memory planning
        train_rate(parts[dtype], images, labels, ctx, 1)
    for setting in INFERENCE:
        inference_rate(inference[setting], images, 1)
    rates = {("train", dtype): [] for dtype in DTYPES}
    rates.update({("inference", setting): [] for setting in INFERENCE})
    for _ in range(args.rounds):
        for dtype in DTYPES:
            rates["train", dtype].append(train_rate(parts[dtype], images, labels, ctx, args.iters))
        for setting in INFERENCE:
            rates["inference", setting].append(inference_rate(inference[setting], images, args.iters))
    return rates


def print_report(args, rates, losses, cos):
    print("%s + EE(n=2) + HPHN, batch %d, %dx%d, CPU (%d cores, OMP_NUM_THREADS=%s), median of %d "
          "interleaved rounds of %d iterations" % (args.backbone, args.batch_size, args.image_size,
                                                   args.image_size, os.cpu_count(),
                                                   os.environ.get("OMP_NUM_THREADS", "unset"),
                                                   args.rounds, args.iters))
    median = {key: statistics.median(values) for key, values in rates.items()}
    print("%-10s %16s %16s %8s" % ("images/s", "float32", "bfloat16", "ratio"))
    f32, bf16 = median["train", "float32"], median["train", "bfloat16"]
    print("%-10s %16.1f %16.1f %7.2fx" % ("train", f32, bf16, bf16 / f32))
    f32, bf16 = median["inference", "float32"], median["inference", "bfloat16"]
    print("%-10s %16.1f %16.1f %7.2fx" % ("inference", f32, bf16, bf16 / f32))
    folded = median["inference", FOLDED]
    print("%-10s %16.1f %16s %7.2fx  (float32 with BatchNorm folded too, for comparison)"
          % ("", folded, "", bf16 / folded))
    print("one step's loss: float32 %.6f, bfloat16 %.6f (relative difference %.2e)"
          % (losses["float32"], losses["bfloat16"],
             abs(losses["bfloat16"] - losses["float32"]) / abs(losses["float32"])))
    print("embeddings' cosine with float32's, lowest row: bfloat16 %.6f, float32 folded %.7f"
          % (cos["bfloat16"], cos[FOLDED]))


def main():
    args = parse_args()
    ctx = [mx.cpu()]
    try:
        precision.check_dtype("bfloat16", ctx)
    except ValueError as error:
        sys.exit("error: %s" % error)
    images, labels = random_batch(args)
    parts, inference = networks(args, ctx, images)
    losses, cos = same_batch_results(parts, inference, images, labels, ctx)
    rates = measure_rates(parts, inference, images, labels, ctx, args)
    print_report(args, rates, losses, cos)


if __name__ == "__main__":
    main()
