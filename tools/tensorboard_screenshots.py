"""docs/tensorboard.md's pictures, taken with headless Chromium from a run's logs.

    python3 -m tools.tensorboard_screenshots results docs     # after `make demo`

Starts TensorBoard over LOGDIR on a free local port, waits until it serves the retrieval grids,
takes two screenshots with Debian's ``chromium`` (``apt-get install -y chromium``) and stops
TensorBoard again:

- ``OUT/tensorboard_scalars.png``: SCALARS, smoothing 0, the cards ``metric/R1`` and
  ``metric/R1/best``;
- ``OUT/tensorboard_grid.png``: IMAGES, the card of ``retrieval/test`` at the last evaluation.

Each picture is stored as a palette PNG (at most 128 colours) to keep it small.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from PIL import Image

# (file name, URL fragment, window size, crop box): the window is what a 1000-pixel-wide browser shows.
SHOTS = (
    ("tensorboard_scalars.png", "#scalars&_smoothingWeight=0&tagFilter=%5Emetric%2FR1(%2Fbest)%3F%24",
     (1000, 720), (0, 0, 1000, 500)),
    ("tensorboard_grid.png", "#images&tagFilter=%5Eretrieval%2Ftest%24", (900, 700), (0, 0, 900, 660)),
)
WAIT_SECONDS = 120


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _wait_for_grids(base, server):
    deadline = time.time() + WAIT_SECONDS
    while time.time() < deadline:
        if server.poll() is not None:
            raise ValueError("TensorBoard exited with %d before serving" % server.returncode)
        try:
            tags = _get_json(base + "/data/plugin/images/tags")
            if any("retrieval/test" in run_tags for run_tags in tags.values()):
                return sorted(tags)
        except OSError:
            pass
        time.sleep(1)
    raise ValueError("TensorBoard served no retrieval/test grid within %d s" % WAIT_SECONDS)


def _screenshot(browser, url, size, path):
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--user-data-dir=%s" % profile, "--window-size=%d,%d" % size,
             "--virtual-time-budget=20000", "--screenshot=%s" % path, url],
            capture_output=True, text=True, timeout=180)
    if proc.returncode != 0 or not os.path.isfile(path):
        raise ValueError("chromium failed on %s: %s" % (url, (proc.stderr.strip().splitlines() or ["?"])[-1]))


def take(logdir, out_dir, browser):
    """Take the pictures of :data:`SHOTS` from ``logdir`` into ``out_dir``; returns their paths."""
    port = _free_port()
    base = "http://127.0.0.1:%d" % port
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--port", str(port),
         "--host", "127.0.0.1", "--samples_per_plugin=images=1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    written = []
    try:
        runs = _wait_for_grids(base, server)
        print("runs: %s" % ", ".join(runs))
        os.makedirs(out_dir, exist_ok=True)
        for name, fragment, size, box in SHOTS:
            path = os.path.join(out_dir, name)
            raw = path + ".raw.png"
            _screenshot(browser, base + "/" + fragment, size, raw)
            with Image.open(raw) as shot:
                shot.convert("RGB").crop(box).quantize(colors=128).save(path, optimize=True)
            os.remove(raw)
            print("%s: %d bytes" % (path, os.path.getsize(path)))
            written.append(path)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", help="TensorBoard's --logdir (e.g. results, holding results/demo)")
    parser.add_argument("out_dir", help="folder for the PNG files (e.g. docs)")
    args = parser.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        if browser is None:
            raise ValueError("no chromium on PATH; install Debian's: apt-get install -y chromium")
        if not os.path.isdir(args.logdir):
            raise ValueError("%s is not a folder of runs" % args.logdir)
        take(args.logdir, args.out_dir, browser)
    except (ValueError, OSError, subprocess.SubprocessError) as error:
        sys.stderr.write("error: %s\n" % error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
