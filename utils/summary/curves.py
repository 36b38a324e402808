"""A metric over the epochs of a run (its summary.csv and results.json), and figures of such curves.

The point at epoch 0 is the evaluation before training (``results.json``'s ``initial``), the others
are the epochs with an evaluation (``summary.csv``).
"""
import csv
import json
import os

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


def mean_curve(save_dirs, metric):
    """``(epochs, mean, sd)`` of ``metric`` over the runs in ``save_dirs``, at the epochs every one of
    them has evaluated (sd 0 for a single run)."""
    import numpy as np

    curves = [dict(read_curve(save_dir, metric)) for save_dir in save_dirs]
    epochs = sorted(set.intersection(*(set(curve) for curve in curves)))
    values = np.array([[curve[epoch] for epoch in epochs] for curve in curves], dtype=np.float64)
    sd = values.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(len(epochs))
    return epochs, values.mean(axis=0), sd


def plot_mean_curves(groups, metric, out_path, title):
    """One line per ``{label: [save_dir, ...]}`` entry, its mean over the runs with a band of one
    standard deviation, written to ``out_path``; returns ``{label: (epochs, mean, sd)}``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = {label: mean_curve(dirs, metric) for label, dirs in groups.items() if dirs}
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for label, (epochs, mean, sd) in drawn.items():
        axes.plot(epochs, mean, marker="o", markersize=3, label="%s (%d runs)" % (label, len(groups[label])))
        axes.fill_between(epochs, mean - sd, mean + sd, alpha=0.2)
    axes.set_xlabel("epoch (0 = before training)")
    axes.set_ylabel(metric)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    figure.savefig(out_path)
    plt.close(figure)
    return drawn
