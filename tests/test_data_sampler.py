"""ClassBalancedBatchSampler (data/sampler.py)."""

import numpy as np
import pytest

from data.sampler import ClassBalancedBatchSampler


def _labels(class_sizes, seed=0):
    """Labels with the given class sizes, shuffled, class ids not contiguous (10, 20, ...)."""
    labels = np.concatenate([np.full(n, 10 * (k + 1)) for k, n in enumerate(class_sizes)])
    return np.random.default_rng(seed).permutation(labels)


def _check_epoch(batches, labels, batch_size, num_instances):
    classes_per_batch = batch_size // num_instances
    for b, batch in enumerate(batches):
        assert len(batch) == batch_size, "batch {} has {} items, not {}".format(b, len(batch), batch_size)
        indices = np.array([index for index, _ in batch])
        batch_labels = labels[indices]
        groups = batch_labels.reshape(classes_per_batch, num_instances)
        assert (
            groups == groups[:, :1]
        ).all(), "batch {}: groups of {} consecutive items must share a class: {}".format(
            b, num_instances, groups
        )
        assert len(set(groups[:, 0].tolist())) == classes_per_batch, "batch {}: classes repeat: {}".format(
            b, groups[:, 0]
        )
        if num_instances % 2 == 0:
            assert (batch_labels[0::2] == batch_labels[1::2]).all(), "batch {}: rows 2i, 2i+1 differ".format(
                b
            )
        seeds = [seed for _, seed in batch]
        assert all(
            isinstance(s, int) and 0 <= s < 2**63 for s in seeds
        ), "sample seeds must be int64-range ints"


@pytest.mark.parametrize("batch_size, num_instances", [(16, 4), (12, 2), (8, 8), (6, 1)])
def test_batches_are_class_balanced(batch_size, num_instances):
    labels = _labels([5, 9, 3, 12, 7, 6, 4, 10, 8, 5, 2])
    sampler = ClassBalancedBatchSampler(labels, batch_size, num_instances, seed=1)
    num_classes = 11
    assert len(sampler) == num_classes * num_instances // batch_size, "len must be floor(C * m / B)"
    for epoch in range(4):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler), "epoch {}: {} batches, len says {}".format(
            epoch, len(batches), len(sampler)
        )
        _check_epoch(batches, labels, batch_size, num_instances)


def test_cars196_like_epoch_size():
    labels = _labels([82] * 98)
    sampler = ClassBalancedBatchSampler(labels, 128, 32)
    batches = list(sampler)
    assert len(sampler) == 24 and len(batches) == 24, "98 x 32 = 3136 samples -> 24 batches of 128"
    _check_epoch(batches, labels, 128, 32)
    firsts = [batch[0][0] for batch in batches]
    assert len(set(firsts)) == len(firsts), "first images come from a permutation"


def test_reproducible_and_epochs_differ():
    labels = _labels([6] * 10)
    first = ClassBalancedBatchSampler(labels, 8, 4, seed=3)
    second = ClassBalancedBatchSampler(labels, 8, 4, seed=3)
    other_seed = ClassBalancedBatchSampler(labels, 8, 4, seed=4)
    first.set_epoch(5)
    second.set_epoch(5)
    assert list(first) == list(second), "same seed and epoch must give identical batches"
    assert first.epoch_batches(5) == second.epoch_batches(5), "epoch_batches must be pure"
    assert first.epoch_batches(5) != first.epoch_batches(6), "different epochs must differ"
    assert first.epoch_batches(0) != other_seed.epoch_batches(0), "different seeds must differ"


def test_iteration_advances_epoch_and_set_epoch_resumes():
    labels = _labels([6] * 10)
    sampler = ClassBalancedBatchSampler(labels, 8, 4, seed=0)
    passes = [list(sampler) for _ in range(3)]
    assert passes[0] != passes[1] != passes[2], "each pass without set_epoch must advance the epoch"
    assert sampler.epoch == 3, "epoch should be 3 after 3 passes, got {}".format(sampler.epoch)
    sampler.set_epoch(1)
    assert list(sampler) == passes[1], "set_epoch(1) must replay the second pass"


def test_sample_seeds_are_distinct():
    labels = _labels([40] * 4)
    batches = ClassBalancedBatchSampler(labels, 16, 8).epoch_batches(0)
    seeds = [seed for batch in batches for _, seed in batch]
    assert len(set(seeds)) == len(seeds), "every sample gets its own augmentation seed"


def test_small_classes_use_replacement_and_large_ones_do_not():
    labels = _labels([3, 3, 3, 20, 20])  # num_instances - 1 = 7 draws
    sampler = ClassBalancedBatchSampler(labels, 16, 8)
    small_classes = {10, 20, 30}
    saw_repeat_draw = False
    for epoch in range(6):
        for batch in sampler.epoch_batches(epoch):
            indices = [index for index, _ in batch]
            for g in range(0, len(indices), 8):
                group = indices[g : g + 8]
                draws = group[1:]
                label = labels[group[0]]
                if label in small_classes:
                    saw_repeat_draw = True
                    assert len(set(group)) <= 3, "a class of 3 images cannot give more than 3 distinct"
                else:
                    assert len(set(draws)) == 7, "a class of 20 must be drawn without replacement: {}".format(
                        draws
                    )
    assert saw_repeat_draw, "small classes should have been sampled"


def test_permutation_restart_keeps_batch_classes():
    # 3 classes of one image each, 2 per batch, 1 instance: a permutation (3 images) ends
    # in the middle of the second batch, and the new permutation must not repeat its class.
    labels = np.array([0, 1, 2])
    sampler = ClassBalancedBatchSampler(labels, 2, 1)
    assert len(sampler) == 1, "3 samples per epoch -> one batch of 2"
    labels = np.array([0, 1, 2, 3, 4])
    sampler = ClassBalancedBatchSampler(labels, 2, 1)
    for epoch in range(50):
        for batch in sampler.epoch_batches(epoch):
            assert len({labels[i] for i, _ in batch}) == 2, "epoch {}: a class repeats in {}".format(
                epoch, batch
            )


@pytest.mark.parametrize(
    "labels, batch_size, num_instances, expected",
    [
        (
            np.arange(10),
            100,
            32,
            "batch_size 100 is not a multiple of num_instances 32; pick batch_size 96 or 128",
        ),
        (np.repeat(np.arange(3), 5), 128, 32, "has 3 classes but batch_size 128 / num_instances 32 needs 4"),
        (np.arange(10), 4, 0, "num_instances must be a positive integer"),
        (np.arange(10), 0, 2, "batch_size must be a positive integer"),
        (np.array([]), 4, 2, "non-empty"),
        (np.array([0.5, 1.5]), 2, 1, "integers"),
    ],
)
def test_bad_settings(labels, batch_size, num_instances, expected):
    with pytest.raises(ValueError) as info:
        ClassBalancedBatchSampler(labels, batch_size, num_instances)
    message = str(info.value)
    assert expected in message, "message {!r} should contain {!r}".format(message, expected)
    assert "\n" not in message, "message must be one line"


def test_epoch_shorter_than_batch_is_rejected():
    with pytest.raises(ValueError, match="shorter than one batch"):
        ClassBalancedBatchSampler(np.repeat(np.arange(2), 40), 24, 8)
    with pytest.raises(ValueError, match="epoch must be"):
        ClassBalancedBatchSampler(np.arange(4), 2, 1).set_epoch(-1)


def test_skip_batches_resumes_mid_epoch():
    from data.sampler import ClassBalancedBatchSampler

    labels = np.repeat(np.arange(12), 6)
    sampler = ClassBalancedBatchSampler(labels, batch_size=8, num_instances=4, seed=3)
    full = sampler.epoch_batches(5)
    sampler.set_epoch(5, skip_batches=2)
    resumed = list(sampler)
    assert resumed == full[2:], "skipping 2 batches must yield the rest of the same epoch"
    assert list(sampler) == sampler.epoch_batches(6), "the skip applies to one pass only"


def test_shards_are_disjoint_and_cover_the_epoch():
    from data.sampler import ClassBalancedBatchSampler

    labels = np.repeat(np.arange(12), 6)
    full = ClassBalancedBatchSampler(labels, 8, 4, seed=1).epoch_batches(2)
    shards = []
    for index in range(2):
        sampler = ClassBalancedBatchSampler(labels, 8, 4, seed=1)
        sampler.set_shard(2, index)
        sampler.set_epoch(2)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler) == len(full) // 2, "equal step counts per worker"
    assert shards[0] == full[0::2] and shards[1] == full[1::2], "round-robin shards of one epoch"
    with pytest.raises(ValueError, match="does not exist"):
        ClassBalancedBatchSampler(labels, 8, 4).set_shard(2, 2)
