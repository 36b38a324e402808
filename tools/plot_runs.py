"""Draw a metric's curve for several runs, from their summary.csv and results.json.

    python3 -m tools.plot_runs results/inner-2 results/inner-0 --metric R@1 -o results/curves.png

Each run is a ``--save_dir`` of main.py; its curve is labelled by the folder's name. The point at
epoch 0 is the evaluation before training (``results.json``'s ``initial``), the others are the
epochs with an evaluation (``summary.csv``). The figure also prints each run's first, best and last
value, so the numbers can go beside the picture.
"""
import csv
import json
import os
import sys

from utils.errors import OneLineParser
from utils.run import folder as run_folder


def read_curve(save_dir, metric):
    """``[(epoch, value), ...]`` of ``metric`` in the run at ``save_dir``, epoch 0 first when known."""
    csv_path = run_folder.path(save_dir, run_folder.SUMMARY_CSV)
    if not os.path.isfile(csv_path):
        raise ValueError("%s is not a run folder of main.py (no %s); give the --save_dir of a run"
                         % (save_dir, run_folder.SUMMARY_CSV))
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and metric not in rows[0]:
        metrics = [name for name in rows[0] if name not in ("epoch", "step", "lr")]
        raise ValueError("%s has no column %r; choose one of: %s" % (csv_path, metric, ", ".join(metrics)))
    points = [(int(row["epoch"]), float(row[metric])) for row in rows if row.get(metric)]
    results_path = run_folder.path(save_dir, run_folder.RESULTS)
    if os.path.isfile(results_path):
        initial = (json.load(open(results_path)).get("initial") or {}).get(metric)
        if initial is not None:
            points.insert(0, (0, float(initial)))
    if not points:
        raise ValueError("%s has no evaluated epoch yet" % csv_path)
    return points


def plot_runs(save_dirs, metric, out_path, title=None):
    """Write the figure to ``out_path``; returns ``{run name: (first, best, last)}``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {os.path.basename(os.path.normpath(d)): read_curve(d, metric) for d in save_dirs}
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for name, points in curves.items():
        epochs, values = zip(*points)
        axes.plot(epochs, values, marker="o", markersize=3, label=name)
    axes.set_xlabel("epoch (0 = before training)")
    axes.set_ylabel(metric)
    axes.set_title(title or "%s on the test split" % metric)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    directory = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(directory, exist_ok=True)
    figure.savefig(out_path)
    plt.close(figure)
    return {name: (points[0][1], max(v for _, v in points), points[-1][1]) for name, points in curves.items()}


def main(argv=None):
    parser = OneLineParser(prog="python3 -m tools.plot_runs", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (--save_dir of main.py)")
    parser.add_argument("--metric", default="R@1", help="a column of summary.csv (R@1, MAP@R, NMI, ...)")
    parser.add_argument("-o", "--out", default="curves.png", help="the PNG to write")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    try:
        numbers = plot_runs(args.runs, args.metric, args.out, args.title)
    except (ValueError, OSError) as error:
        sys.stderr.write("error: %s\n" % error)
        return 2
    for name, (first, best, last) in numbers.items():
        print("%-20s %s first %.3f  best %.3f  last %.3f" % (name, args.metric, first, best, last))
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
