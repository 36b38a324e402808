"""Decoding and the uint8 train / test transforms (data/transforms.py)."""

import cv2
import mxnet as mx
import numpy as np
import pytest

from data.transforms import MEAN_RGB, STD_RGB, TestTransform, TrainTransform, decode_image


def _random_image(height=61, width=87, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _coordinate_image(side):
    """Channel 0 holds the column, channel 1 the row, so a crop reveals its offset."""
    rows, cols = np.mgrid[0:side, 0:side]
    return np.stack([cols, rows, np.zeros_like(rows)], axis=-1).astype(np.uint8)


def test_constants():
    assert MEAN_RGB == (0.485, 0.456, 0.406), "ImageNet mean expected"
    assert STD_RGB == (0.229, 0.224, 0.225), "ImageNet std expected"


@pytest.mark.parametrize("size", [32, 227])
def test_shapes_dtype_range(size):
    image = _random_image()
    for seed in range(8):
        out = TrainTransform(size)(image, np.random.default_rng(seed))
        assert out.shape == (size, size, 3), "train output shape {}".format(out.shape)
        assert out.dtype == np.uint8, "train output must stay uint8, got {}".format(out.dtype)
        assert out.flags["C_CONTIGUOUS"], "train output must be contiguous"
    out = TestTransform(size)(image)
    assert out.shape == (size, size, 3) and out.dtype == np.uint8, "test output {} {}".format(
        out.shape, out.dtype
    )
    expected = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(out, expected), "test transform must be a plain bilinear resize"


def test_crop_offsets_within_bounds_and_cover_range():
    size = 32
    transform = TrainTransform(size)
    enlarged = transform.enlarged_size
    assert enlarged == 36, "round(1.125 * 32) = 36, got {}".format(enlarged)
    image = _coordinate_image(enlarged)  # already enlarged, so resizing is the identity
    offsets, resized_only, flips = set(), 0, 0
    for seed in range(400):
        out = transform(image, np.random.default_rng(seed))
        if out[0, 0, 0] > out[0, -1, 0]:
            flips += 1
            out = out[:, ::-1]
        x1, y1 = int(out[0, 0, 0]), int(out[0, 0, 1])
        if out[-1, -1, 0] - x1 != size - 1:  # resized to S: columns are not consecutive
            resized_only += 1
            continue
        assert 0 <= x1 <= enlarged - size and 0 <= y1 <= enlarged - size, "offset {} out of range".format(
            (x1, y1)
        )
        assert out[-1, -1, 1] - y1 == size - 1, "crop must be S rows high"
        offsets.add((x1, y1))
    assert 140 < resized_only < 260, "resize branch should be taken ~50%, got {}/400".format(resized_only)
    assert 140 < flips < 260, "flip should happen ~50%, got {}/400".format(flips)
    xs = {x for x, _ in offsets}
    ys = {y for _, y in offsets}
    assert xs == set(range(5)) and ys == set(range(5)), "offsets should cover 0..4, got {} {}".format(xs, ys)


def _reference_train_transform(image, rng, size):
    """The original's Random2DTranslation + flip, written with mx.image, driven by the same draws."""
    data = mx.nd.array(image, dtype=np.uint8)
    if rng.random() < 0.5:
        out = mx.image.imresize(data, size, size, interp=1)
    else:
        enlarged = int(round(size * 1.125))
        resized = mx.image.imresize(data, enlarged, enlarged, interp=1)
        x1 = int(round(rng.uniform(0, enlarged - size)))
        y1 = int(round(rng.uniform(0, enlarged - size)))
        out = mx.image.fixed_crop(resized, x1, y1, size, size)
    if rng.random() < 0.5:
        out = mx.nd.flip(out, axis=1)
    return out.asnumpy()


@pytest.mark.parametrize("size", [40, 227])
def test_train_transform_matches_mxnet_reference(size):
    image = _random_image(180, 240, seed=3)
    branches = set()
    for seed in range(12):
        ours = TrainTransform(size)(image, np.random.default_rng(seed))
        branches.add(bool(np.random.default_rng(seed).random() < 0.5))
        reference = _reference_train_transform(image, np.random.default_rng(seed), size)
        diff = np.abs(ours.astype(np.int16) - reference.astype(np.int16)).max()
        assert diff <= 1, "seed {}: max abs diff {} vs mx.image reference".format(seed, diff)
    assert len(branches) == 2, "both resize and crop branches must be exercised"


def test_bad_inputs():
    with pytest.raises(ValueError, match="image_size"):
        TrainTransform(0)
    with pytest.raises(ValueError, match="H x W x 3"):
        TestTransform(8)(np.zeros((8, 8), np.uint8))


def test_decode_image_rgb_and_errors(tmp_path):
    bgr = np.zeros((10, 12, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's BGR order
    path = str(tmp_path / "red.png")
    cv2.imwrite(path, bgr)
    rgb = decode_image(path)
    assert rgb.shape == (10, 12, 3) and rgb.dtype == np.uint8, "decoded {} {}".format(rgb.shape, rgb.dtype)
    assert rgb[0, 0].tolist() == [255, 0, 0], "channels must be RGB, got {}".format(rgb[0, 0])
    missing = str(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="cannot decode image .*missing.jpg: no such file"):
        decode_image(missing)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot decode image .*broken.jpg"):
        decode_image(str(broken))
