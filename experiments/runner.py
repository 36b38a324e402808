"""Run an experiment's runs in order on this machine, resumable.

A run whose results.json says it trained all its epochs is skipped; a run folder that holds a run
but not a finished one is continued with ``--resume=auto`` (main.py takes the run's own flags from
its args.json); a new run starts. A run that fails (exit code 1 or 2) is reported and the others
go on; Ctrl-C (exit code 130: main.py wrote a checkpoint) stops the whole sequence, and the same
command continues it. Each run's console output goes to ``OUT/logs/<the run folder's path>.log``,
outside the run folder, which only main.py writes.
"""
import json
import os
import subprocess
import sys
from dataclasses import dataclass

from utils.run import folder as run_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTERRUPTED = 130


def run_status(save_dir):
    """``'done'`` (trained all its epochs), ``'partial'`` (a run that can continue) or ``'new'``."""
    if not run_folder.holds_run(save_dir):
        return "new"
    results_path = run_folder.path(save_dir, run_folder.RESULTS)
    args_path = run_folder.path(save_dir, run_folder.ARGS)
    try:
        with open(results_path, encoding="utf-8") as handle:
            results = json.load(handle)
        epochs = run_folder.read_args_file(args_path)["epochs"]
    except (OSError, ValueError, KeyError):
        return "partial"
    return "done" if results.get("last") and results.get("epoch", 0) >= epochs else "partial"


def log_path(out_dir, save_dir):
    """Where the runner keeps the console output of the run in ``save_dir``."""
    relative = os.path.relpath(os.path.abspath(save_dir), os.path.abspath(out_dir))
    return os.path.join(out_dir, "logs", relative + ".log")


@dataclass
class Outcome:
    """What became of one run: skipped (already done), trained, continued, or failed (exit code)."""

    run: object
    action: str  # 'skipped', 'trained', 'continued', 'failed'
    exit_code: int = 0
    last_line: str = ""


def _last_line(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = [line.strip() for line in handle if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def run_one(run, out_dir, python=sys.executable, env=None):
    """Train, continue or skip ``run``; returns an :class:`Outcome`."""
    status = run_status(run.save_dir)
    if status == "done":
        return Outcome(run, "skipped")
    argv = run.argv if status == "new" else ["--save_dir=" + run.save_dir, "--resume=auto"]
    log = log_path(out_dir, run.save_dir)
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("$ %s\n" % " ".join([python, "main.py"] + argv))
        handle.flush()
        code = subprocess.call([python, "main.py"] + argv, cwd=ROOT, env=env, stdout=handle,
                               stderr=subprocess.STDOUT)
    if code == 0:
        return Outcome(run, "trained" if status == "new" else "continued")
    return Outcome(run, "failed", code, _last_line(log))


def run_all(runs, out_dir, python=sys.executable, env=None, say=print):
    """Every run in order (see the module docstring); returns the outcomes of those it reached."""
    outcomes = []
    for index, run in enumerate(runs, start=1):
        say("[%d/%d] %s %s seed %d%s: %s" % (index, len(runs), run.row, run.protocol, run.seed,
                                             "" if run.fold is None else " fold %d" % run.fold,
                                             run_status(run.save_dir)))
        outcome = run_one(run, out_dir, python=python, env=env)
        outcomes.append(outcome)
        if outcome.action == "failed":
            say("  failed (exit code %d): %s; log %s" % (outcome.exit_code, outcome.last_line,
                                                         log_path(out_dir, run.save_dir)))
            if outcome.exit_code == INTERRUPTED:
                say("  interrupted: the same command continues from here")
                break
        else:
            say("  %s" % outcome.action)
    return outcomes
