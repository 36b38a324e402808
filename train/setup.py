"""The steps main.py takes around the network before a run trains, each checking its inputs before
anything is written: the devices, the host (workers, shared memory), the data, and, once the parts
are built (``train.parts``), the run folder: the first write.
"""
import json
import logging

import data
from data.split_manifest import manifest_sha256
from data.validation_split import ValidationSplit
from train.selection import check_select_metric
from utils import logs
from utils.devices import resolve_contexts
from utils.host import check_shared_memory, workers_for_cores
from utils.metrics.names import DEFAULT_RECALLK
from utils.precision import check_dtype
from utils.run import folder as run_folder

logger = logging.getLogger("ee_gluon")


def devices(args):
    """The contexts of ``--gpu_idx``, checked to run ``--dtype`` and to split ``--batch_size`` into
    slices of whole classes (``--num_instances`` images each)."""
    ctx = resolve_contexts(args.gpu_idx)
    check_dtype(args.dtype, ctx)
    per_device = args.batch_size // len(ctx)
    if args.batch_size % len(ctx) or per_device % args.num_instances:
        raise ValueError(
            "--batch_size %d over %d devices gives %d images per device, which must be a multiple "
            "of --num_instances %d" % (args.batch_size, len(ctx), per_device, args.num_instances))
    return ctx


def check_host(args):
    """``--num_workers`` fitted to the cores (``args`` updated, a notice logged), and the shared
    memory the loaders' prefetched batches need; needs no network, so it comes before it."""
    args.num_workers, notice = workers_for_cores(args.num_workers)
    if notice:
        logger.warning(notice)
    check_shared_memory(args.batch_size, args.image_size, args.num_workers, args.prefetch)


def training_data(args):
    """``(train_loader, test_loader, info)`` of ``data.build_loaders``, with the validation split
    the flags ask for (``data.validation_split``: ``info.val_loader``); ``--recallk`` defaults to
    the dataset's ranks (else ``DEFAULT_RECALLK``) and is checked against the test split's size,
    and ``--select_metric`` against the metrics it makes. Sets what args.json records of the data
    beside the flags: ``split_manifest_sha256`` (None when the dataset has no split_manifest.json)
    and, with a validation split, ``validation_split`` (its rule and held-out class ids)."""
    validation = ValidationSplit.from_args(args)
    train_loader, test_loader, info = data.build_loaders(
        args.data_name, args.data_dir, args.image_size, args.batch_size, args.num_instances,
        args.num_workers, seed=args.seed, skip_bad_images=args.skip_bad_images, prefetch=args.prefetch,
        seen_classes=args.seen_classes or bool(args.resume),  # resumed: the protocol its start chose
        validation=validation)
    if args.recallk is None:
        args.recallk = list(getattr(info.dataset, "default_recallk", None) or DEFAULT_RECALLK)
    data.eval_k_cap(args.recallk, info.num_test_images)
    check_select_metric(args)
    args.split_manifest_sha256 = manifest_sha256(info.data_dir)
    if validation is not None:
        data.eval_k_cap(args.recallk, len(info.val_labels))
        args.validation_split = dict(validation.record(), val_class_ids=info.val_class_ids)
    return train_loader, test_loader, info


def open_run_folder(args, parts, state, previous, changed):
    """The first write (the chief's alone): the run folder, args.json, train.log. ``parts``: the
    ``train.parts.TrainingParts``; ``state``: the ``TrainingState`` a resume rewinds the folder to;
    ``previous``, ``changed``: a resume's args.json and the flags its command changes."""
    if not parts.is_chief:
        logs.detach()
        return
    saved = run_folder.open_run(args, state.to_json(), parts.data.data_dir, parts.ctx, previous, changed,
                                parts.data.skipped_images, restarted=parts.restarted)
    recorded = (previous or {}).get("split_manifest_sha256")
    if recorded and recorded != args.split_manifest_sha256:
        logger.warning("the dataset's split_manifest.json differs from the one this run started with "
                       "(SHA-256 %s, now %s): its split files changed", recorded, args.split_manifest_sha256)
    logs.attach_file(run_folder.path(args.save_dir, run_folder.TRAIN_LOG))
    logger.info("flags: %s", json.dumps({k: v for k, v in saved.items() if k != "history"}, sort_keys=True))
    iters, workers = len(parts.train_loader), parts.num_workers
    logger.info("%d iterations per epoch%s; lr decays at iterations %s", iters,
                " per worker (%d workers)" % workers if workers > 1 else "",
                [epoch * iters for epoch in args.lr_decay_epochs])
