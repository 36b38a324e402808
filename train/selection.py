"""Which evaluation's network becomes ``model_best.params``: the split that selects and its metric.

The release selects on the **test** classes by the first Recall@K rank (``R@1``), at every
evaluation; that stays the default. With a validation split of the training classes
(``--val_classes`` or ``--folds``/``--fold``, ``data.validation_split``) the selection is on it by
default (``--select_on=val``), the fair protocol of Musgrave, Belongie & Lim (ECCV 2020);
``--select_metric`` picks the metric (``R@1``, or ``MAP@R`` as the Reality Check). Either way the
test metrics of the selected epoch are what results.json's ``best`` reports, and ``selected_on``
says which split chose.

A record (results.json's ``initial``, ``best``, ``last``) holds the test metrics at its epoch and,
with a validation split, the validation metrics under ``"val"``. Record r improves on the best b
when ``value(r) > value(b)``, strictly: a tie keeps the earlier epoch, as the release.
"""
from dataclasses import dataclass

from data.validation_split import ValidationSplit
from utils.metrics.names import metric_keys

SPLITS = ("test", "val")


@dataclass(frozen=True)
class Selection:
    """The split (``test`` or ``val``) and the metric (a results key such as ``R@1``) that select."""

    split: str
    metric: str

    def value(self, record):
        """The selecting metric of a record (its ``val`` part when the validation split selects)."""
        source = (record.get("val") or {}) if self.split == "val" else record
        return source[self.metric]

    def improves(self, record, best):
        """True when ``record`` beats ``best`` (None: nothing yet) on the selecting metric."""
        return best is None or self.value(record) > self.value(best)

    @property
    def label(self):
        """How the log names it: ``val R@1``, ``test MAP@R``."""
        return "%s %s" % (self.split, self.metric)


def has_validation_split(args):
    """True when the run holds out a validation split of its training classes."""
    return ValidationSplit.from_args(args) is not None


def selection_from_args(args):
    """The :class:`Selection` of the run's flags (``--select_on``, ``--select_metric``, ``--recallk``):
    the release's (test, R@<first rank>) when none is given and no split is held out."""
    split = getattr(args, "select_on", None) or ("val" if has_validation_split(args) else "test")
    metric = getattr(args, "select_metric", None) or "R@%d" % args.recallk[0]
    return Selection(split, metric)


def check_select_metric(args):
    """One-line ValueError when ``--select_metric`` names no value the run's evaluation computes
    (its keys: ``R@k`` of ``--recallk``, then those of ``--eval_metrics``). Needs ``args.recallk``
    (a dataset's default ranks are known once its loaders are built)."""
    metric = getattr(args, "select_metric", None)
    if metric is None or args.recallk is None:
        return
    keys = metric_keys(args)
    if metric not in keys:
        raise ValueError("--select_metric=%s is not a metric this run computes; choose one of %s "
                         "(--recallk and --eval_metrics decide them)" % (metric, ", ".join(keys)))
