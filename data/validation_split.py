"""A run's validation split: the training images of some training classes held out of training.

``--val_classes=K`` (or ``--folds=K --fold=i``) with ``--split_seed`` names which training classes
validate (``data.class_split`` gives the rule); their images leave the training split and form the
validation set, evaluated like the test split (test-time transform, query = gallery). What is
recorded of it (results.json's ``split``, args.json's ``validation_split``)::

    {"rule": "class_split/holdout", "split_seed": 0, "val_classes": 0.25}
    {"rule": "class_split/kfold", "split_seed": 0, "folds": 4, "fold": 1}

Contract of :meth:`ValidationSplit.apply`: the held-out class ids are exactly those of
``data.class_split.split_classes``; no held-out image stays in training; the training classes left
fill a batch (``classes_per_batch`` of them at least), else a one-line ValueError naming the fix.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .class_split import split_classes

RULES = {"holdout": "class_split/holdout", "kfold": "class_split/kfold"}


@dataclass(frozen=True)
class ValidationSplit:
    """The flags of a validation split: ``val_classes`` (a count or a fraction) or ``folds`` and
    ``fold``; ``split_seed`` permutes the training class ids."""

    val_classes: Optional[float] = None
    folds: Optional[int] = None
    fold: Optional[int] = None
    split_seed: int = 0

    @classmethod
    def from_args(cls, args):
        """The split the run's flags ask for, or None (the release: no validation split)."""
        val_classes, folds = getattr(args, "val_classes", None), getattr(args, "folds", None)
        if val_classes is None and folds is None:
            return None
        return cls(val_classes=val_classes, folds=folds, fold=getattr(args, "fold", None),
                   split_seed=getattr(args, "split_seed", 0) or 0)

    def record(self):
        """What results.json (``split``) and args.json (``validation_split``) hold of the split."""
        if self.folds is not None:
            return {"rule": RULES["kfold"], "split_seed": self.split_seed, "folds": self.folds, "fold": self.fold}
        return {"rule": RULES["holdout"], "split_seed": self.split_seed, "val_classes": self.val_classes}

    def _flags(self):
        if self.folds is not None:
            return "--folds=%d --fold=%d" % (self.folds, self.fold)
        return "--val_classes=%g" % self.val_classes

    def apply(self, paths, labels, classes_per_batch):
        """``((train paths, labels), (val paths, labels), sorted held-out class ids)`` of the
        training split ``paths``, ``labels`` (order kept within each part)."""
        labels = np.asarray(labels)
        train_ids, val_ids = split_classes(labels, val_classes=self.val_classes, folds=self.folds,
                                           fold=self.fold, split_seed=self.split_seed)
        if len(train_ids) < classes_per_batch:
            raise ValueError(
                "%s leaves %d training classes, fewer than the %d a batch holds (--batch_size / "
                "--num_instances); hold out fewer classes or put fewer classes in a batch"
                % (self._flags(), len(train_ids), classes_per_batch))
        held_out = np.isin(labels, val_ids)
        keep, out = np.flatnonzero(~held_out), np.flatnonzero(held_out)
        train = ([paths[i] for i in keep], labels[keep])
        val = ([paths[i] for i in out], labels[out])
        return train, val, [int(c) for c in val_ids]
