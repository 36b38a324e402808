"""An experiment table: the rows of a paper's results table (or of a CPU-sized one) as data.

A table is a JSON file in ``experiments/tables/NAME.json``::

    {"name": ..., "title": ..., "paper": ..., "units": "percent" | "fraction",
     "metrics": ["NMI", "F1", "R@1", ...],          # the columns, in the paper's order
     "common_flags": {"backbone": "googlenet", ...},  # main.py flags of every row (no dashes)
     "protocol": {"val_classes": 0.5, "folds": 4},    # optional: the fair protocol's split sizes
     "metrics_by_dataset": {"sop": ["NMI", "F1", "R@1", "R@10", "R@100"]},  # optional
     "rows": [{"name": "cars196/hphn_triplet/ee", "pair": "cars196/hphn_triplet",
               "synthesis": "ee" | "symm" | "none", "flags": {...} | null, "paper_label": "EE + Triplet†",
               "flags_source": ..., "paper_figures": {"R@1": 74.5, ...}, "figures_source": ...}],
     "reference_rows": [...],   # other methods the paper prints, figures only
     "notes": [...]}

A row trains with ``common_flags`` updated by its ``flags``; a row whose flags are ``null`` cannot be
trained here (a loss this toolkit lacks) and is listed, reported with the paper's figures only.
Rows sharing a ``pair`` key are the same recipe with and without the synthesis (the curves' figure).
"""
import json
import os
from dataclasses import dataclass, field

TABLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables")


@dataclass
class Row:
    """One row: its name, the main.py flags that train it, and the paper's figures."""

    name: str
    flags: dict  # every main.py flag of the row (common flags included), or None: not trainable
    pair: str = None
    synthesis: str = "none"
    paper_figures: dict = field(default_factory=dict)
    flags_source: str = ""
    figures_source: str = ""
    paper_label: str = ""
    reference: bool = False  # another method printed in the paper's table, for comparison only

    @property
    def trainable(self):
        return self.flags is not None

    @property
    def dataset(self):
        """The dataset part of the row's name (``cars196`` of ``cars196/hphn_triplet/ee``)."""
        return self.name.split("/", 1)[0]


@dataclass
class Table:
    """A table's rows (in file order) and what they are measured in."""

    name: str
    title: str
    paper: str
    units: str
    metrics: list
    rows: list
    protocol: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    metrics_by_dataset: dict = field(default_factory=dict)  # a dataset's own columns (SOP's R@K)

    def metrics_of(self, dataset):
        """The columns of ``dataset``'s rows (the table's ``metrics`` unless it names others)."""
        return list(self.metrics_by_dataset.get(dataset, self.metrics))

    def datasets(self):
        """The datasets of the rows, in the order they first appear."""
        return list(dict.fromkeys(row.dataset for row in self.rows))

    def row(self, name):
        for row in self.rows:
            if row.name == name:
                return row
        raise ValueError("table %s has no row %r; its rows: %s (python3 -m tools.experiments list %s)"
                         % (self.name, name, ", ".join(r.name for r in self.rows), self.name))

    def select(self, names=None):
        """The rows named in ``names`` (all when None or empty), in table order."""
        if not names:
            return list(self.rows)
        wanted = [self.row(name) for name in names]  # each name checked
        return [row for row in self.rows if row in wanted]


def table_names(tables_dir=TABLES_DIR):
    """The names of the tables in ``tables_dir``, sorted."""
    if not os.path.isdir(tables_dir):
        return []
    return sorted(name[: -len(".json")] for name in os.listdir(tables_dir) if name.endswith(".json"))


def _require(mapping, key, where):
    if key not in mapping:
        raise ValueError("%s has no %r" % (where, key))
    return mapping[key]


def _row(entry, common, where, reference=False):
    name = _require(entry, "name", where)
    flags = None if reference else entry.get("flags", {})
    return Row(name=name, flags=None if flags is None else dict(common, **flags), pair=entry.get("pair"),
               synthesis=entry.get("synthesis", "none"), paper_figures=entry.get("paper_figures") or {},
               flags_source=entry.get("flags_source", ""), figures_source=entry.get("figures_source", ""),
               paper_label=entry.get("paper_label", ""), reference=reference)


def parse_table(data, where="table"):
    """A :class:`Table` from the decoded JSON ``data``; one-line ValueError naming what is wrong."""
    common = data.get("common_flags", {})
    rows = [_row(entry, common, "%s row %d" % (where, index + 1))
            for index, entry in enumerate(_require(data, "rows", where))]
    rows += [_row(entry, common, "%s reference row %d" % (where, index + 1), reference=True)
             for index, entry in enumerate(data.get("reference_rows") or [])]
    names = [row.name for row in rows]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError("%s names rows more than once: %s" % (where, ", ".join(repeated)))
    units = data.get("units", "percent")
    if units not in ("percent", "fraction"):
        raise ValueError("%s: units must be percent or fraction, got %r" % (where, units))
    return Table(name=_require(data, "name", where), title=data.get("title", ""), paper=data.get("paper", ""),
                 units=units, metrics=list(_require(data, "metrics", where)), rows=rows,
                 protocol=dict(data.get("protocol") or {}), notes=list(data.get("notes") or []),
                 metrics_by_dataset=dict(data.get("metrics_by_dataset") or {}))


def load_table(name, tables_dir=TABLES_DIR):
    """The table ``name`` (a name of :func:`table_names`, or a path to a table's JSON file)."""
    path = name if name.endswith(".json") else os.path.join(tables_dir, name + ".json")
    if not os.path.isfile(path):
        raise ValueError("no experiment table %r; choose from %s, or give a table's .json file"
                         % (name, ", ".join(table_names(tables_dir)) or "(none)"))
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except ValueError as error:
        raise ValueError("%s is not valid JSON (%s)" % (path, error)) from None
    return parse_table(data, where=os.path.basename(path))
