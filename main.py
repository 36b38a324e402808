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
import signal  # noqa: E402
import time  # noqa: E402

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import data  # noqa: E402
import loss.factory as loss_factory  # noqa: E402
import model  # noqa: E402
from utils import checkpoint as checkpoints  # noqa: E402
from utils.devices import resolve_contexts  # noqa: E402
from utils.engine import NonFiniteLossError, evaluate, train_one_epoch  # noqa: E402
from utils.options import build_parser, metric_keys, validate_args  # noqa: E402
from utils.regularization import regularized_params  # noqa: E402
from utils.schedules import lr_scheduler_from_args  # noqa: E402
from utils.visualize import log_projector, log_retrieval_grid, pick_fixed_queries  # noqa: E402
from utils.summary import TrainingSummary  # noqa: E402

logger = logging.getLogger("ee_gluon")

DEFAULT_RECALLK = (1, 2, 4, 8)  # the original's --recallk


def setup_logging(save_dir):
    """Console, and ``save_dir/train.log`` (appended to on resume) when save_dir is given."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    handlers = [logging.StreamHandler(sys.stdout)]
    if save_dir:
        handlers.append(logging.FileHandler(os.path.join(save_dir, "train.log")))
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)


def seed_everything(seed):
    mx.random.seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def build_trainer(net, args, ctx, kvstore=None):
    net.backbone.collect_params().setattr("lr_mult", args.base_lr_mult)
    if args.optim == "adam":
        options = {"learning_rate": args.lr, "wd": args.wd}
    else:
        options = {"learning_rate": args.lr, "wd": args.wd, "momentum": args.momentum}
    # Distributed: workers apply the updates themselves (the optimiser state then lives with the
    # worker and goes into its checkpoints); the kvstore only sums gradients.
    distributed = kvstore is not None and not isinstance(kvstore, str)
    return mx.gluon.Trainer(net.collect_params(), args.optim, options, kvstore=kvstore,
                            update_on_kvstore=False if distributed else None)


def metric_record(values, epoch):
    return dict(values, epoch=epoch)


def check_save_dir(args):
    """Refuse to start a new run over an existing one (nothing already written is lost)."""
    if args.resume or args.overwrite or not os.path.isdir(args.save_dir):
        return
    markers = ("args.json", "results.json", "train.log", "tensorboard_log")
    if any(os.path.exists(os.path.join(args.save_dir, m)) for m in markers) or \
            checkpoints.list_checkpoints(args.save_dir):
        raise ValueError(
            "--save_dir %s already holds a run; pass --resume=auto to continue it, "
            "--overwrite=True to start over in it, or choose another --save_dir" % args.save_dir
        )


def setup_distributed(args, ctx):
    """The kvstore, and this process's (rank, number of workers)."""
    if not args.kvstore.startswith("dist"):
        return args.kvstore if len(ctx) > 1 else None, 0, 1
    kvstore = mx.kv.create(args.kvstore)
    return kvstore, kvstore.rank, kvstore.num_workers


class _Terminated(Exception):
    """SIGTERM arrived; handled like Ctrl-C."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def run(args):
    validate_args(args)
    # Loss flags are checked (and the loss built) before devices, data or files are touched.
    loss_fn = loss_factory.build_loss_from_args(args)
    ctx = resolve_contexts(args.gpu_idx)
    per_device = args.batch_size // len(ctx)
    if args.batch_size % len(ctx) or per_device % args.num_instances:
        raise ValueError(
            "--batch_size %d over %d devices gives %d images per device, which must be a multiple "
            "of --num_instances %d" % (args.batch_size, len(ctx), per_device, args.num_instances)
        )
    check_save_dir(args)
    net = model.build_network(args.backbone, args.embed_dim,
                              l2_normalize=loss_factory.loss_wants_normalized_embeddings(args.loss))
    train_loader, test_loader, info = data.build_loaders(
        args.data_name, args.data_dir, args.image_size, args.batch_size, args.num_instances,
        args.num_workers, seed=args.seed, skip_bad_images=args.skip_bad_images,
    )
    data_dir = info["data_dir"]
    if args.recallk is None:
        args.recallk = list(getattr(info["dataset"], "default_recallk", None) or DEFAULT_RECALLK)
    data.eval_k_cap(args.recallk, info["num_test_images"])
    kvstore, rank, num_workers = setup_distributed(args, ctx)
    sampler = info["train_sampler"]
    if num_workers > 1:
        sampler.set_shard(num_workers, rank)
    is_chief = rank == 0
    seed_everything(args.seed)
    model.initialize_network(net, ctx, pretrained="none" if args.resume else args.pretrained)

    net.hybridize(static_alloc=True)
    loss_fn.hybridize(static_alloc=True)
    trainer = build_trainer(net, args, ctx, kvstore)
    iters_per_epoch = len(train_loader)
    scheduler = lr_scheduler_from_args(args, iters_per_epoch)
    step_options = {
        "l2_params": regularized_params(net) if args.l2_reg else None, "l2_coefficient": args.l2_reg,
        "scaled_params": net.head.collect_params(), "grad_mult": args.embed_grad_mult,
    }
    state = {"epoch": args.start_epoch, "batch_in_epoch": 0,
             "global_step": args.start_epoch * iters_per_epoch,
             "results": {"epoch": args.start_epoch, "initial": None, "best": None, "last": None}}
    if args.resume:
        resumed = checkpoints.load_checkpoint(
            checkpoints.find_checkpoint(args.resume, args.save_dir), net, trainer, ctx)
        state.update({key: resumed[key] for key in ("epoch", "batch_in_epoch", "global_step", "results")})

    # Everything the user asked for has been checked; only now is anything written.
    os.makedirs(args.save_dir, exist_ok=True)
    checkpoints.remove_partial_files(args.save_dir)
    setup_logging(args.save_dir if is_chief else None)
    saved_args = dict(vars(args), data_dir=data_dir, contexts=[str(c) for c in ctx])
    if is_chief:
        checkpoints.write_json(os.path.join(args.save_dir, "args.json"), saved_args)
    logger.info("flags: %s", json.dumps(saved_args, sort_keys=True))
    if info.get("skipped_images"):
        with open(os.path.join(args.save_dir, "skipped_images.txt"), "w") as handle:
            handle.write("\n".join(info["skipped_images"]) + "\n")
        logger.warning("left out %d unreadable images (listed in skipped_images.txt)",
                       len(info["skipped_images"]))
    logger.info("data: %d train images of %d classes, %d test images of %d classes",
                info["num_train_images"], info["num_train_classes"],
                info["num_test_images"], info["num_test_classes"])
    logger.info("%d iterations per epoch%s; lr decays at iterations %s", iters_per_epoch,
                " per worker (%d workers)" % num_workers if num_workers > 1 else "",
                [e * iters_per_epoch for e in args.lr_decay_epochs])
    # On resume, TensorBoard drops the events logged after the checkpoint, so curves continue.
    summary = TrainingSummary(args.save_dir if is_chief else None,
                              purge_step=state["global_step"] + 1 if args.resume else None)
    results = state["results"]
    results_path = os.path.join(args.save_dir, "results.json")
    best_name = "R@%d" % args.recallk[0]  # the metric that picks the best parameters
    best_stem = [None]

    test_images = test_loader._dataset
    # Seed 0, not --seed: the same queries in every run, so that grids compare across runs.
    grid_queries = (pick_fixed_queries(info["test_labels"], args.grid_queries, seed=0)
                    if args.grid_queries else None)

    def test_image(index):
        return test_images[index][0]

    def run_evaluation(epoch):
        values, embeddings = evaluate(net, test_loader, info["test_labels"], ctx, args.recallk,
                                      progress=args.progress, return_embeddings=True,
                                      metrics=args.eval_metrics, knn=args.knn)
        step = epoch * iters_per_epoch
        summary.metrics(step, epoch, values)
        if grid_queries is not None:
            log_retrieval_grid(summary.writer, "retrieval/test", embeddings, info["test_labels"],
                               test_image, grid_queries, step, k=8)
        if args.projector_every and (epoch % args.projector_every == 0 or epoch == args.epochs):
            log_projector(summary.writer, embeddings, info["test_labels"], test_image, step,
                          max_points=args.projector_points)
        logger.info("epoch %d: %s", epoch,
                    "  ".join("%s %.4f" % item for item in values.items()))
        return values

    def write_checkpoint():
        if is_chief:
            checkpoints.save_checkpoint(args.save_dir, net, trainer, state,
                                        keep=args.keep_checkpoints, protect=[s for s in best_stem if s])

    if args.eval_at_start and is_chief and not args.resume:
        results["initial"] = metric_record(run_evaluation(state["epoch"]), state["epoch"])

    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        while state["epoch"] < args.epochs:
            epoch, first_batch = state["epoch"], state["batch_in_epoch"]
            sampler.set_epoch(epoch, skip_batches=first_batch)
            start = time.time()
            mean_loss = train_one_epoch(
                net, loss_fn, trainer, train_loader, ctx, scheduler, epoch, summary,
                summary_step=args.summary_step, progress=args.progress and is_chief,
                batch_size=args.batch_size, iters_per_epoch=iters_per_epoch,
                first_batch=first_batch, position=state, nan_policy=args.nan_policy,
                step_options=step_options,
            )
            done = epoch + 1
            state.update(epoch=done, batch_in_epoch=0, global_step=done * iters_per_epoch)
            results["epoch"] = done
            summary.epoch(done, mean_loss, trainer.learning_rate)
            logger.info("epoch %d/%d: loss %.5f, lr %.2e, %.1f s", done, args.epochs, mean_loss,
                        trainer.learning_rate, time.time() - start)
            row = {"epoch": done, "step": done * iters_per_epoch, "loss": mean_loss,
                   "lr": trainer.learning_rate}
            row.update({key: "" for key in metric_keys(args)})
            if is_chief and (done % args.eval_epoch_term == 0 or done == args.epochs):
                values = run_evaluation(done)
                row.update(values)
                results["last"] = metric_record(values, done)
                net.save_parameters(os.path.join(args.save_dir, "model_last.params"))
                best = results["best"]
                if best is None or values[best_name] > best[best_name]:
                    results["best"] = metric_record(values, done)
                    summary.best(done * iters_per_epoch, done, best_name, values[best_name])
                    net.save_parameters(os.path.join(args.save_dir, "model_epoch_%05d.params" % done))
                    best_stem[0] = "%se%06d-s%09d" % (checkpoints.PREFIX, done, done * iters_per_epoch)
                write_checkpoint()
                checkpoints.write_json(results_path, results)
            if is_chief:
                summary.csv_row(row)
            summary.flush()
    except (KeyboardInterrupt, _Terminated):
        # Keep what was trained: the parameters after the last applied update, and where it was.
        write_checkpoint()
        if is_chief:
            checkpoints.write_json(results_path, results)
        summary.close()
        logger.info("interrupted at epoch %d, batch %d; resume with --resume=auto",
                    state["epoch"] + 1, state["batch_in_epoch"])
        raise KeyboardInterrupt
    summary.close()
    if num_workers > 1:
        # Each worker's final parameters, so that their agreement can be checked.
        net.save_parameters(os.path.join(args.save_dir, "model_final_worker%d.params" % rank))
    if is_chief:
        checkpoints.write_json(results_path, results)
        if args.export:
            from model.export import export_network

            export_network(net, os.path.join(args.save_dir, "export", "model"), args.image_size)
        best = results["best"]
        logger.info("done: best %s %.4f at epoch %d; last %s %.4f", best_name, best[best_name],
                    best["epoch"], best_name, results["last"][best_name])
    return results


def build_full_parser():
    """main.py's parser: the core flags (utils.options) and, when present, the losses' own flags."""
    parser = build_parser()
    loss_factory.add_loss_arguments(parser)
    return parser


def main(argv=None):
    args = build_full_parser().parse_args(argv)
    try:
        run(args)
    except NonFiniteLossError as error:
        sys.stderr.write("error: %s\n" % error)
        return 1
    except ValueError as error:
        sys.stderr.write("error: %s\n" % error)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; a checkpoint was written: resume with --resume=auto\n")
        return 130
    return 0


if __name__ == "__main__":
    # GluonCV's deep blocks exceed Python's default recursion limit when hybridizing.
    sys.setrecursionlimit(2000)
    sys.exit(main())
