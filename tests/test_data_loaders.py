"""build_loaders end to end on a tiny generated tree, in-process and with forked workers."""

import os

import mxnet as mx
import numpy as np
import pytest

from data import DATASETS, ImageListDataset, TestTransform, build_loaders, resolve_dataset
from data.demo import generate_demo


@pytest.fixture(scope="module")
def tiny_tree(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tree"))
    return generate_demo(out, classes=6, per_class=8, size=32, seed=0)


def _epoch(loader, sampler, epoch):
    sampler.set_epoch(epoch)
    return [(images.asnumpy(), labels.asnumpy()) for images, labels in loader]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_train_and_test_loaders(tiny_tree, num_workers):
    train_loader, test_loader, info = build_loaders(
        "demo",
        tiny_tree,
        image_size=24,
        batch_size=8,
        num_instances=4,
        num_workers=num_workers,
        seed=0,
        test_batch_size=5,
    )
    expected = {"num_train_images": 24, "num_test_images": 24, "num_train_classes": 3, "num_test_classes": 3}
    counts = {k: getattr(info, k) for k in expected}
    assert counts == expected, "info {}".format(counts)
    sampler = info.train_sampler
    assert len(train_loader) == 3 * 4 // 8 == 1, "one batch of 8 per epoch of 3 classes x 4"
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(train_loader)
        assert len(batches) == len(train_loader), "epoch {}: {} batches".format(epoch, len(batches))
        for images, labels in batches:
            assert isinstance(images, mx.nd.NDArray) and images.dtype == np.uint8, "images uint8 NDArray"
            assert images.shape == (8, 24, 24, 3), "images shape {}".format(images.shape)
            assert labels.dtype == np.int32 and labels.shape == (8,), "labels {} {}".format(
                labels.dtype, labels.shape
            )
            groups = labels.asnumpy().reshape(2, 4)
            assert (groups == groups[:, :1]).all() and groups[0, 0] != groups[1, 0], "class layout {}".format(
                groups
            )
    test_batches = list(test_loader)
    assert [b[0].shape[0] for b in test_batches] == [5, 5, 5, 5, 4], "last test batch must be kept"
    test_labels = np.concatenate([b[1].asnumpy() for b in test_batches])
    assert np.array_equal(test_labels, info.test_labels), "test loader must follow the split order"
    assert test_batches[0][0].dtype == np.uint8, "test images uint8"


def test_workers_reproduce_in_process_batches(tiny_tree):
    in_process = build_loaders("demo", tiny_tree, 24, 8, 4, num_workers=0, seed=7)
    forked = build_loaders("demo", tiny_tree, 24, 8, 4, num_workers=2, seed=7)
    for epoch in (0, 3):
        a = _epoch(in_process[0], in_process[2].train_sampler, epoch)
        b = _epoch(forked[0], forked[2].train_sampler, epoch)
        for (images_a, labels_a), (images_b, labels_b) in zip(a, b):
            assert np.array_equal(labels_a, labels_b), "epoch {}: labels differ across worker counts".format(
                epoch
            )
            assert np.array_equal(
                images_a, images_b
            ), "epoch {}: augmentation differs across worker counts".format(epoch)
    first = _epoch(in_process[0], in_process[2].train_sampler, 0)
    second = _epoch(in_process[0], in_process[2].train_sampler, 1)
    assert not np.array_equal(first[0][0], second[0][0]), "epochs must differ"


def test_dataset_keys(tiny_tree):
    paths = [os.path.join(tiny_tree, "images/001/{:04d}.jpg".format(i)) for i in (1, 2)]
    dataset = ImageListDataset(paths, [1, 1], TestTransform(16), seed=0)
    image, label = dataset[1]
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8, "int key -> uint8 image"
    assert isinstance(label, np.int32), "label must be np.int32, got {}".format(type(label))
    image_tuple, _ = dataset[(1, 12345)]
    assert np.array_equal(image, image_tuple), "the test transform ignores the seed"


def test_registry_and_errors(tmp_path, tiny_tree):
    assert resolve_dataset("car196") is DATASETS["cars196"], "alias car196"
    assert resolve_dataset("CARS") is DATASETS["cars196"], "alias cars, case-insensitive"
    with pytest.raises(ValueError, match="valid names: cars196.*demo"):
        resolve_dataset("imagenet")
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ValueError) as info:
        build_loaders("cars196", missing, 24, 8, 4, 0)
    message = str(info.value)
    assert missing in message and "python3 -m data.prepare cars196 --data_dir " + missing in message, message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="is empty; create it with: python3 -m data.demo --out"):
        build_loaders("demo", str(empty), 24, 8, 4, 0)
    (empty / "train.txt").write_text("garbage\n")
    with pytest.raises(ValueError, match="train.txt:1: expected the header"):
        build_loaders("demo", str(empty), 24, 8, 4, 0)
    with pytest.raises(ValueError, match="not a multiple of num_instances"):
        build_loaders("demo", tiny_tree, 24, 10, 4, 0)


def test_missing_image_is_reported(tmp_path):
    tree = generate_demo(str(tmp_path / "t"), classes=4, per_class=3, size=24)
    os.remove(os.path.join(tree, "images/003/0002.jpg"))
    with pytest.raises(
        ValueError, match="1 of 6 images listed in .*test.txt are missing .*images/003/0002.jpg"
    ):
        build_loaders("demo", tree, 24, 4, 2, 0)
