"""data.validation_split and build_loaders(validation=...): the held-out classes' training images leave
training (no training batch of any epoch holds one) and form the validation loader, in split order;
the split follows the rule written out here; a split that leaves too few classes for a batch is one
line."""
import numpy as np
import pytest

from data import build_loaders, load_split
from data.demo import generate_demo
from data.validation_split import ValidationSplit


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return str(generate_demo(str(tmp_path_factory.mktemp("demo") / "d"), classes=16, per_class=6, size=32, seed=2))


def held_out_by_the_rule(labels, count, split_seed):
    ids = sorted(set(int(c) for c in labels))
    permuted = [ids[i] for i in np.random.RandomState(split_seed).permutation(len(ids))]
    return sorted(permuted[:count])


@pytest.mark.parametrize("split_seed", [0, 7])
def test_held_out_classes_never_reach_a_training_batch_and_form_the_validation_loader(demo_dir, split_seed):
    paths, labels = load_split("demo", demo_dir, "train")
    want = held_out_by_the_rule(labels, 3, split_seed)
    train_loader, _, info = build_loaders("demo", demo_dir, 32, 8, 4, 0, seed=1,
                                          validation=ValidationSplit(val_classes=3, split_seed=split_seed))
    assert info.val_class_ids == want
    want_val = [(p, int(c)) for p, c in zip(paths, labels) if int(c) in want]
    assert list(zip(info.val_paths, info.val_labels.tolist())) == want_val, "every held-out image, in split order"
    assert info.num_train_classes == len(set(labels.tolist())) - 3
    assert info.num_train_images == len(paths) - len(want_val)
    trained = set()
    for epoch in range(3):
        info.train_sampler.set_epoch(epoch)
        for _, batch_labels in train_loader:
            trained.update(batch_labels.asnumpy().tolist())
    assert trained and not trained & set(want), "a held-out class reached a training batch"
    seen = [lab for _, batch in info.val_loader for lab in batch.asnumpy().tolist()]
    assert seen == info.val_labels.tolist(), "the validation loader yields every held-out image once, in order"
    images, _ = next(iter(info.val_loader))
    assert images.shape[1:] == (32, 32, 3)


def test_without_a_split_nothing_is_held_out(demo_dir):
    paths, labels = load_split("demo", demo_dir, "train")
    _, _, info = build_loaders("demo", demo_dir, 32, 8, 4, 0)
    assert info.val_loader is None and info.val_class_ids is None and info.num_train_images == len(paths)


def test_a_fold_validates_its_part():
    labels = np.repeat(np.arange(10), 2)
    paths = ["img%d" % i for i in range(20)]
    parts = [ValidationSplit(folds=3, fold=fold).apply(paths, labels, 2)[2] for fold in range(3)]
    assert sorted(sum(parts, [])) == list(range(10)) and [len(p) for p in parts] == [4, 3, 3]
    assert ValidationSplit(folds=3, fold=1).record() == {"rule": "class_split/kfold", "split_seed": 0,
                                                         "folds": 3, "fold": 1}


def test_too_few_training_classes_left_for_a_batch_is_one_line():
    labels = np.repeat(np.arange(6), 2)
    with pytest.raises(ValueError) as info:
        ValidationSplit(val_classes=3).apply(["p"] * 12, labels, 4)
    assert str(info.value) == ("--val_classes=3 leaves 3 training classes, fewer than the 4 a batch holds "
                               "(--batch_size / --num_instances); hold out fewer classes or put fewer "
                               "classes in a batch")
