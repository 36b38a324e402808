"""The runs of an experiment: each row x seed (x fold) as one main.py command and one run folder.

Protocols (``--protocol``):

- ``release``: the release's selection: ``model_best.params`` and the reported best are chosen on the
  test classes at every evaluation (main.py's default; its figures are labelled test-selected).
- ``val``: a class-disjoint validation split of the training classes (``--val_classes``, the table's
  ``protocol.val_classes``, default 0.25 of them) selects (``--select_on=val``); the test metrics are
  those at the selected epoch.
- ``kfold``: ``--folds=K --fold=i`` for i = 0 .. K-1 (the table's ``protocol.folds``, default 4): the
  folds partition the training classes, fold i validates on its part and trains on the others.

A run's folder is ``OUT/TABLE/ROW/PROTOCOL/seed-S`` (``.../kfold/fold-I/seed-S`` for a fold), so
every run of every table has one folder of its own and ``run`` can tell what is done.
"""
import os
import re
import shlex
import sys
from dataclasses import dataclass

PROTOCOLS = ("release", "val", "kfold")
DEFAULT_VAL_CLASSES = 0.25
DEFAULT_FOLDS = 4
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*$")


@dataclass
class Run:
    """One training run of a row: its seed, fold (None outside k-fold), folder and main.py flags."""

    row: str
    protocol: str
    seed: int
    fold: int
    save_dir: str
    argv: list  # main.py's arguments, --save_dir last

    def command(self, python="python3"):
        """The shell command that trains this run, quoted for a POSIX shell."""
        return " ".join(shlex.quote(part) for part in [python, "main.py"] + self.argv)


def flag_value(value):
    """A table value as main.py reads it: True/False, comma-joined lists, numbers as written."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def protocol_flags(protocol, table_protocol, fold=None):
    """The main.py flags a protocol adds (none for the release's)."""
    if protocol == "release":
        return {}
    flags = {"select_on": "val"}
    if "select_metric" in table_protocol:
        flags["select_metric"] = table_protocol["select_metric"]
    if protocol == "val":
        flags["val_classes"] = table_protocol.get("val_classes", DEFAULT_VAL_CLASSES)
    else:
        flags.update(folds=table_protocol.get("folds", DEFAULT_FOLDS), fold=fold)
    return flags


def parse_seeds(text):
    """'0,1,2' or '0-4' (or a mix: '0-2,7') → [0, 1, 2] ...; one-line ValueError otherwise."""
    seeds = []
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise ValueError("--seeds takes seeds such as 0,1,2 or 0-4, got %r" % text)
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        seeds.extend(seed for seed in range(low, high + 1) if seed not in seeds)
    return seeds


def run_dir(out_dir, table, row, protocol, seed, fold=None):
    """The run folder of ``row`` (a table's row name, '/' making sub-folders)."""
    if not _SAFE_NAME.match(row) or ".." in row.split("/"):
        raise ValueError("table %s: row name %r must be letters, digits, _ . + - and / only" % (table, row))
    parts = [out_dir, table] + row.split("/") + [protocol]
    if fold is not None:
        parts.append("fold-%d" % fold)
    return os.path.join(*(parts + ["seed-%d" % seed]))


def plan_runs(table, rows, seeds, protocol, out_dir):
    """Every :class:`Run` of ``rows`` (trainable ones) x ``seeds`` (x folds), in table order."""
    if protocol not in PROTOCOLS:
        raise ValueError("--protocol must be one of %s, got %r" % (", ".join(PROTOCOLS), protocol))
    folds = range(int(table.protocol.get("folds", DEFAULT_FOLDS))) if protocol == "kfold" else [None]
    runs = []
    for row in rows:
        if not row.trainable:
            continue
        for fold in folds:
            for seed in seeds:
                flags = dict(row.flags, seed=seed, **protocol_flags(protocol, table.protocol, fold))
                save_dir = run_dir(out_dir, table.name, row.name, protocol, seed, fold)
                argv = ["--%s=%s" % (name, flag_value(value)) for name, value in flags.items()
                        if value is not None and name != "save_dir"]
                runs.append(Run(row.name, protocol, seed, fold, save_dir, argv + ["--save_dir=" + save_dir]))
    return runs


class _Refused(Exception):
    pass


def check_runs(runs):
    """Refuse, before anything runs, a run whose flags main.py would refuse: its parser, its checks of
    the flags and the loss's rules (nothing that needs the data or a device). One-line ValueError
    naming the row."""
    from loss.factory import check_loss_args
    from train.options import build_full_parser, validate_args

    parser = build_full_parser()

    def refuse(status=0, message=None):  # argparse's exit, as an exception with its one line
        raise _Refused((message or "").strip())

    parser.exit = refuse
    checked = set()
    for run in runs:
        key = tuple(part for part in run.argv if not part.startswith(("--seed=", "--save_dir=", "--fold=")))
        if key in checked:
            continue
        stderr, sys.stderr = sys.stderr, open(os.devnull, "w")
        try:
            args = parser.parse_args(run.argv)
            validate_args(args)
            check_loss_args(args)
        except (_Refused, ValueError) as error:
            text = str(error)
            raise ValueError("row %s (%s): main.py refuses its flags: %s" % (
                run.row, run.protocol, text[len("error: "):] if text.startswith("error: ") else text)) from None
        finally:
            sys.stderr.close()
            sys.stderr = stderr
        checked.add(key)
    return runs
