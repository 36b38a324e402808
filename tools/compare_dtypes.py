"""R@1 of demo runs in float32 and bfloat16 over seeds, as the table of docs/mixed-precision.md shows.

    python3 -m tools.compare_dtypes results/dtypes      # what `make compare-dtypes` runs last

Reads every ``KIND-DTYPE-sSEED`` run folder of main.py under the folder (``KIND`` is ``scratch`` or
``finetune``), takes each run's last R@1 (``results.json``), and prints per kind the seeds run in
both dtypes, each dtype's values, mean and standard deviation, and the difference of the means
(bfloat16 − float32) with its standard error (the two sets as independent samples).
"""
import json
import math
import os
import re
import statistics
import sys

from utils.errors import OneLineParser
from utils.run import folder as run_folder

RUN_NAME = re.compile(r"^(?P<kind>[a-z]+)-(?P<dtype>float32|bfloat16|float16)-s(?P<seed>\d+)$")
DTYPES = ("float32", "bfloat16")


def last_metrics(folder, metric="R@1"):
    """``{(kind, dtype, seed): value}`` of the finished runs under ``folder`` (a run still
    training, whose last evaluation is not at its last epoch, is left out)."""
    values = {}
    for name in sorted(os.listdir(folder)):
        match = RUN_NAME.match(name)
        run = os.path.join(folder, name)
        results, args = (run_folder.path(run, kind) for kind in (run_folder.RESULTS, run_folder.ARGS))
        if not match or not (os.path.isfile(results) and os.path.isfile(args)):
            continue
        last = json.load(open(results)).get("last") or {}
        if last.get(metric) is not None and last.get("epoch") == json.load(open(args)).get("epochs"):
            values[match["kind"], match["dtype"], int(match["seed"])] = float(last[metric])
    return values


def summary(values, kind):
    """``(seeds, {dtype: [values]}, difference of means, its standard error)`` of one kind, over
    the seeds run in both dtypes."""
    seeds = sorted(seed for (k, dtype, seed) in values if k == kind and dtype == "float32"
                   and (kind, "bfloat16", seed) in values)
    runs = {dtype: [values[kind, dtype, seed] for seed in seeds] for dtype in DTYPES}
    if len(seeds) < 2:
        return seeds, runs, None, None
    difference = statistics.mean(runs["bfloat16"]) - statistics.mean(runs["float32"])
    error = math.sqrt(sum(statistics.variance(runs[dtype]) / len(seeds) for dtype in DTYPES))
    return seeds, runs, difference, error


def main(argv=None):
    parser = OneLineParser(prog="python3 -m tools.compare_dtypes", description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the folder of the runs (results/dtypes)")
    parser.add_argument("--metric", default="R@1", help="the metric compared (a column of the runs' results)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.folder):
        parser.error("%s is not a folder of runs; make compare-dtypes writes results/dtypes" % args.folder)
    values = last_metrics(args.folder, args.metric)
    for kind in sorted({k for k, _, _ in values}):
        seeds, runs, difference, error = summary(values, kind)
        print("%s, %s at the last epoch, seeds %s" % (kind, args.metric, " ".join(map(str, seeds))))
        for dtype in DTYPES:
            spread = " sd %.3f" % statistics.stdev(runs[dtype]) if len(seeds) > 1 else ""
            print("  %-9s %s  mean %.3f%s" % (dtype, " ".join("%.3f" % v for v in runs[dtype]),
                                              statistics.mean(runs[dtype]) if seeds else float("nan"), spread))
        if difference is not None:
            higher = sum(b > a for a, b in zip(runs["float32"], runs["bfloat16"]))
            print("  bfloat16 - float32: %+.3f (standard error %.3f); bfloat16 higher in %d of %d seeds"
                  % (difference, error, higher, len(seeds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
