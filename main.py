"""Train an embedding network with Embedding Expansion + HPHN-triplet (Ko & Gu, CVPR 2020).

    python3 main.py --data_name=demo --gpu_idx=-1 ...      # see README.md for the exact commands
"""
import sys

from utils.environment import check_numpy_version

check_numpy_version()

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import data  # noqa: E402
import loss as losses  # noqa: E402
import model  # noqa: E402
from utils.devices import resolve_contexts  # noqa: E402
from utils.engine import evaluate, train_one_epoch  # noqa: E402
from utils.options import build_parser, validate_args  # noqa: E402
from utils.summary import TrainingSummary  # noqa: E402

logger = logging.getLogger("ee_gluon")


def setup_logging(save_dir):
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    for handler in (logging.StreamHandler(sys.stdout),
                    logging.FileHandler(os.path.join(save_dir, "train.log"))):
        handler.setFormatter(formatter)
        root.addHandler(handler)


def seed_everything(seed):
    mx.random.seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def build_loss(args):
    return losses.get_loss(
        args.loss, margin=args.margin, soft_margin=args.soft_margin,
        num_instances=args.num_instances, n_inner_pts=args.n_inner_pts, l2_norm=args.ee_l2norm,
    )


def build_trainer(net, args, ctx):
    net.backbone.collect_params().setattr("lr_mult", args.base_lr_mult)
    if args.optim == "adam":
        options = {"learning_rate": args.lr, "wd": args.wd}
    else:
        options = {"learning_rate": args.lr, "wd": args.wd, "momentum": args.momentum}
    kvstore = args.kvstore if len(ctx) > 1 else None
    return mx.gluon.Trainer(net.collect_params(), args.optim, options, kvstore=kvstore)


def build_lr_scheduler(args, iters_per_epoch):
    """MultiFactor schedule over iterations: × lr_decay_factor at each epoch of lr_decay_epochs."""
    steps = [epoch * iters_per_epoch for epoch in args.lr_decay_epochs]
    scheduler = mx.lr_scheduler.MultiFactorScheduler(step=steps, factor=args.lr_decay_factor)
    scheduler.base_lr = args.lr
    return scheduler


def metric_record(recalls, epoch):
    record = {"epoch": epoch}
    record.update({"R@%d" % k: value for k, value in recalls.items()})
    return record


def write_json(path, payload):
    """Write atomically: a reader never sees half a file."""
    tmp_path = path + ".tmp"
    with open(tmp_path, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    os.replace(tmp_path, path)


def run(args):
    validate_args(args)
    ctx = resolve_contexts(args.gpu_idx)
    per_device = args.batch_size // len(ctx)
    if args.batch_size % len(ctx) or per_device % args.num_instances:
        raise ValueError(
            "--batch_size %d over %d devices gives %d images per device, which must be a multiple "
            "of --num_instances %d" % (args.batch_size, len(ctx), per_device, args.num_instances)
        )
    loss_fn = build_loss(args)
    net = model.build_network(args.backbone, args.embed_dim)
    train_loader, test_loader, info = data.build_loaders(
        args.data_name, args.data_dir, args.image_size, args.batch_size, args.num_instances,
        args.num_workers, seed=args.seed,
    )
    data_dir = info["data_dir"]
    seed_everything(args.seed)
    model.initialize_network(net, ctx, pretrained=args.pretrained)

    # Everything the user asked for has been checked; only now is anything written.
    os.makedirs(args.save_dir, exist_ok=True)
    setup_logging(args.save_dir)
    saved_args = dict(vars(args), data_dir=data_dir, contexts=[str(c) for c in ctx])
    write_json(os.path.join(args.save_dir, "args.json"), saved_args)
    logger.info("flags: %s", json.dumps(saved_args, sort_keys=True))
    logger.info("data: %d train images of %d classes, %d test images of %d classes",
                info["num_train_images"], info["num_train_classes"],
                info["num_test_images"], info["num_test_classes"])

    net.hybridize(static_alloc=True)
    loss_fn.hybridize(static_alloc=True)
    trainer = build_trainer(net, args, ctx)
    iters_per_epoch = len(train_loader)
    scheduler = build_lr_scheduler(args, iters_per_epoch)
    summary = TrainingSummary(args.save_dir)
    logger.info("%d iterations per epoch; lr decays at iterations %s", iters_per_epoch,
                [e * iters_per_epoch for e in args.lr_decay_epochs])

    results = {"epoch": args.start_epoch, "initial": None, "best": None, "last": None}
    results_path = os.path.join(args.save_dir, "results.json")

    def run_evaluation(epoch):
        recalls = evaluate(net, test_loader, info["test_labels"], ctx, args.recallk,
                           progress=args.progress)
        step = epoch * iters_per_epoch
        summary.metrics(step, epoch, recalls)
        logger.info("epoch %d: %s", epoch,
                    "  ".join("R@%d %.4f" % (k, v) for k, v in recalls.items()))
        return recalls

    if args.eval_at_start:
        results["initial"] = metric_record(run_evaluation(args.start_epoch), args.start_epoch)

    first_k = args.recallk[0]
    for epoch in range(args.start_epoch, args.epochs):
        info["train_sampler"].set_epoch(epoch)
        start = time.time()
        mean_loss = train_one_epoch(
            net, loss_fn, trainer, train_loader, ctx, scheduler, epoch, summary,
            summary_step=args.summary_step, progress=args.progress, batch_size=args.batch_size,
        )
        done = epoch + 1
        summary.epoch(done, mean_loss, trainer.learning_rate)
        logger.info("epoch %d/%d: loss %.5f, lr %.2e, %.1f s", done, args.epochs, mean_loss,
                    trainer.learning_rate, time.time() - start)
        row = {"epoch": done, "step": done * iters_per_epoch, "loss": mean_loss,
               "lr": trainer.learning_rate}
        row.update({"R@%d" % k: "" for k in args.recallk})
        results["epoch"] = done
        if done % args.eval_epoch_term == 0 or done == args.epochs:
            recalls = run_evaluation(done)
            row.update({"R@%d" % k: v for k, v in recalls.items()})
            results["last"] = metric_record(recalls, done)
            net.save_parameters(os.path.join(args.save_dir, "model_last.params"))
            best = results["best"]
            if best is None or recalls[first_k] > best["R@%d" % first_k]:
                results["best"] = metric_record(recalls, done)
                summary.best(done * iters_per_epoch, done, first_k, recalls[first_k])
                net.save_parameters(os.path.join(args.save_dir, "model_epoch_%05d.params" % done))
            write_json(results_path, results)
        summary.csv_row(row)
        summary.flush()
    summary.close()
    write_json(results_path, results)
    best = results["best"]
    logger.info("done: best R@%d %.4f at epoch %d; last R@%d %.4f", first_k, best["R@%d" % first_k],
                best["epoch"], first_k, results["last"]["R@%d" % first_k])
    return results


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except ValueError as error:
        sys.stderr.write("error: %s\n" % error)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    # GluonCV's deep blocks exceed Python's default recursion limit when hybridizing.
    sys.setrecursionlimit(2000)
    sys.exit(main())
