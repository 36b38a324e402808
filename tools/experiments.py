"""The papers' tables (and a CPU-sized one) as experiments: list, print, run and report their runs.

    python3 -m tools.experiments list                                   # the tables
    python3 -m tools.experiments list ee_cvpr2020                       # a table's rows
    python3 -m tools.experiments commands ee_cvpr2020 --rows cars196/hphn_triplet/ee --seeds 0-2
    python3 -m tools.experiments run demo --seeds 0,1,2 --protocol val  # here, resumable
    OMP_NUM_THREADS=1 python3 -m tools.experiments run demo --seeds 0-2 --protocol release,val --jobs 2
    python3 -m tools.experiments report demo --seeds 0,1,2 --protocol release,val

``commands`` prints one main.py command per run (row x seed x fold), one a line, for a cluster's
scheduler; every run's flags are checked against main.py's own checks first, so a row main.py would
refuse stops here with one line. Runs go to ``--out/TABLE/ROW/PROTOCOL/seed-S`` (see
``experiments.plan``); ``report`` writes ``--out/TABLE/report.md``, ``report.csv`` and the curves.
"""
import argparse
import sys

from experiments.plan import PROTOCOLS, check_runs, parse_seeds, plan_runs
from experiments.table import load_table, table_names
from utils.errors import OneLineParser
from utils.flags import path_flag

VERBS = ("list", "commands", "run", "report")


def _jobs(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("--jobs takes a number of runs at a time, 1 or more, got %r" % text)
    return value


def build_parser():
    parser = OneLineParser(prog="python3 -m tools.experiments", description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=VERBS, help="what to do")
    parser.add_argument("table", nargs="?", default=None,
                        help="a table: %s, or a table's .json file" % ", ".join(table_names()))
    parser.add_argument("--rows", default=None,
                        help="comma-separated row names (default: every row; `list TABLE` names them)")
    parser.add_argument("--seeds", default="0", help="seeds such as 0,1,2 or 0-4")
    parser.add_argument("--protocol", default="release",
                        help="comma-separated protocols from %s: release selects on the test classes "
                             "(the release's way), val on a validation split of the training "
                             "classes, kfold on each fold's" % ", ".join(PROTOCOLS))
    parser.add_argument("--out", default="results/experiments", type=path_flag,
                        help="the folder of every run and report")
    parser.add_argument("--python", default="python3", help="the interpreter `commands` prints")
    parser.add_argument("--jobs", default=1, type=_jobs,
                        help="`run`: how many runs train at a time on this machine (default 1: in "
                             "order); give each its share of the cores with OMP_NUM_THREADS")
    return parser


def _list(table):
    if table is None:
        for name in table_names():
            loaded = load_table(name)
            print("%-16s %3d rows  %s" % (name, len(loaded.rows), loaded.title))
        return
    for row in table.rows:
        trainable = "" if row.trainable else "  (not trainable here)"
        figures = ", ".join("%s %s" % item for item in row.paper_figures.items() if item[1] is not None)
        print("%-40s %s%s" % (row.name, figures or "-", trainable))


def _planned(args, table):
    protocols = [p.strip() for p in args.protocol.split(",") if p.strip()]
    rows = table.select([name.strip() for name in args.rows.split(",")] if args.rows else None)
    seeds = parse_seeds(args.seeds)
    runs = []
    for protocol in protocols:
        runs += plan_runs(table, rows, seeds, protocol, args.out)
    return check_runs(runs)


def run(args):
    if args.verb == "list":
        _list(load_table(args.table) if args.table else None)
        return 0
    if args.table is None:
        raise ValueError("%s needs a table: %s" % (args.verb, ", ".join(table_names())))
    table = load_table(args.table)
    runs = _planned(args, table)
    if args.verb == "commands":
        for planned in runs:
            print(planned.command(args.python))
        return 0
    if args.verb == "run":
        from experiments.runner import run_all

        outcomes = run_all(runs, args.out, jobs=args.jobs)
        failed = [o for o in outcomes if o.action == "failed"]
        print("%d runs: %d trained, %d continued, %d already done, %d failed" % (
            len(runs), sum(o.action == "trained" for o in outcomes), sum(o.action == "continued" for o in outcomes),
            sum(o.action == "skipped" for o in outcomes), len(failed)))
        return 1 if failed else 0
    from experiments.concatenated import concatenated_metrics
    from experiments.report import write_report

    for path in write_report(table, runs, args.out, concatenate=concatenated_metrics):
        print("wrote %s" % path)
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ValueError as error:
        sys.stderr.write("error: %s\n" % error)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; the same command continues where it stopped\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
