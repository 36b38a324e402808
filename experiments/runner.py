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
import threading
from concurrent.futures import ThreadPoolExecutor
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


def _say_outcome(outcome, out_dir, say):
    if outcome.action == "failed":
        say("  failed (exit code %d): %s; log %s" % (outcome.exit_code, outcome.last_line,
                                                     log_path(out_dir, outcome.run.save_dir)))
        if outcome.exit_code == INTERRUPTED:
            say("  interrupted: the same command continues from here")
    else:
        say("  %s" % outcome.action)


def _describe(index, runs, run):
    return "[%d/%d] %s %s seed %d%s" % (index, len(runs), run.row, run.protocol, run.seed,
                                        "" if run.fold is None else " fold %d" % run.fold)


def run_all(runs, out_dir, python=sys.executable, env=None, say=print, jobs=1):
    """Every run (see the module docstring), ``jobs`` at a time (1: in order); returns the outcomes
    of those it reached, in table order. An interrupted run (exit code 130) starts no further one."""
    if jobs > 1:
        return _run_concurrently(runs, out_dir, python, env, say, jobs)
    outcomes = []
    for index, run in enumerate(runs, start=1):
        say("%s: %s" % (_describe(index, runs, run), run_status(run.save_dir)))
        outcome = run_one(run, out_dir, python=python, env=env)
        outcomes.append(outcome)
        _say_outcome(outcome, out_dir, say)
        if outcome.exit_code == INTERRUPTED:
            break
    return outcomes


def _run_concurrently(runs, out_dir, python, env, say, jobs):
    """``jobs`` runs at a time, each a main.py process of its own (its threads: ``env``'s
    OMP_NUM_THREADS); what each became is said as it ends."""
    stopped = threading.Event()
    lock = threading.Lock()

    def one(index, run):
        if stopped.is_set():
            return None
        with lock:
            say("%s: %s" % (_describe(index, runs, run), run_status(run.save_dir)))
        outcome = run_one(run, out_dir, python=python, env=env)
        with lock:
            say("%s ended:" % _describe(index, runs, run))
            _say_outcome(outcome, out_dir, say)
        if outcome.exit_code == INTERRUPTED:
            stopped.set()
        return outcome

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one, index, run) for index, run in enumerate(runs, start=1)]
        outcomes = [future.result() for future in futures]
    return [outcome for outcome in outcomes if outcome is not None]
