"""Test classes that are also training classes: the zero-shot protocol's check.

Deep metric learning benchmarks test on classes the network never trained on (CARS196: classes
1-98 train, 99-196 test). A test class that is also a training class turns that zero-shot
protocol into a seen-class one without a word, so it is refused unless asked for
(``--seen_classes=True``), and then named in the log and in ``results.json``.

What makes two classes the same depends on the dataset (``DatasetSpec.class_names``): a folder
dataset numbers each split's class folders from 0 by name, so its classes are their folder names;
a dataset read from split files labels every image with its class id, the same id in both
splits. The split files ``data.prepare`` and ``data.demo`` write hold disjoint class ids by
construction (CARS196 and CUB split the ids in halves, SOP's lists are refused when they share
one, the demo splits its classes in halves); a split file written by hand is checked all the same.
"""
import logging

import numpy as np

logger = logging.getLogger(__name__)

SHOWN = 10  # class names a message lists before "..."


def _names(spec, data_dir, which, labels):
    """The class of each distinct label of a split, as strings, in label order."""
    labels = np.unique(labels)
    if spec.class_names is None:
        return [str(label) for label in labels]
    names = spec.class_names(data_dir, which)
    return [names[label] for label in labels]


def shared_classes(spec, data_dir, train_labels, test_labels):
    """The test classes that are also training classes, in test label order (class folder names,
    or class ids as strings)."""
    trained = set(_names(spec, data_dir, "train", train_labels))
    return [name for name in _names(spec, data_dir, "test", test_labels) if name in trained]


def _listed(names):
    shown = ", ".join(names[:SHOWN])
    return shown + (", ..." if len(names) > SHOWN else "")


def check_unseen_test_classes(spec, data_dir, train_labels, test_labels, seen_classes=False):
    """The classes shared by both splits (an empty list for the zero-shot protocol).

    Raises
    ------
    ValueError
        One line naming them, when there are any and ``seen_classes`` is False.
    """
    shared = shared_classes(spec, data_dir, train_labels, test_labels)
    if not shared:
        return shared
    what = "class folder name(s)" if spec.class_names is not None else "class id(s)"
    count = "%d of the %d test classes" % (len(shared), len(np.unique(test_labels)))
    if not seen_classes:
        raise ValueError(
            "%s in %s are also training classes (%s %s): the zero-shot protocol tests on classes "
            "not trained on; keep each class in one split, or pass --seen_classes=True to test on "
            "seen classes" % (count, data_dir, what, _listed(shared)))
    logger.warning("%s are also training classes (%s %s): the seen-class protocol (--seen_classes=True); "
                   "results.json lists them as seen_test_classes", count, what, _listed(shared))
    return shared
