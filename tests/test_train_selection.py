"""train.selection: the release's selection (test, R@<first rank>) unless a split or flag says
otherwise; a record improves only strictly; --select_metric names a metric the run computes."""
from argparse import Namespace

import pytest

from train.selection import Selection, check_select_metric, selection_from_args


def flags(**given):
    base = dict(recallk=[1, 2, 4, 8], eval_metrics=["recall", "map_at_r"], val_classes=None, folds=None,
                select_on=None, select_metric=None)
    return Namespace(**dict(base, **given))


def test_defaults():
    assert selection_from_args(flags()) == Selection("test", "R@1")
    assert selection_from_args(flags(recallk=[10, 100])) == Selection("test", "R@10"), "the release's first rank"
    assert selection_from_args(flags(val_classes=2)) == Selection("val", "R@1")
    assert selection_from_args(flags(folds=4, select_on="test", select_metric="MAP@R")) == Selection("test", "MAP@R")


def test_improves_strictly_on_the_selecting_split():
    best = {"R@1": 0.5, "val": {"R@1": 0.2}}
    assert Selection("val", "R@1").improves({"R@1": 0.1, "val": {"R@1": 0.3}}, best)
    assert not Selection("test", "R@1").improves({"R@1": 0.1, "val": {"R@1": 0.3}}, best)
    assert not Selection("val", "R@1").improves({"R@1": 0.9, "val": {"R@1": 0.2}}, best), "a tie keeps the earlier"
    assert Selection("val", "R@1").improves({"R@1": 0.0, "val": {"R@1": 0.0}}, None)


def test_select_metric_must_be_computed():
    check_select_metric(flags(select_metric="MAP@R"))
    check_select_metric(flags(select_metric="R@3", recallk=None))  # ranks not known yet: checked later
    with pytest.raises(ValueError, match=r"^--select_metric=NMI is not a metric this run computes; choose one of "
                                         r"R@1, R@2, R@4, R@8, MAP@R \(--recallk"):
        check_select_metric(flags(select_metric="NMI"))
