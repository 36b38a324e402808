"""A small synthetic metric-learning dataset, generated offline from NumPy and OpenCV alone.

Each class is a two-character string in a fixed OpenCV Hershey font. Every image renders
it under a random affine map (rotation, scale, shear, translation), stroke thickness,
text colour and background (flat colour, gradient or smooth noise, sometimes with clutter
lines and shapes), then adds blur and pixel noise and stores a JPEG. The first half of the
classes is the training split, the unseen second half the test split, written in the
CARS196 split format, so the whole pipeline (``build_loaders('demo', ...)``) runs without
downloading anything.

Command line::

    python3 -m data.demo --out data/demo [--classes 48 --per_class 40 --size 72 --seed 0]

Generation is deterministic for given settings; a stamp file records them, and a complete
dataset with the same settings is not generated again (``--force`` does).

Its registry entry is ``data.demo_spec.SPEC`` (the package does not import this module, which
``-m`` runs).
"""

import json
import logging
import os
import shutil
import sys
import time

import cv2
import numpy as np

from .demo_spec import SPEC
from .meta import write_split
from .split_manifest import manifest_sha256, write_manifest

logger = logging.getLogger(__name__)

STAMP_NAME = "demo_stamp.json"
GENERATOR_VERSION = 2  # bump when the rendering changes, so old stamps no longer match
IMAGE_DIR = "images"
JPEG_QUALITY = 90

# Characters that stay distinct under the rotations used here (no O/0, I/1, 6/9 ...).
_GLYPH_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ234578"
_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
)
# Nuisance ranges: strong enough that a randomly initialised network is near chance, mild
# enough that GoogLeNet trained from scratch on 24 classes for a few minutes on a CPU learns
# to retrieve the 24 unseen ones.
_SATURATION = 0.0  # colours are mixed towards grey by 1 - _SATURATION
_CLUTTER_PROBABILITY = 0.1
_ROTATION_DEG = 12.0
_SCALE_RANGE = (0.8, 1.15)
_SHEAR = 0.1
_SHIFT_FRACTION = 0.08
_MIN_CONTRAST = 70.0  # minimum |luma(text) - luma(background)|, 0-255


def class_glyphs(classes, seed=0):
    """The (text, font) of every class: distinct two-character strings, one font each.

    Returns
    -------
    list of (str, int)
        Entry ``k`` describes class ``k + 1``.
    """
    rng = np.random.default_rng([seed, 104729])
    max_classes = len(_GLYPH_CHARS) ** 2
    if classes > max_classes:
        raise ValueError("the demo supports at most {} classes, got {}".format(max_classes, classes))
    texts = []
    seen = set()
    while len(texts) < classes:
        text = "".join(rng.choice(list(_GLYPH_CHARS), size=2))
        if text not in seen:
            seen.add(text)
            texts.append(text)
    fonts = rng.integers(0, len(_FONTS), size=classes)
    return [(text, _FONTS[f]) for text, f in zip(texts, fonts)]


def _luma(rgb):
    rgb = np.asarray(rgb, dtype=np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _background(size, rng):
    """A float32 (size, size, 3) background in [0, 255]."""
    kind = rng.integers(0, 3)
    if kind == 0:  # flat colour
        background = np.empty((size, size, 3), np.float32)
        background[:] = rng.uniform(0, 255, size=3)
    elif kind == 1:  # linear gradient between two colours
        angle = rng.uniform(0, 2 * np.pi)
        coords = np.linspace(-1.0, 1.0, size, dtype=np.float32)
        ramp = np.cos(angle) * coords[None, :] + np.sin(angle) * coords[:, None]
        ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
        start, end = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
        background = start + ramp[..., None] * (end - start)
    else:  # smooth colour noise
        cells = int(rng.integers(2, 6))
        coarse = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.float32)
        background = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    grey = background.mean(axis=2, keepdims=True)
    background = np.clip(grey + _SATURATION * (background - grey), 0, 255)
    if rng.random() < _CLUTTER_PROBABILITY:  # clutter: lines, circles, rectangles
        canvas = np.ascontiguousarray(background)
        for _ in range(int(rng.integers(1, 4))):
            colour = tuple(float(c) for c in rng.uniform(0, 255, size=3))
            p1 = tuple(int(v) for v in rng.integers(0, size, size=2))
            p2 = tuple(int(v) for v in rng.integers(0, size, size=2))
            thickness = int(rng.integers(1, 3))
            shape = rng.integers(0, 3)
            if shape == 0:
                cv2.line(canvas, p1, p2, colour, thickness, cv2.LINE_AA)
            elif shape == 1:
                radius = int(rng.integers(size // 10, size // 3))
                cv2.circle(canvas, p1, radius, colour, thickness, cv2.LINE_AA)
            else:
                cv2.rectangle(canvas, p1, p2, colour, thickness, cv2.LINE_AA)
        background = canvas
    return background


def _glyph_mask(text, font, size, rng):
    """Anti-aliased coverage in [0, 1], float32 (size, size), of the text under a random affine map."""
    canvas_side = 2 * size  # draw at twice the resolution, the affine map halves it
    thickness = int(rng.integers(2, 7))
    (width, height), baseline = cv2.getTextSize(text, font, 1.0, thickness)
    font_scale = 0.6 * canvas_side / max(width, height + baseline)
    (width, height), baseline = cv2.getTextSize(text, font, font_scale, thickness)
    canvas = np.zeros((canvas_side, canvas_side), np.uint8)
    origin = ((canvas_side - width) // 2, (canvas_side + height) // 2)
    cv2.putText(canvas, text, origin, font, font_scale, 255, thickness, cv2.LINE_AA)

    angle = np.deg2rad(rng.uniform(-_ROTATION_DEG, _ROTATION_DEG))
    scale = rng.uniform(*_SCALE_RANGE) * size / canvas_side
    shear = rng.uniform(-_SHEAR, _SHEAR)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = scale * rotation @ np.array([[1.0, shear], [0.0, 1.0]])
    shift = rng.uniform(-_SHIFT_FRACTION, _SHIFT_FRACTION, size=2) * size
    centre_in = np.array([canvas_side / 2.0, canvas_side / 2.0])
    centre_out = np.array([size / 2.0, size / 2.0]) + shift
    matrix = np.hstack([linear, (centre_out - linear @ centre_in)[:, None]])
    mask = cv2.warpAffine(canvas, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    return mask.astype(np.float32) / 255.0


def render_image(text, font, size, rng):
    """One uint8 RGB (size, size, 3) image of ``text`` with random nuisances."""
    background = _background(size, rng)
    mask = _glyph_mask(text, font, size, rng)
    background_luma = float(_luma(background.reshape(-1, 3).mean(axis=0)))
    colour = rng.uniform(0, 255, size=3)
    for _ in range(20):
        if abs(_luma(colour) - background_luma) >= _MIN_CONTRAST:
            break
        colour = rng.uniform(0, 255, size=3)
    else:
        colour = np.full(3, 0.0 if background_luma > 127 else 255.0)
    image = background * (1.0 - mask[..., None]) + colour.astype(np.float32) * mask[..., None]
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.2))
    noise_sigma = rng.uniform(0.0, 10.0)
    image = image + rng.normal(0.0, noise_sigma, size=image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _settings(classes, per_class, size, seed):
    return {
        "generator_version": GENERATOR_VERSION,
        "classes": int(classes),
        "per_class": int(per_class),
        "size": int(size),
        "seed": int(seed),
        "num_images": int(classes) * int(per_class),
    }


def _relpath(class_id, index):
    return "{}/{:03d}/{:04d}.jpg".format(IMAGE_DIR, class_id, index)


def _is_complete(out_dir, settings):
    stamp_path = os.path.join(out_dir, STAMP_NAME)
    try:
        with open(stamp_path, "r", encoding="utf-8") as handle:
            stamp = json.load(handle)
    except (OSError, ValueError):
        return False
    if stamp != settings:
        return False
    if not all(os.path.isfile(os.path.join(out_dir, n)) for n in ("train.txt", "test.txt")):
        return False
    return all(
        os.path.isfile(os.path.join(out_dir, _relpath(c, i)))
        for c in range(1, settings["classes"] + 1)
        for i in range(1, settings["per_class"] + 1)
    )


def _check_settings(classes, per_class, size, seed):
    for name, value, minimum in (
        ("classes", classes, 2),
        ("per_class", per_class, 2),
        ("size", size, 16),
        ("seed", seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError("{} must be an integer >= {}, got {!r}".format(name, minimum, value))
    if classes % 2:
        raise ValueError("classes must be even (half train, half test), got {}".format(classes))


def _render_all(out_dir, image_root, classes, per_class, size, seed):
    """Render and write every image; returns the (train rows, test rows) of the split files."""
    glyphs = class_glyphs(classes, seed)
    train_rows, test_rows = [], []
    image_id = 0
    for class_id, (text, font) in enumerate(glyphs, start=1):
        os.makedirs(os.path.join(image_root, "{:03d}".format(class_id)), exist_ok=True)
        for index in range(1, per_class + 1):
            image_id += 1
            rng = np.random.default_rng([seed, class_id, index])
            image = render_image(text, font, size, rng)
            relpath = _relpath(class_id, index)
            ok = cv2.imwrite(
                os.path.join(out_dir, relpath),
                cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
            )
            if not ok:
                raise ValueError(
                    "cannot write {}; check that {} is writable".format(
                        os.path.join(out_dir, relpath), out_dir
                    )
                )
            rows = train_rows if class_id <= classes // 2 else test_rows
            rows.append((image_id, class_id, relpath))
    return train_rows, test_rows


def generate_demo(out_dir, classes=48, per_class=40, size=72, seed=0, force=False):
    """Generate the demo dataset into ``out_dir`` (skipped when already complete).

    Parameters
    ----------
    out_dir : str
        Destination; receives ``images/<class>/<n>.jpg``, ``train.txt``, ``test.txt`` and
        the stamp file.
    classes : int, default 48
        Number of classes (even); classes ``1 .. classes/2`` train, the rest test.
    per_class : int, default 40
        Images per class.
    size : int, default 72
        Image side in pixels.
    seed : int, default 0
        Seed of the glyph choice and of every rendering.
    force : bool, default False
        Regenerate even if a complete dataset with these settings exists.

    Returns
    -------
    str
        ``out_dir``.
    """
    _check_settings(classes, per_class, size, seed)
    settings = _settings(classes, per_class, size, seed)
    if not force and _is_complete(out_dir, settings):
        if manifest_sha256(out_dir) is None:  # generated before manifests existed
            write_manifest(out_dir)
        logger.info("demo dataset in %s is complete (%s); not regenerating", out_dir, settings)
        return out_dir
    started = time.time()
    stamp_path = os.path.join(out_dir, STAMP_NAME)
    image_root = os.path.join(out_dir, IMAGE_DIR)
    if os.path.isfile(stamp_path):
        os.remove(stamp_path)  # the directory is ours: drop images of other settings
        shutil.rmtree(image_root, ignore_errors=True)
    os.makedirs(out_dir, exist_ok=True)

    train_rows, test_rows = _render_all(out_dir, image_root, classes, per_class, size, seed)
    write_split(os.path.join(out_dir, "train.txt"), train_rows)
    write_split(os.path.join(out_dir, "test.txt"), test_rows)
    write_manifest(out_dir)
    tmp_stamp = stamp_path + ".tmp"
    with open(tmp_stamp, "w", encoding="utf-8") as handle:
        json.dump(settings, handle, indent=1, sort_keys=True)
    os.replace(tmp_stamp, stamp_path)  # written last: a stamp means a complete dataset
    logger.info(
        "generated demo dataset in %s: %d classes x %d images of %dx%d in %.1f s",
        out_dir,
        classes,
        per_class,
        size,
        size,
        time.time() - started,
    )
    return out_dir


def main(argv=None):
    """Command line entry; returns the exit code (2 on a bad setting)."""
    from utils.errors import OneLineParser  # the commands' one-line flag errors
    from utils.flags import path_flag

    parser = OneLineParser(
        prog="python3 -m data.demo",
        description="Generate the synthetic demo dataset (text glyphs under random nuisances).",
    )
    parser.add_argument("--out", default=SPEC.default_data_dir, type=path_flag, help="output directory")
    parser.add_argument("--classes", type=int, default=48, help="number of classes (even)")
    parser.add_argument("--per_class", type=int, default=40, help="images per class")
    parser.add_argument("--size", type=int, default=72, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="generation seed")
    parser.add_argument("--force", action="store_true", help="regenerate even if complete")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        generate_demo(args.out, args.classes, args.per_class, args.size, args.seed, args.force)
    except (ValueError, OSError) as error:
        print("error: {}".format(error), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
