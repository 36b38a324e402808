"""What the training loop trains with (``TrainingParts``), and its builder: the kvstore, the network
initialised (or resumed) under the run's seed, the trainer, the loop's state, the step options and
the learning-rate schedule, in that order, writing nothing.
"""
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable, List, Optional

import mxnet as mx
import numpy as np

import model
from data import LoaderInfo
from data.validation_split import ValidationSplit
from utils.precision import attach_loss_scaler, use_mixed_precision
from utils.run import checkpoint, folder as run_folder

from .optimizer import build_trainer, setup_kvstore
from .schedules import lr_scheduler_from_args
from .selection import selection_from_args
from .state import TrainingState
from .step import StepOptions

logger = logging.getLogger("ee_gluon")


@dataclass
class TrainingParts:
    """The loop's parts.

    ``net`` (hybridized, initialised or resumed), ``loss_fn``, ``trainer`` (``gluon.Trainer``),
    ``ctx`` (the devices), ``scheduler`` (0-based iteration -> learning rate), ``step_options``,
    ``train_loader`` and ``test_loader`` with ``data`` (their ``LoaderInfo``); ``kvstore``: the
    parameter-server kvstore of a distributed run, else None; ``rank`` of ``num_workers`` workers
    (0 of 1 unless distributed); ``restarted``: a resume of a run that stopped before its first
    checkpoint, which starts it again as it began.
    """

    net: Any
    loss_fn: Any
    trainer: Any
    ctx: List[Any]
    scheduler: Callable[[int], float]
    step_options: StepOptions
    train_loader: Any
    test_loader: Any
    data: LoaderInfo
    kvstore: Optional[Any]
    rank: int
    num_workers: int
    restarted: bool

    @property
    def is_chief(self):
        """The worker that owns the run folder, evaluates and writes checkpoints."""
        return self.rank == 0


def attach_proxies(loss_fn, args, info, ctx):
    """A proxy loss gets its proxies, one per training class, initialised on the first device (seeded
    after the network). Its loss is computed there, the whole batch gathered: the proxies live on
    one device, so several devices in one process are refused (a distributed run, one device per
    worker, keeps them in step through the kvstore)."""
    if not getattr(loss_fn, "uses_proxies", False):
        return
    if len(ctx) > 1:
        raise ValueError("--loss=%s keeps its class proxies on one device, and --gpu_idx gives %d; pass "
                         "one device (several machines: --kvstore=dist_sync)" % (args.loss, len(ctx)))
    loss_fn.attach_classes(np.unique(info.train_labels), args.embed_dim)
    loss_fn.initialize(ctx=ctx[:1])


def _start_state(args, wanted, continues, info, net, trainer, ctx, iters_per_epoch, loss_fn=None):
    """The loop's state: fresh (the seen-class protocol and the validation split recorded in its
    results), or that of the checkpoint a resume continues from (``wanted``, or the newest), loaded
    into ``net``, ``trainer`` and a proxy loss's proxies."""
    state = TrainingState.fresh(args, iters_per_epoch)
    if info.seen_test_classes:  # the seen-class protocol, on record beside its metrics
        state.results["seen_test_classes"] = info.seen_test_classes
    if info.val_class_ids is not None:  # the validation split and what selects, beside the metrics
        selection = selection_from_args(args)
        state.results.update(selected_on=selection.split, select_metric=selection.metric,
                             val_classes=info.val_class_ids, split=ValidationSplit.from_args(args).record())
    if continues:
        meta = checkpoint.resume(args.save_dir, wanted, net, trainer, ctx, loss_fn)
        state = TrainingState.from_checkpoint(meta, args)
    return state


def build_training_parts(args, wanted, net, loss_fn, ctx, loaders):
    """``(TrainingParts, TrainingState)`` of a checked run; ``wanted``: the checkpoint JSON a resume
    names (None: the newest); ``loaders``: ``train.setup.training_data``'s triple.

    A new run's folder is checked first (the chief's), before the network is initialised."""
    train_loader, test_loader, info = loaders
    kvstore, rank, num_workers = setup_kvstore(args.kvstore, ctx)
    if not args.resume and rank == 0:  # the chief owns the run folder; the others write no file there
        run_folder.check_new_run(args.save_dir, args.overwrite)
    if num_workers > 1:
        logger.info("distributed: kvstore rank %d of %d workers", rank, num_workers)
        info.train_sampler.set_shard(num_workers, rank)
    # A resume of a run that stopped before its first checkpoint starts it again, as it began.
    restarted = (bool(args.resume) and wanted is None
                 and run_folder.stopped_before_first_checkpoint(args.save_dir))
    continues = bool(args.resume) and not restarted
    for seed_fn in (mx.random.seed, np.random.seed, random.seed):
        seed_fn(args.seed)
    model.initialize_network(net, ctx, pretrained="none" if continues else args.pretrained)
    attach_proxies(loss_fn, args, info, ctx)
    net.hybridize(static_alloc=True)
    use_mixed_precision(net, args.dtype)
    loss_fn.hybridize(static_alloc=True)
    trainer = build_trainer(net, args, kvstore, loss_fn)
    state = _start_state(args, wanted, continues, info, net, trainer, ctx, len(train_loader), loss_fn)
    attach_loss_scaler(trainer, args.dtype, state.loss_scaler)
    parts = TrainingParts(
        net=net, loss_fn=loss_fn, trainer=trainer, ctx=ctx, step_options=StepOptions.from_args(args, net),
        scheduler=lr_scheduler_from_args(args, len(train_loader)), train_loader=train_loader,
        test_loader=test_loader, data=info, kvstore=kvstore if num_workers > 1 else None, rank=rank,
        num_workers=num_workers, restarted=restarted)
    return parts, state
