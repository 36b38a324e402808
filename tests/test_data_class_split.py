"""data.class_split: class-disjoint validation splits of the training classes, against the rule
written out here (sort, permute with the split seed, take the first K / cut into K parts)."""
import numpy as np
import pytest

from data.class_split import split_classes


def reference_split(class_ids, val_classes=None, folds=None, fold=None, split_seed=0):
    ids = sorted(set(int(c) for c in class_ids))
    order = np.random.RandomState(split_seed).permutation(len(ids))
    permuted = [ids[i] for i in order]
    if folds is None:
        k = int(round(val_classes * len(ids))) if val_classes < 1 else int(val_classes)
        k = max(1, k)
        val = permuted[:k]
    else:
        parts, start = [], 0
        for part in range(folds):
            size = len(ids) // folds + (1 if part < len(ids) % folds else 0)
            parts.append(permuted[start:start + size])
            start += size
        val = parts[fold]
    return sorted(set(ids) - set(val)), sorted(val)


@pytest.mark.parametrize("val_classes", [1, 5, 0.25, 0.5])
def test_holdout_follows_the_rule_and_is_class_disjoint(val_classes):
    labels = np.repeat(np.arange(1, 99), 3)  # CARS196's 98 training classes, 3 images each
    train, val = split_classes(labels, val_classes=val_classes, split_seed=3)
    want_train, want_val = reference_split(labels, val_classes=val_classes, split_seed=3)
    assert list(train) == want_train and list(val) == want_val, "the recorded rule"
    assert not set(train) & set(val), "class-disjoint"
    assert set(train) | set(val) == set(range(1, 99)), "every training class on one side"


def test_folds_partition_the_training_classes():
    labels = np.arange(10, 31)  # 21 classes in 4 folds: sizes 6, 5, 5, 5
    seen = []
    for fold in range(4):
        train, val = split_classes(labels, folds=4, fold=fold, split_seed=0)
        want_train, want_val = reference_split(labels, folds=4, fold=fold)
        assert list(val) == want_val and list(train) == want_train, "fold %d" % fold
        seen += list(val)
    assert sorted(seen) == list(range(10, 31)), "the folds' validation parts partition the classes"
    assert [len(split_classes(labels, folds=4, fold=f)[1]) for f in range(4)] == [6, 5, 5, 5]


def test_the_split_depends_on_the_split_seed_only():
    labels = np.arange(50)
    assert list(split_classes(labels, val_classes=10, split_seed=0)[1]) == \
        list(split_classes(labels[::-1], val_classes=10, split_seed=0)[1]), "the order of the labels does not matter"
    assert list(split_classes(labels, val_classes=10, split_seed=0)[1]) != \
        list(split_classes(labels, val_classes=10, split_seed=1)[1]), "another split seed, another split"


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(val_classes=10), "leaves none to train on"),
    (dict(val_classes=0), "--val_classes must be"),
    (dict(val_classes=2.5), "whole number"),
    (dict(folds=4, fold=4), "--fold must be in 0 .. 3"),
    (dict(folds=11, fold=0), "--folds=11"),
])
def test_bad_splits_are_one_line(kwargs, fragment):
    with pytest.raises(ValueError) as info:
        split_classes(np.arange(10), **kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)
