"""Training images per second per worker process: our uint8 OpenCV pipeline vs the original's.

    python bench/bench_data.py [--num_images 64] [--repeats 3] [--image_size 227] [--threads 1]

Synthetic CARS196-like JPEGs (about 700 x 480, photo-like content) are written to a temporary
directory. Each pipeline decodes and transforms them one by one in this process, as one
DataLoader worker does:

- ours: ``cv2.imread`` + BGR->RGB + ``TrainTransform`` -> uint8 (S, S, 3); normalisation
  happens later on the device, inside the network;
- original: ``mx.image.imread`` + Random2DTranslation (``mx.image.imresize`` / ``fixed_crop``)
  + ``RandomFlipLeftRight`` + ``ToTensor`` + ``Normalize`` -> float32 (3, S, S), waited for.

Both run with ``--threads`` OpenCV / OpenMP threads (default 1: DataLoader workers run side by
side, one per core). Then both are driven by the same crop / flip decisions and compared
pixel for pixel after normalising our uint8 output with NumPy. Prints figures only.
"""

import argparse
import os
import sys
import tempfile
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_images", type=int, default=64, help="synthetic JPEGs to generate")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the images")
    parser.add_argument("--image_size", type=int, default=227, help="output side S")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV / OpenMP threads")
    return parser.parse_args()


ARGS = parse_args()
# Thread counts must be fixed before MXNet and OpenCV start their pools.
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))
os.environ.setdefault("MXNET_CPU_WORKER_NTHREADS", str(ARGS.threads))

import cv2  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet.gluon.data.vision import transforms as gluon_transforms  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data.transforms import MEAN_RGB, STD_RGB, TrainTransform, decode_image  # noqa: E402

cv2.setNumThreads(ARGS.threads)


def write_synthetic_jpegs(directory, count, seed=0):
    """CARS196-like JPEGs: smooth colour fields, shapes and sensor noise, ~700 x 480."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        width, height = int(rng.integers(640, 761)), int(rng.integers(420, 541))
        coarse = rng.uniform(0, 255, size=(6, 8, 3)).astype(np.float32)
        image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        for _ in range(12):
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            axes = (int(rng.integers(10, width // 3)), int(rng.integers(10, height // 3)))
            colour = tuple(float(c) for c in rng.uniform(0, 255, size=3))
            cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        image += rng.normal(0, 6, size=image.shape).astype(np.float32)
        path = os.path.join(directory, "{:06d}.jpg".format(i + 1))
        cv2.imwrite(path, np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


class OriginalTrainPipeline:
    """The original release's per-image train pipeline, decisions optionally forced.

    Random2DTranslation (p = 0.5 resize to S, else enlarge to round(1.125 S) and crop at a
    uniform offset), then RandomFlipLeftRight, ToTensor, Normalize.
    """

    def __init__(self, size):
        self.size = size
        self.enlarged = int(round(1.125 * size))
        self.flip = gluon_transforms.RandomFlipLeftRight()
        self.to_tensor = gluon_transforms.ToTensor()
        self.normalize = gluon_transforms.Normalize(list(MEAN_RGB), list(STD_RGB))

    def __call__(self, path, rng, forced=False):
        image = mx.image.imread(path)
        if rng.random() < 0.5:
            image = mx.image.imresize(image, self.size, self.size, interp=1)
        else:
            resized = mx.image.imresize(image, self.enlarged, self.enlarged, interp=1)
            max_offset = self.enlarged - self.size
            x1 = int(round(rng.uniform(0, max_offset)))
            y1 = int(round(rng.uniform(0, max_offset)))
            image = mx.image.fixed_crop(resized, x1, y1, self.size, self.size)
        if forced:  # same flip decision as ours, for the pixel comparison
            if rng.random() < 0.5:
                image = mx.nd.flip(image, axis=1)
        else:
            image = self.flip(image)
        out = self.normalize(self.to_tensor(image))
        out.wait_to_read()
        return out


def time_pipeline(run, paths, repeats):
    for path in paths[:4]:  # warm-up
        run(path)
    started = time.perf_counter()
    for _ in range(repeats):
        for path in paths:
            run(path)
    return repeats * len(paths) / (time.perf_counter() - started)


def main():
    size = ARGS.image_size
    ours = TrainTransform(size)
    original = OriginalTrainPipeline(size)
    mean = np.asarray(MEAN_RGB, np.float32)
    std = np.asarray(STD_RGB, np.float32)
    with tempfile.TemporaryDirectory(prefix="bench_data_") as directory:
        started = time.perf_counter()
        paths = write_synthetic_jpegs(directory, ARGS.num_images)
        shape = cv2.imread(paths[0]).shape
        print(
            "wrote {} synthetic JPEGs (first {}x{}) in {:.1f} s; S = {}, {} thread(s)".format(
                len(paths), shape[1], shape[0], time.perf_counter() - started, size, ARGS.threads
            )
        )

        rng_ours = np.random.default_rng(0)
        rng_original = np.random.default_rng(0)
        ours_rate = time_pipeline(lambda p: ours(decode_image(p), rng_ours), paths, ARGS.repeats)
        original_rate = time_pipeline(lambda p: original(p, rng_original), paths, ARGS.repeats)
        print("{:<58} {:>10}".format("pipeline (decode + train transform, one process)", "images/s"))
        print("{:<58} {:>10.1f}".format("ours: cv2 decode + TrainTransform -> uint8 HWC", ours_rate))
        print(
            "{:<58} {:>10.1f}".format("original: mx.image + gluon transforms -> float32 CHW", original_rate)
        )
        print("speed-up ours / original: {:.2f}x".format(ours_rate / original_rate))

        max_diff = 0.0
        max_level_diff = 0
        decode_diff = 0
        for i, path in enumerate(paths):
            ours_uint8 = ours(decode_image(path), np.random.default_rng(i))
            ours_normalised = ((ours_uint8.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)
            reference = original(path, np.random.default_rng(i), forced=True).asnumpy()
            diff = np.abs(ours_normalised - reference)
            max_diff = max(max_diff, float(diff.max()))
            max_level_diff = max(max_level_diff, int(np.rint((diff * std[:, None, None] * 255).max())))
            decoded_cv2 = decode_image(path).astype(np.int16)
            decoded_mx = mx.image.imread(path).asnumpy().astype(np.int16)
            decode_diff = max(decode_diff, int(np.abs(decoded_cv2 - decoded_mx).max()))
        print(
            "same crop/flip decisions, {} images: max |ours normalised - original| = {:.6f} "
            "({} grey level(s) of 255); decoders cv2 vs mx.image differ by at most {} level(s)".format(
                len(paths), max_diff, max_level_diff, decode_diff
            )
        )


if __name__ == "__main__":
    main()
