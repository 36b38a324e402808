"""Train an embedding network with Embedding Expansion + HPHN-triplet (Ko & Gu, CVPR 2020).

    python3 main.py --data_name=demo --gpu_idx=-1 ...      # see README.md for the exact commands
    python3 main.py --save_dir=RUN --resume=auto           # continue RUN with its own flags

Parse the flags (a resume takes them from the run's args.json), check every input, build data,
network, loss and trainer, and only then write into the run folder and train.
"""
import sys

from utils.environment import (allow_deep_hybridization, check_mxnet_loads, check_numpy_version,
                               prefer_passive_openmp)

check_numpy_version()
prefer_passive_openmp()  # before MXNet loads OpenMP: threads sleep, not spin, on busy cores
check_mxnet_loads()

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import data  # noqa: E402
import model  # noqa: E402
from loss import wants_unit_embeddings  # noqa: E402
from loss.factory import build_loss_from_args  # noqa: E402
from train.loop import TrainingLoop, fresh_state, resumed_state  # noqa: E402
from train.optimizer import build_trainer, setup_kvstore  # noqa: E402
from train.options import build_full_parser, validate_args  # noqa: E402
from train.regularization import regularized_params  # noqa: E402
from train.schedules import lr_scheduler_from_args  # noqa: E402
from train.step import NonFiniteError  # noqa: E402
from utils import logs  # noqa: E402
from utils.devices import resolve_contexts  # noqa: E402
from utils.host import check_shared_memory, workers_for_cores  # noqa: E402
from utils.metrics.names import DEFAULT_RECALLK  # noqa: E402
from utils.precision import attach_loss_scaler, check_dtype, use_mixed_precision  # noqa: E402
from utils.run import checkpoint, folder as run_folder  # noqa: E402
from utils.run.interrupts import Interrupts, RunInterrupted  # noqa: E402
from utils.summary import TrainingSummary  # noqa: E402

logger = logging.getLogger("ee_gluon")


def parse(argv):
    """The run's flags, and for a resume its args.json and the flags this command changes."""
    parser = build_full_parser()
    args = parser.parse_args(argv)
    if not args.resume:
        return args, None, {}, None
    given = run_folder.given_flags(parser, argv)
    folder, wanted = run_folder.resume_target(args.resume, args.save_dir, "save_dir" in given)
    previous = run_folder.read_args(folder)
    args, changed = run_folder.resume_args(parser, given, previous)
    args.save_dir = folder
    return args, previous, changed, wanted


def build(args, wanted):
    """Check every input and build what trains, writing nothing; returns the loop's parts."""
    validate_args(args)
    loss_fn = build_loss_from_args(args)  # the loss's own rules too: before devices or data
    ctx = resolve_contexts(args.gpu_idx)
    check_dtype(args.dtype, ctx)
    per_device = args.batch_size // len(ctx)
    if args.batch_size % len(ctx) or per_device % args.num_instances:
        raise ValueError(
            "--batch_size %d over %d devices gives %d images per device, which must be a multiple "
            "of --num_instances %d" % (args.batch_size, len(ctx), per_device, args.num_instances))
    args.num_workers, notice = workers_for_cores(args.num_workers)
    if notice:
        logger.warning(notice)
    check_shared_memory(args.batch_size, args.image_size, args.num_workers, args.prefetch)  # needs no network
    net = model.build_network(args.backbone, args.embed_dim,
                              l2_normalize=wants_unit_embeddings(args.loss))
    model.check_image_size(args.backbone, args.image_size)
    train_loader, test_loader, info = data.build_loaders(
        args.data_name, args.data_dir, args.image_size, args.batch_size, args.num_instances,
        args.num_workers, seed=args.seed, skip_bad_images=args.skip_bad_images, prefetch=args.prefetch,
        seen_classes=args.seen_classes or bool(args.resume))  # resumed: the protocol its start chose
    if args.recallk is None:
        args.recallk = list(getattr(info["dataset"], "default_recallk", None) or DEFAULT_RECALLK)
    data.eval_k_cap(args.recallk, info["num_test_images"])
    kvstore, rank, num_workers = setup_kvstore(args.kvstore, ctx)
    if not args.resume and rank == 0:  # the chief owns the run folder; the others write no file there
        run_folder.check_new_run(args.save_dir, args.overwrite)
    if num_workers > 1:
        logger.info("distributed: kvstore rank %d of %d workers", rank, num_workers)
        info["train_sampler"].set_shard(num_workers, rank)
    # A resume of a run that stopped before its first checkpoint starts it again, as it began.
    restarted = (bool(args.resume) and wanted is None
                 and run_folder.stopped_before_first_checkpoint(args.save_dir))
    continues = bool(args.resume) and not restarted
    for seed_fn in (mx.random.seed, np.random.seed, random.seed):
        seed_fn(args.seed)
    model.initialize_network(net, ctx, pretrained="none" if continues else args.pretrained)
    net.hybridize(static_alloc=True)
    use_mixed_precision(net, args.dtype)
    loss_fn.hybridize(static_alloc=True)
    trainer = build_trainer(net, args, kvstore)
    state = fresh_state(args, len(train_loader))
    if info["seen_test_classes"]:  # the seen-class protocol, on record beside its metrics
        state["results"]["seen_test_classes"] = info["seen_test_classes"]
    if continues:
        state = resumed_state(args, checkpoint.resume(args.save_dir, wanted, net, trainer, ctx))
    attach_loss_scaler(trainer, args.dtype, state.get("loss_scaler"))
    step_options = {"l2_params": regularized_params(net) if args.l2_reg else None,
                    "l2_coefficient": args.l2_reg, "scaled_params": net.head.collect_params(),
                    "grad_mult": args.embed_grad_mult}
    return dict(net=net, loss_fn=loss_fn, trainer=trainer, ctx=ctx, info=info, state=state,
                restarted=restarted, kvstore=kvstore if num_workers > 1 else None,
                train_loader=train_loader, test_loader=test_loader, rank=rank, num_workers=num_workers,
                scheduler=lr_scheduler_from_args(args, len(train_loader)), step_options=step_options)


def open_run_folder(args, parts, previous, changed):
    """The first write (the chief's alone): the run folder, args.json, train.log."""
    if parts["rank"] != 0:
        logs.detach()
        return
    info = parts["info"]
    saved = run_folder.open_run(args, parts["state"], info["data_dir"], parts["ctx"], previous, changed,
                                info.get("skipped_images"), restarted=parts["restarted"])
    logs.attach_file(run_folder.path(args.save_dir, run_folder.TRAIN_LOG))
    logger.info("flags: %s", json.dumps({k: v for k, v in saved.items() if k != "history"}, sort_keys=True))
    iters, workers = len(parts["train_loader"]), parts["num_workers"]
    logger.info("%d iterations per epoch%s; lr decays at iterations %s", iters,
                " per worker (%d workers)" % workers if workers > 1 else "",
                [epoch * iters for epoch in args.lr_decay_epochs])


def run(argv, interrupts):
    args, previous, changed, wanted = parse(argv)
    parts = build(args, wanted)
    interrupts.defer_all()  # from the first write on, a signal stops the run only where it is whole
    with interrupts.deferred(raise_after=False):  # the loop's first checkpoint comes before a stop
        open_run_folder(args, parts, previous, changed)
    is_chief = parts["rank"] == 0
    summary = TrainingSummary(args.save_dir if is_chief else None)
    loop_parts = {key: parts[key] for key in ("net", "loss_fn", "trainer", "ctx", "info", "scheduler",
                                              "step_options", "train_loader", "test_loader", "kvstore")}
    loop = TrainingLoop(args, dict(loop_parts, summary=summary, interrupts=interrupts, is_chief=is_chief),
                        parts["state"])
    results = loop.run(fresh=not args.resume or parts["restarted"])
    loop.finish(parts["num_workers"], parts["rank"])
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    logs.start()
    # Before the data loaders fork their workers, which inherit the handlers (utils.run.interrupts).
    interrupts = Interrupts().install()
    try:
        run(argv, interrupts)
    except NonFiniteError as error:  # training diverged (the loss, or every test embedding)
        sys.stderr.write("error: %s\n" % error)
        return 1
    except ValueError as error:  # bad input, a full or read-only disk (StorageError), a bad image
        sys.stderr.write("error: %s\n" % error)
        return 2
    except RunInterrupted as stop:
        path = getattr(stop, "checkpoint", None)
        if path:
            sys.stderr.write("interrupted by %s; checkpoint %s written: resume with --resume=auto "
                             "(python3 main.py --save_dir=%s --resume=auto)\n"
                             % (stop, os.path.basename(path), os.path.dirname(path)))
        else:
            sys.stderr.write("interrupted by %s before training began; nothing was written\n" % stop)
        return 130
    finally:
        interrupts.uninstall()
        logs.close()
    return 0


if __name__ == "__main__":
    allow_deep_hybridization()
    sys.exit(main())
