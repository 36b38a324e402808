"""The demo's epoch and evaluation time on a quiet and on a loaded CPU, per OpenMP setting.

    python bench/bench_load.py [--hogs 0,2] [--epochs 3] [--settings spin2,passive2,one]
                               [--timeout 900] [--data_dir data/demo]

Each measurement trains the demo's recipe (``make demo``'s flags, ResNet-18, 64 px, batch 32) for
``--epochs`` epochs in a fresh ``main.py`` process and evaluates the 960 test images once at the end,
then reads the epoch times that ``train.log`` records and times the evaluation from the log's
timestamps. ``--hogs N`` runs N CPU-bound Python processes beside it (a busy workstation or a shared
CI runner), started before and ended after each measurement. The settings:

- ``spin<T>``: ``OMP_NUM_THREADS=T`` and GNU libgomp's own default wait (it spins for
  ``GOMP_SPINCOUNT=300000`` rounds at every barrier before it sleeps), given explicitly, since
  main.py otherwise picks the passive policy (``utils.environment.prefer_passive_openmp``);
- ``passive<T>``: the same with ``OMP_WAIT_POLICY=PASSIVE`` (a waiting thread sleeps at once);
- ``one``: ``OMP_NUM_THREADS=1`` (no barrier to wait at).

Settings and loads are interleaved in one run (``--rounds`` times, medians printed, with the
machine's one-minute load average before each measurement) so that the figures compare. A measurement that does
not end within ``--timeout`` seconds is stopped and printed as ``> timeout``. Prints figures only.
"""
import argparse
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCH_LINE = re.compile(r"epoch (\d+)/\d+: loss \S+, lr \S+, ([0-9.]+) s")
STAMP = re.compile(r"^(\d\d:\d\d:\d\d) ")  # utils.logs.DATEFMT: whole seconds


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", default="0,2", help="numbers of CPU-bound processes beside the run")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per measurement")
    parser.add_argument("--settings", default="spin2,passive2,one", help="OpenMP settings to compare")
    parser.add_argument("--rounds", type=int, default=1,
                        help="interleaved rounds; the median of each setting's figures is printed")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a measurement stops")
    parser.add_argument("--data_dir", default=os.path.join(ROOT, "data", "demo"),
                        help="the demo dataset (python3 -m data.demo --out DIR)")
    parser.add_argument("--dnnl_max_cpu_isa", default=None,
                        help="oneDNN's DNNL_MAX_CPU_ISA, e.g. AVX2 to time the kernels of a CPU "
                             "without AVX-512 on one that has it")
    return parser.parse_args()


def setting_env(setting):
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        env.pop(name, None)
    if setting == "one":
        env["OMP_NUM_THREADS"] = "1"
        return env
    kind, threads = re.fullmatch(r"(spin|passive)(\d+)", setting).groups()
    env["OMP_NUM_THREADS"] = threads
    if kind == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        env["GOMP_SPINCOUNT"] = "300000"
    return env


def hog():
    while True:
        pass


def demo_command(args, save_dir):
    return [sys.executable, os.path.join(ROOT, "main.py"), "--data_name=demo",
            "--data_dir=%s" % args.data_dir, "--gpu_idx=-1", "--pretrained=none",
            "--backbone=resnet18_v1", "--embed_dim=128", "--image_size=64", "--loss=hphn_triplet",
            "--margin=0.1", "--batch_size=32", "--num_instances=8", "--num_workers=1",
            "--optim=adam", "--lr=0.0003", "--n_inner_pts=2", "--epochs=%d" % args.epochs,
            "--eval_epoch_term=%d" % args.epochs, "--eval_at_start=False", "--progress=False",
            "--seed=0", "--keep_checkpoints=1", "--save_dir=%s" % save_dir]


def read_times(log_path):
    """(seconds of each epoch after the first, seconds of the final evaluation) from train.log."""
    epochs, last_epoch_stamp, eval_seconds = [], None, None
    with open(log_path) as handle:
        for line in handle:
            found = EPOCH_LINE.search(line)
            stamp = STAMP.match(line)
            if found:
                epochs.append(float(found.group(2)))
                last_epoch_stamp = stamp and stamp.group(1)
            elif last_epoch_stamp and stamp and re.search(r"epoch \d+: R@1", line):
                seconds = (datetime.strptime(stamp.group(1), "%H:%M:%S")
                           - datetime.strptime(last_epoch_stamp, "%H:%M:%S")).total_seconds()
                eval_seconds = seconds % 86400  # across midnight
    return epochs[1:] or epochs, eval_seconds


def measure(args, setting, hogs):
    env = setting_env(setting)
    if args.dnnl_max_cpu_isa:
        env["DNNL_MAX_CPU_ISA"] = args.dnnl_max_cpu_isa
    save_dir = tempfile.mkdtemp(prefix="bench_load_")
    workers = [multiprocessing.Process(target=hog, daemon=True) for _ in range(hogs)]
    for worker in workers:
        worker.start()
    start = time.time()
    try:
        subprocess.run(demo_command(args, os.path.join(save_dir, "run")), env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=args.timeout,
                       check=True)
        epochs, eval_seconds = read_times(os.path.join(save_dir, "run", "train.log"))
        return statistics.median(epochs), eval_seconds, time.time() - start
    except subprocess.TimeoutExpired:
        return None, None, time.time() - start
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()
        shutil.rmtree(save_dir, ignore_errors=True)


def main():
    args = parse_args()
    settings = args.settings.split(",")
    loads = [int(h) for h in args.hogs.split(",")]
    print("demo recipe, %d epochs of 192 images, evaluation of 960 images; %d cores; %s; %d round(s)"
          % (args.epochs, os.cpu_count(), "DNNL_MAX_CPU_ISA=%s" % args.dnnl_max_cpu_isa
             if args.dnnl_max_cpu_isa else "oneDNN's own ISA", args.rounds))
    figures = {(hogs, setting): [] for hogs in loads for setting in settings}
    for _ in range(args.rounds):
        for hogs in loads:
            for setting in settings:
                load = os.getloadavg()[0]
                figures[hogs, setting].append((load,) + measure(args, setting, hogs))
    print("%-10s %5s %9s %12s %10s %10s %10s" % ("setting", "hogs", "load", "epoch (s)", "img/s",
                                                 "eval (s)", "wall (s)"))
    for (hogs, setting), runs in figures.items():
        load = statistics.median(run[0] for run in runs)
        wall = statistics.median(run[3] for run in runs)
        if any(run[1] is None for run in runs):
            print("%-10s %5d %9.1f %12s %10s %10s %10.0f" % (setting, hogs, load, "> timeout", "-", "-",
                                                            wall))
            continue
        epoch = statistics.median(run[1] for run in runs)
        evals = [run[2] for run in runs if run[2] is not None]
        print("%-10s %5d %9.1f %12.2f %10.1f %10s %10.0f" % (
            setting, hogs, load, epoch, 192 / epoch,
            "%.1f" % statistics.median(evals) if evals else "?", wall), flush=True)


if __name__ == "__main__":
    main()
