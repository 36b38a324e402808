"""Class-disjoint validation splits of the training classes: a held-out part, or k folds.

The fair protocol of Musgrave, Belongie & Lim ("A Metric Learning Reality Check", ECCV 2020)
selects the model on classes that are neither trained on nor tested: a validation split of the
*training* classes. The test classes are never touched.

The rule, so that a split can be rebuilt from what a run records: sort the distinct training class
ids; permute them with ``numpy.random.RandomState(split_seed).permutation``; then

- held-out split (``--val_classes=K``, or a fraction f in (0, 1): K = round(f x number of classes),
  at least 1): the first K permuted ids validate, the others train;
- k folds (``--folds=K --fold=i``): the permuted ids are cut into K consecutive parts whose sizes
  differ by at most one (the first ``n mod K`` parts one larger); part i validates, the rest train.
  The folds partition the training classes.

The split does not depend on the run's ``--seed``: runs of several seeds share one split.
"""
import numpy as np


def holdout_count(val_classes, num_classes):
    """The number of held-out classes that ``--val_classes`` asks for out of ``num_classes``."""
    if val_classes <= 0:
        raise ValueError("--val_classes must be a number of classes (1 or more) or a fraction in (0, 1), "
                         "got %g" % val_classes)
    count = int(round(val_classes * num_classes)) if val_classes < 1 else int(val_classes)
    if val_classes >= 1 and val_classes != int(val_classes):
        raise ValueError("--val_classes=%g: give a whole number of classes or a fraction in (0, 1)" % val_classes)
    return max(1, count)


def _permuted(class_ids, split_seed):
    ids = np.unique(np.asarray(class_ids))
    return ids[np.random.RandomState(split_seed).permutation(len(ids))]


def fold_parts(num_classes, folds):
    """``[(start, stop), ...]``: the K consecutive parts of ``num_classes`` permuted ids."""
    sizes = [num_classes // folds + (1 if part < num_classes % folds else 0) for part in range(folds)]
    bounds = np.cumsum([0] + sizes)
    return [(int(bounds[part]), int(bounds[part + 1])) for part in range(folds)]


def split_classes(class_ids, val_classes=None, folds=None, fold=None, split_seed=0):
    """``(train_ids, val_ids)``, each sorted, of the distinct ``class_ids`` (see the module docstring).

    Exactly one of ``val_classes`` and ``folds`` (with ``fold``) is given. One-line ValueError when
    the split would leave no training or no validation class.
    """
    permuted = _permuted(class_ids, split_seed)
    n = len(permuted)
    if folds is not None:
        if not 2 <= folds <= n:
            raise ValueError("--folds=%d: need 2 to %d folds (one class at least in each) of the %d "
                             "training classes" % (folds, n, n))
        if fold is None or not 0 <= fold < folds:
            raise ValueError("--fold must be in 0 .. %d for --folds=%d, got %s" % (folds - 1, folds, fold))
        start, stop = fold_parts(n, folds)[fold]
        val = permuted[start:stop]
    else:
        count = holdout_count(val_classes, n)
        if count >= n:
            raise ValueError("--val_classes=%g holds out %d of the %d training classes and leaves none to "
                             "train on; hold out fewer" % (val_classes, count, n))
        val = permuted[:count]
    train = np.setdiff1d(permuted, val)
    return np.sort(train), np.sort(val)
