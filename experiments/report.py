"""Gather an experiment's results.json files into a table beside the paper's figures.

Per row and protocol: how many runs are done (and which are running, failed or missing), the mean,
standard deviation and 95 % interval (Student's t over the runs) of each metric at the selected
epoch, and which split selected it: ``test`` (the release's protocol: chosen on the test classes,
labelled test-selected) or ``val`` (a validation split of the training classes). Under k-fold the
*separated* result is over every fold's run, and the *concatenated* one joins, image by image, the
L2-normalised test embeddings of the folds' selected networks and evaluates them once (Musgrave,
Belongie & Lim, "A Metric Learning Reality Check", ECCV 2020).

Outputs: ``report.md`` (Markdown), ``report.csv`` (one line per row, protocol and metric) and, per
pair of rows with and without the synthesis, ``curves-<pair>.png`` (the R@1 of the test split over
the epochs, mean and standard deviation over the runs).
"""
import csv
import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from utils.run import folder as run_folder

from .runner import run_status

SEPARATED, CONCATENATED = "separated", "concatenated"


def interval(values, level=0.95):
    """``(mean, sd, low, high)`` of ``values``: sample standard deviation and Student's t interval of
    the mean (sd and interval NaN for fewer than two values)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean()) if values.size else float("nan")
    if values.size < 2:
        return mean, float("nan"), float("nan"), float("nan")
    from scipy.stats import t

    sd = float(values.std(ddof=1))
    half = float(t.ppf(0.5 + level / 2, values.size - 1)) * sd / math.sqrt(values.size)
    return mean, sd, mean - half, mean + half


def selected_record(save_dir):
    """``(metrics at the selected epoch, the split that selected)`` of a finished run, from its
    results.json (a run without ``selected_on`` selected on the test split, as the release)."""
    with open(run_folder.path(save_dir, run_folder.RESULTS), encoding="utf-8") as handle:
        results = json.load(handle)
    best = results.get("best") or {}
    metrics = {key: value for key, value in best.items() if isinstance(value, (int, float))
               and key not in ("epoch", "non_finite")}
    return metrics, results.get("selected_on", "test")


def manifest_of(save_dir):
    """The SHA-256 of the split manifest the run in ``save_dir`` trained on (args.json), or 'none'
    (a dataset prepared without one)."""
    args = run_folder.read_args_file(run_folder.path(save_dir, run_folder.ARGS))
    return args.get("split_manifest_sha256") or "none"


def _manifests(line):
    """The data split(s) of a line's runs: the manifest hashes' first 12 digits; several mean the
    runs did not rest on the same split files."""
    return ", ".join(sorted(h[:12] for h in line.manifests)) or "-"


@dataclass
class Line:
    """One line of the report: a row under a protocol (or a k-fold aggregate), its runs and values."""

    row: str
    protocol: str
    kind: str = ""  # '' for release/val; 'separated' or 'concatenated' under k-fold
    selected_on: set = field(default_factory=set)
    values: dict = field(default_factory=dict)  # metric -> [value per run]
    status: dict = field(default_factory=dict)  # 'done', 'partial', 'new', 'failed' -> count
    manifests: set = field(default_factory=set)  # split_manifest.json SHA-256 of each run's data

    def add(self, metrics):
        for key, value in metrics.items():
            self.values.setdefault(key, []).append(value)

    @property
    def runs(self):
        return self.status.get("done", 0)


def gather(runs, concatenate=None):
    """The report's lines for ``runs`` (of :func:`experiments.plan.plan_runs`), in their order.

    ``concatenate(save_dirs)``: metrics of the joined test embeddings of these finished fold runs
    (None skips the concatenated result)."""
    lines, folds_of = {}, {}
    for run in runs:
        kind = SEPARATED if run.fold is not None else ""
        line = lines.setdefault((run.row, run.protocol, kind), Line(run.row, run.protocol, kind))
        status = run_status(run.save_dir)
        line.status[status] = line.status.get(status, 0) + 1
        if status == "done":
            metrics, selected_on = selected_record(run.save_dir)
            line.add(metrics)
            line.selected_on.add(selected_on)
            line.manifests.add(manifest_of(run.save_dir))
            if run.fold is not None:
                folds_of.setdefault((run.row, run.protocol, run.seed), []).append(run.save_dir)
    if concatenate is not None:
        expected = {}
        for run in runs:
            if run.fold is not None:
                expected[(run.row, run.protocol, run.seed)] = expected.get((run.row, run.protocol, run.seed), 0) + 1
        for (row, protocol, seed), count in expected.items():
            line = lines.setdefault((row, protocol, CONCATENATED), Line(row, protocol, CONCATENATED))
            dirs = folds_of.get((row, protocol, seed), [])
            if len(dirs) == count:
                line.add(concatenate(dirs))
                line.selected_on.add("val")
                line.status["done"] = line.status.get("done", 0) + 1
            else:
                line.status["new"] = line.status.get("new", 0) + 1
    return list(lines.values())


def _scale(table):
    return 100.0 if table.units == "percent" else 1.0


def _cell(values, scale):
    """mean ± sd [interval] of ``values`` in the table's units: 2 decimals of a percent, 3 of a
    fraction (the same resolution)."""
    if not values:
        return "-"
    mean, sd, low, high = interval([v * scale for v in values])
    digits = 2 if scale == 100.0 else 3
    if math.isnan(sd):
        return "%.*f" % (digits, mean)
    return "%.*f ± %.*f [%.*f, %.*f]" % (digits, mean, digits, sd, digits, low, digits, high)


def _state(line):
    done, total = line.runs, sum(line.status.values())
    if done == total:
        return "%d" % done
    parts = ["%d of %d done" % (done, total)]
    for key, word in (("partial", "running or stopped"), ("new", "not started"), ("failed", "failed")):
        if line.status.get(key):
            parts.append("%d %s" % (line.status[key], word))
    return ", ".join(parts)


def _selected(line):
    if not line.selected_on:
        return "-"
    return " and ".join(sorted("test (test-selected)" if s == "test" else s for s in line.selected_on))


def _paper_line(row, metrics):
    figures = [("%.1f" % row.paper_figures[m]) if row.paper_figures.get(m) is not None else "-" for m in metrics]
    label = row.paper_label + ", " if row.paper_label else ""
    return "| %s | paper (%s%s) | - | - | - | %s |" % (row.name, label, "reference: another method" if row.reference
                                                 else "its table", " | ".join(figures))


def markdown(table, lines):
    """The report as Markdown: per dataset a table; per row the paper's figures, then each protocol's
    line of this toolkit's runs."""
    scale = _scale(table)
    out = ["# %s" % (table.title or table.name), "", "Figures in %s; mean ± sd [95 %% interval] over the "
           "runs at the selected epoch. A test-selected figure was chosen on the test classes (the "
           "release's protocol). The split manifest is the SHA-256 (first 12 digits) of the "
           "dataset's split_manifest.json the runs trained on: lines with the same one rest on the same "
           "split files." % table.units]
    by_row = {}
    for line in lines:
        by_row.setdefault(line.row, []).append(line)
    for dataset in table.datasets():
        metrics = table.metrics_of(dataset)
        header = ["row", "protocol", "selected on", "runs", "split manifest"] + metrics
        out += ["", "## %s" % dataset, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in (r for r in table.rows if r.dataset == dataset):
            if row.paper_figures:
                out.append(_paper_line(row, metrics))
            if not row.trainable and not row.reference:
                out.append("| %s | - | - | not trainable here | - | %s |" % (row.name, " | ".join("-" for _ in metrics)))
            for line in by_row.get(row.name, []):
                protocol = line.protocol + (" (%s)" % line.kind if line.kind else "")
                cells = [_cell(line.values.get(m, []), scale) for m in metrics]
                out.append("| %s | %s | %s | %s | %s | %s |" % (row.name, protocol, _selected(line), _state(line),
                                                                _manifests(line), " | ".join(cells)))
    return "\n".join(out) + "\n"


def write_csv(path, table, lines):
    """One line per row, protocol (and k-fold kind) and metric, in the table's units."""
    scale = _scale(table)
    rows = {row.name: row for row in table.rows}
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "protocol", "kind", "selected_on", "runs_done", "runs_planned",
                         "split_manifest_sha256", "metric", "mean", "sd", "ci95_low", "ci95_high", "paper"])
        for line in lines:
            paper = rows[line.row].paper_figures
            for metric in table.metrics_of(rows[line.row].dataset):
                values = [v * scale for v in line.values.get(metric, [])]
                stats = interval(values) if values else (float("nan"),) * 4
                writer.writerow([line.row, line.protocol, line.kind, "+".join(sorted(line.selected_on)),
                                 line.runs, sum(line.status.values()), "+".join(sorted(line.manifests)), metric]
                                + ["" if math.isnan(v) else "%.4f" % v for v in stats]
                                + [paper.get(metric, "")])


def plot_pairs(table, runs, out_dir, metric="R@1"):
    """Per pair of rows (with and without the synthesis) and protocol, ``curves-<pair>-<protocol>.png``
    of ``metric`` over the epochs (mean and sd over the finished runs); returns the files written."""
    from utils.summary.curves import plot_mean_curves

    rows = {row.name: row for row in table.rows}
    pairs = {}
    for run in runs:
        row = rows[run.row]
        if row.pair and run_status(run.save_dir) == "done":
            label = "%s (%s)" % (row.name.rsplit("/", 1)[-1], row.synthesis)
            pairs.setdefault((row.pair, run.protocol), {}).setdefault(label, []).append(run.save_dir)
    written = []
    for (pair, protocol), groups in sorted(pairs.items()):
        path = os.path.join(out_dir, "curves-%s-%s.png" % (pair.replace("/", "-"), protocol))
        plot_mean_curves(groups, metric, path, "%s, %s protocol: test %s" % (pair, protocol, metric))
        written.append(path)
    return written


def write_report(table, runs, out_dir, concatenate=None):
    """``report.md``, ``report.csv`` and the curves in ``out_dir/TABLE/``; returns the paths."""
    folder = os.path.join(out_dir, table.name)
    os.makedirs(folder, exist_ok=True)
    lines = gather(runs, concatenate)
    md_path, csv_path = os.path.join(folder, "report.md"), os.path.join(folder, "report.csv")
    text = markdown(table, lines)
    pictures = plot_pairs(table, runs, folder)
    if pictures:
        text += "\n" + "\n".join("![%s](%s)" % (os.path.basename(p), os.path.basename(p)) for p in pictures) + "\n"
    with open(md_path, "w", encoding="utf-8") as handle:
        handle.write(text)
    write_csv(csv_path, table, lines)
    return [md_path, csv_path] + pictures
