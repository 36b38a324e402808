"""The training loop's position: what a checkpoint stores and a resume continues from.

Fields (``TrainingState``):

- ``epoch`` (completed), ``batch_in_epoch`` (updates applied in the current epoch), ``global_step``;
- ``epoch_loss``: ``[sum, count]`` of the current epoch's iteration losses, so the mean of an epoch
  interrupted in the middle is that of an uninterrupted one;
- ``pending_eval``: ``None``, ``"initial"`` (the evaluation before training) or ``"epoch"``, with
  ``pending_row`` (that epoch's summary.csv row, completed by the metrics): an evaluation that
  was due and had not finished is run first after a resume;
- ``results``: what ``results.json`` holds, as that JSON object (with a validation split, which
  split selects and each record's ``val`` metrics too: ``train.selection``);
- ``run_files``: the sizes of the run folder's append-only files at the last checkpoint
  (``utils.run.folder``); None before the first one;
- ``loss_scaler``: float16's dynamic loss scale (``utils.precision``), None for other dtypes.

``to_json`` gives the checkpoint's run state (``utils.run.checkpoint.save_checkpoint`` adds the
random states and file checksums); ``from_checkpoint`` reads one back, an old checkpoint (without a
loss scaler) included.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

# The keys every checkpoint's run state holds; ``loss_scaler`` only a float16 run's.
CHECKPOINT_KEYS = ("epoch", "batch_in_epoch", "global_step", "epoch_loss", "pending_eval",
                   "pending_row", "results", "run_files")


@dataclass
class TrainingState:
    """Where the loop stands; the loop mutates these fields (see the module docstring)."""

    epoch: int
    batch_in_epoch: int
    global_step: int
    epoch_loss: List[float] = field(default_factory=lambda: [0.0, 0])
    pending_eval: Optional[str] = None
    pending_row: Optional[Dict[str, Any]] = None
    results: Dict[str, Any] = field(default_factory=dict)
    run_files: Optional[Dict[str, int]] = None
    loss_scaler: Optional[Dict[str, Any]] = None

    @classmethod
    def fresh(cls, args, iters_per_epoch):
        """The state of a run that has not trained yet (from ``--start_epoch``)."""
        return cls(epoch=args.start_epoch, batch_in_epoch=0, global_step=args.start_epoch * iters_per_epoch,
                   epoch_loss=[0.0, 0], pending_eval="initial" if args.eval_at_start else None,
                   results={"epoch": args.start_epoch, "initial": None, "best": None, "last": None})

    @classmethod
    def from_checkpoint(cls, meta, args):
        """The state a checkpoint's ``meta`` (its JSON) holds, checked against the run's --epochs."""
        if meta["epoch"] > args.epochs:
            raise ValueError("--epochs=%d: the run has already trained %d epochs; give --epochs=%d or "
                             "more" % (args.epochs, meta["epoch"], meta["epoch"]))
        return cls(loss_scaler=meta.get("loss_scaler"), **{key: meta[key] for key in CHECKPOINT_KEYS})

    def to_json(self):
        """The checkpoint's run state: the keys of ``CHECKPOINT_KEYS``, and ``loss_scaler`` when
        there is one (a float16 run)."""
        payload = {key: getattr(self, key) for key in CHECKPOINT_KEYS}
        if self.loss_scaler is not None:
            payload["loss_scaler"] = self.loss_scaler
        return payload
