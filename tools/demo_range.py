"""What `make demo` prints, as ranges a user on any CPU can hold a run against.

    python3 -m tools.demo_range results/demo-range      # what `make demo-range` runs last

Reads every ``KERNELS-tTHREADS-sSEED`` run folder of main.py under the folder (``KERNELS`` names
the CPU kernels the run used, e.g. ``avx512`` or ``avx2``; ``THREADS`` its OpenMP threads) and
prints, per kernels and threads: the seeds, the R@1 before training (the untrained network: the
same on every CPU, to about four digits), the R@1 at the last epoch and the best R@1 (each as
minimum, median and maximum over the seeds) and the run's time (from the first to the last line
of its ``train.log``). A run still training (its last evaluation is not at its last epoch) is
left out.
"""
import json
import os
import re
import statistics
import sys

from utils.errors import OneLineParser
from utils.run import folder as run_folder

RUN_NAME = re.compile(r"^(?P<kernels>[a-z0-9]+)-t(?P<threads>\d+)-s(?P<seed>\d+)$")
LOG_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d) ")  # utils.logs.DATEFMT


def log_seconds(log_path):
    """Seconds from the first to the last time-stamped line of a train.log (whole seconds; a
    midnight between lines counts as one day)."""
    elapsed, previous = 0, None
    with open(log_path) as handle:
        for line in handle:
            found = LOG_TIME.match(line)
            if not found:
                continue
            hours, minutes, seconds = (int(part) for part in found.groups())
            now = hours * 3600 + minutes * 60 + seconds
            if previous is not None:
                elapsed += (now - previous) % 86400
            previous = now
    return elapsed


def finished_runs(folder, metric="R@1"):
    """``{(kernels, threads): [run, ...]}``, a run being ``dict(seed, initial, last, best,
    seconds)``, of the finished runs under ``folder``."""
    groups = {}
    for name in sorted(os.listdir(folder)):
        match = RUN_NAME.match(name)
        run = os.path.join(folder, name)
        results_path = run_folder.path(run, run_folder.RESULTS)
        args_path = run_folder.path(run, run_folder.ARGS)
        if not match or not (os.path.isfile(results_path) and os.path.isfile(args_path)):
            continue
        with open(results_path) as handle:
            results = json.load(handle)
        with open(args_path) as handle:
            epochs = json.load(handle).get("epochs")
        last, best, initial = (results.get(key) or {} for key in ("last", "best", "initial"))
        if last.get("epoch") != epochs or last.get(metric) is None:
            continue
        log_path = run_folder.path(run, run_folder.TRAIN_LOG)
        groups.setdefault((match["kernels"], int(match["threads"])), []).append(dict(
            seed=int(match["seed"]), initial=initial.get(metric), last=last[metric],
            best=best.get(metric), seconds=log_seconds(log_path) if os.path.isfile(log_path) else None))
    return groups


def spread(values, digits=3):
    """``min / median / max`` of the values."""
    form = "%%.%df" % digits
    return " / ".join(form % value for value in (min(values), statistics.median(values), max(values)))


def main(argv=None):
    parser = OneLineParser(prog="python3 -m tools.demo_range", description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the folder of the runs (results/demo-range)")
    parser.add_argument("--metric", default="R@1", help="the metric shown (a column of the runs' results)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.folder):
        parser.error("%s is not a folder of runs; make demo-range writes results/demo-range" % args.folder)
    groups = finished_runs(args.folder, args.metric)
    if not groups:
        parser.error("no finished run under %s; make demo-range trains them" % args.folder)
    print("%s of the demo; min / median / max over the seeds" % args.metric)
    for (kernels, threads), runs in sorted(groups.items()):
        print("%s kernels, %d thread%s, seeds %s" % (kernels, threads, "" if threads == 1 else "s",
                                                     " ".join(str(run["seed"]) for run in runs)))
        initial = [run["initial"] for run in runs if run["initial"] is not None]
        if initial:
            print("  before training  %s" % spread(initial, digits=4))
        print("  last epoch       %s  (each: %s)" % (spread([run["last"] for run in runs]),
                                                     " ".join("%.3f" % run["last"] for run in runs)))
        print("  best             %s" % spread([run["best"] for run in runs if run["best"] is not None]))
        seconds = [run["seconds"] for run in runs if run["seconds"] is not None]
        if seconds:
            print("  time (s)         %s" % spread(seconds, digits=0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
