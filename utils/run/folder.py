"""The run folder (``--save_dir``): its files, its flags and their history, and the rules that keep
one run in one folder.

Files of a run::

    args.json            every flag of the run (what a resume continues), and its history
    train.log            the log, appended to by each process of the run
    summary.csv          one row per epoch
    events.out.tfevents.*  TensorBoard events, in the run folder itself, so that
                         ``tensorboard --logdir=results`` lists the run by its folder's name
    projector_config.pbtxt, projector/  the embedding projector's files (--projector_every)
    results.json         epochs trained; metrics before training, at the best and the last evaluation
    model_last.params    the parameters at the last evaluation
    model_best.params    the parameters at the best evaluation (by the first --recallk rank)
    checkpoint-*         checkpoints (utils.run.checkpoint)
    skipped_images.txt   images left out by --skip_bad_images
    export/              the exported network (--export=True)
    previous-TIME/       a run set aside by --overwrite=True
    set-aside-TIME/      files a resume found after its checkpoint (a run that went on, or broken),
                         or of an attempt that stopped before its first checkpoint (:func:`restart`)
    replayed.log         log lines written after the checkpoint a resume continued from

``train.log``, ``summary.csv`` and the event files only grow. A checkpoint records their sizes
(:func:`append_only_sizes`); a resume cuts them back to those sizes (:func:`rewind`), so what the
interrupted process logged after its checkpoint, and will log again, appears once.

A run that stopped before its first checkpoint (disk full, killed, an image that failed) has
nothing to continue from; a resume starts it again from the beginning with its own flags
(:func:`stopped_before_first_checkpoint`, :func:`restart`).
"""
import argparse
import datetime
import glob
import json
import logging
import os
import shutil
import sys

from utils.run import checkpoint, storage

logger = logging.getLogger(__name__)

ARGS = "args.json"
TRAIN_LOG = "train.log"
SUMMARY_CSV = "summary.csv"
EVENTS = "events.out.tfevents.*"  # TensorBoard's event files (a glob), in the run folder itself
PROJECTOR = "projector"  # the projector's embeddings, labels and sprites, by step and tag
PROJECTOR_CONFIG = "projector_config.pbtxt"  # TensorBoard reads it beside a run's event files
LEGACY_TENSORBOARD = "tensorboard_log"  # where runs begun before the events moved up keep theirs
RESULTS = "results.json"
MODEL_LAST = "model_last.params"
MODEL_BEST = "model_best.params"
SKIPPED_IMAGES = "skipped_images.txt"
EXPORT = "export"
REPLAYED_LOG = "replayed.log"
PREVIOUS = "previous-"
SET_ASIDE = "set-aside-"
RUN_MARKERS = (ARGS, RESULTS, TRAIN_LOG, SUMMARY_CSV, LEGACY_TENSORBOARD, MODEL_LAST, MODEL_BEST)

# Flags that change only how long a run goes or how it is observed, and the learning rates (to
# continue a run that diverged from its last good checkpoint, lower): a resume may change them.
RESUME_MAY_CHANGE = ("epochs", "eval_epoch_term", "eval_at_start", "num_workers", "progress",
                     "summary_step", "keep_checkpoints", "export", "grid_queries", "projector_every",
                     "projector_points", "knn", "nan_policy", "gpu_idx", "prefetch", "lr", "lr_fixed")
# Flags that say which folder and how to start, not what is trained.
RUN_FLAGS = ("save_dir", "resume", "overwrite")


def path(save_dir, name):
    return os.path.join(save_dir, name)


def tensorboard_dir(save_dir):
    """The folder of the run's TensorBoard files: the run folder itself, or ``tensorboard_log``
    for a run begun there (so that a resume appends to, and rewinds, the events it has)."""
    legacy = path(save_dir, LEGACY_TENSORBOARD)
    return legacy if glob.glob(os.path.join(legacy, EVENTS)) else save_dir


def holds_run(save_dir):
    """True when ``save_dir`` holds files of a run (set-aside folders alone do not count)."""
    if not os.path.isdir(save_dir):
        return False
    return any(os.path.exists(path(save_dir, name)) for name in RUN_MARKERS) or \
        bool(glob.glob(path(save_dir, checkpoint.PREFIX + "*"))) or bool(glob.glob(path(save_dir, EVENTS)))


def check_new_run(save_dir, overwrite):
    """Refuse a new run in a folder holding one, unless ``overwrite`` (then it will be set aside).
    The message offers --resume=auto only where there is a run to resume (its args.json)."""
    if not holds_run(save_dir) or overwrite:
        return
    if not os.path.isfile(path(save_dir, ARGS)):
        raise ValueError(
            "--save_dir %s holds files of a run but no %s, so it cannot be resumed; pass "
            "--overwrite=True to start over (the old files are moved into %sTIME inside it), or "
            "choose another --save_dir" % (save_dir, ARGS, PREVIOUS))
    raise ValueError(
        "--save_dir %s already holds a run; pass --resume=auto to continue it, --overwrite=True "
        "to start over (the old run is moved into %sTIME inside it), or choose another --save_dir"
        % (save_dir, PREVIOUS))


def _timestamped(save_dir, prefix):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder, n = path(save_dir, prefix + stamp), 1
    while os.path.exists(folder):
        n += 1
        folder = path(save_dir, "%s%s-%d" % (prefix, stamp, n))
    return folder


def _move_into(paths, folder):
    # Inside the run folder, which is the right one: the fix is to run again, not another --save_dir.
    storage.make_dirs(folder, storage.RUN_AGAIN_FIX)
    for source in paths:
        try:
            shutil.move(source, os.path.join(folder, os.path.basename(source)))
        except OSError as error:
            raise storage.storage_error(error, folder, storage.RUN_AGAIN_FIX) from None
    return folder


def set_aside_previous_run(save_dir):
    """Move every file of the run in ``save_dir`` into ``save_dir/previous-TIME`` (nothing is
    deleted, and no later resume can pick them up). Returns that folder, or None."""
    entries = [path(save_dir, name) for name in sorted(os.listdir(save_dir))
               if not name.startswith((PREVIOUS, SET_ASIDE))]
    if not entries:
        return None
    return _move_into(entries, _timestamped(save_dir, PREVIOUS))


# ------------------------------------------------------------------------------------- flags


def given_flags(parser, argv):
    """The flags the command line gives (converted by their types), not their defaults."""
    unset = object()
    namespace = argparse.Namespace(**{action.dest: unset for action in parser._actions
                                      if action.dest != argparse.SUPPRESS})
    parsed = parser.parse_args(argv, namespace=namespace)
    return {name: value for name, value in vars(parsed).items() if value is not unset}


def resume_target(resume, save_dir, save_dir_given):
    """``(run folder, checkpoint JSON or None for the newest)`` of ``--resume``: ``auto`` (the
    newest in --save_dir), a checkpoint file, or a run folder."""
    if resume == "auto":
        return save_dir, None
    if os.path.isdir(resume):
        folder, wanted = resume, None
    elif os.path.isfile(resume) and os.path.basename(resume).startswith(checkpoint.PREFIX):
        folder, wanted = os.path.dirname(os.path.abspath(resume)), resume.rsplit(".", 1)[0] + ".json"
    else:
        raise ValueError("--resume=%s: not auto, a run folder or a checkpoint file" % resume)
    if save_dir_given and os.path.abspath(save_dir) != os.path.abspath(folder):
        raise ValueError("--resume=%s belongs to the run in %s, not to --save_dir=%s; give one of "
                         "the two" % (resume, folder, save_dir))
    return folder, wanted


def read_args_file(args_path):
    """The flags (and history) an ``args.json`` holds; a one-line ValueError when it cannot be read."""
    try:
        with open(args_path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError("cannot read the run arguments %s: %s" % (args_path, error)) from None
    if not isinstance(saved, dict):
        raise ValueError("%s does not hold the flags of a run (a JSON object)" % args_path)
    return saved


def args_beside(file_path):
    """``(path, flags)`` of the ``args.json`` in the folder of ``file_path`` (a file a run wrote,
    such as model_best.params); ``flags`` is {} when there is no such file."""
    args_path = os.path.join(os.path.dirname(os.path.abspath(file_path)), ARGS)
    return args_path, (read_args_file(args_path) if os.path.isfile(args_path) else {})


def read_args(save_dir):
    """The flags recorded in ``save_dir/args.json`` (with their history), for a resume."""
    args_path = path(save_dir, ARGS)
    if not os.path.isfile(args_path) and holds_run(save_dir):
        raise ValueError("--resume: %s has no %s, so its run cannot be continued; start a new run "
                         "without --resume and with --overwrite=True (the old files are moved into "
                         "%sTIME inside it), or in another --save_dir" % (save_dir, ARGS, PREVIOUS))
    if not os.path.isfile(args_path):
        raise ValueError("--resume: %s has no %s, so it holds no run to continue; start a new run "
                         "without --resume" % (save_dir, ARGS))
    return read_args_file(args_path)


def _same(name, given, saved):
    if name == "data_dir" and given is not None and saved is not None:
        return os.path.abspath(given) == os.path.abspath(saved)
    return json.loads(json.dumps(given)) == saved


def resume_args(parser, given, saved):
    """The flags of a resumed run: those of ``args.json``, with the given flags that may change.

    ``given``: the flags the command line gives (:func:`given_flags`).

    Returns
    -------
    args : argparse.Namespace
    changed : dict
        ``{flag: [saved, given]}`` for the flags the command line changed.

    Raises
    ------
    ValueError
        A given flag would change what is trained (one line naming it and both values).
    """
    args = parser.parse_args([])
    for name, value in saved.items():
        if name in vars(args) and name not in RUN_FLAGS:
            setattr(args, name, value)
    changed = {}
    for name, value in sorted(given.items()):
        if name in RUN_FLAGS:
            setattr(args, name, value)
            continue
        if name in saved and _same(name, value, saved[name]):
            continue
        before = saved.get(name, parser.get_default(name))
        if name not in RESUME_MAY_CHANGE:
            raise ValueError(
                "--%s=%s differs from the run's %s=%s in %s: a resume continues the same training; "
                "leave --%s out, or start a new run in another --save_dir"
                % (name, _show(value), name, _show(before), ARGS, name))
        changed[name] = [before, value]
        setattr(args, name, value)
    return args, changed


def _show(value):
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def write_args(save_dir, args, contexts, data_dir, previous=None, changed=None, restarted=False):
    """Write ``args.json``: the run's flags and, appended, this start's history entry (``action``:
    start, overwrite, resume, or restart: a resume that found no checkpoint to continue from)."""
    flags = {name: value for name, value in vars(args).items() if name not in RUN_FLAGS}
    flags.update(data_dir=data_dir, contexts=[str(c) for c in contexts])
    history = list((previous or {}).get("history", []))
    if previous is not None:
        action = "restart" if restarted else "resume"
    else:
        action = "overwrite" if args.overwrite else "start"
    history.append({
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": [os.path.basename(sys.argv[0])] + sys.argv[1:],
        "action": action,
        "changed": changed or {},
    })
    flags["history"] = history
    storage.write_json(path(save_dir, ARGS), flags)
    return flags


def open_run(args, state, data_dir, contexts, previous=None, changed=None, skipped_images=None,
             restarted=False):
    """Make ``args.save_dir`` this run's: set a previous run aside (a new run with --overwrite),
    rewind it to the checkpoint of ``state`` (a resume), or set the files of its attempt aside (a
    resume that starts the run again, ``restarted``: :func:`restart`), then write args.json (and the
    list of skipped images). Returns the flags written."""
    save_dir = args.save_dir
    if restarted:
        restart(save_dir)
    elif args.resume:
        rewind(save_dir, state)
    elif holds_run(save_dir):
        logger.info("moved the previous run into %s", set_aside_previous_run(save_dir))
    storage.make_dirs(save_dir)
    checkpoint.remove_partial_files(save_dir)
    saved = write_args(save_dir, args, contexts, data_dir, previous, changed, restarted)
    if changed:
        logger.info("changed on resume: %s", json.dumps(changed, sort_keys=True))
    if skipped_images:
        # args.json is written: from here on a failed write leaves a run that --resume=auto continues.
        listed = ("\n".join(skipped_images) + "\n").encode("utf-8")
        storage.write_bytes(path(save_dir, SKIPPED_IMAGES), listed, storage.RESUME_FIX)
        logger.warning("left out %d unreadable images (listed in %s)", len(skipped_images), SKIPPED_IMAGES)
    return saved


# ------------------------------------------------------------------------- append-only files


def _append_only_files(save_dir):
    found = [TRAIN_LOG, SUMMARY_CSV]
    found += [os.path.relpath(p, save_dir) for p in glob.glob(os.path.join(tensorboard_dir(save_dir), EVENTS))]
    return [name for name in found if os.path.isfile(path(save_dir, name))]


def append_only_sizes(save_dir):
    """``{relative path: size}`` of the run's append-only files (the caller flushes them first)."""
    return {name: os.path.getsize(path(save_dir, name)) for name in _append_only_files(save_dir)}


def _cut(file_path, size):
    """Truncate ``file_path`` to ``size`` bytes; returns the bytes cut off."""
    with open(file_path, "r+b") as handle:
        handle.seek(size)
        tail = handle.read()
        handle.truncate(size)
    return tail


def rewind(save_dir, checkpoint_meta):
    """Bring the run folder back to the checkpoint a resume continues from.

    The append-only files are cut to the sizes the checkpoint recorded (``run_files``; the log lines
    cut off go to
    ``replayed.log``), event files begun after it and checkpoint files newer than it are moved into
    ``set-aside-TIME``, and ``results.json`` is rewritten from it.
    """
    sizes = checkpoint_meta["run_files"]
    try:
        later = []
        for name in _append_only_files(save_dir):
            if name not in sizes:
                later.append(path(save_dir, name))
                continue
            tail = _cut(path(save_dir, name), sizes[name])
            if name == TRAIN_LOG and tail:
                with open(path(save_dir, REPLAYED_LOG), "ab") as handle:
                    handle.write(tail)
    except OSError as error:
        raise storage.storage_error(error, save_dir, storage.RESUME_FIX) from None
    later += checkpoint.checkpoint_files_after(save_dir, checkpoint_meta)
    if later:
        folder = _move_into(later, _timestamped(save_dir, SET_ASIDE))
        logger.info("moved %d files written after that checkpoint into %s", len(later), folder)
    write_results(save_dir, checkpoint_meta["results"])


def stopped_before_first_checkpoint(save_dir):
    """True when ``save_dir`` holds a run (its args.json) that stopped before its first checkpoint:
    no checkpoint JSON, intact or broken (a checkpoint exists once its JSON does), and no
    results.json (which is only ever written after a checkpoint, so a run whose checkpoints were
    removed after it trained is not taken for one that never began)."""
    return (os.path.isfile(path(save_dir, ARGS)) and not os.path.exists(path(save_dir, RESULTS))
            and not glob.glob(path(save_dir, checkpoint.PREFIX + "*.json")))


# What a restarted run keeps in place: its flags (rewritten with the restart in their history)
# and its logs (appended to); set-aside and previous runs stay where they are.
_KEPT_ON_RESTART = (ARGS, TRAIN_LOG, REPLAYED_LOG)


def restart(save_dir):
    """Make a run that stopped before its first checkpoint start again from the beginning, unmixed:
    every file its attempt wrote besides args.json and the logs (event files, summary.csv rows,
    parameters of an evaluation whose checkpoint failed, projector files, orphaned files of the
    checkpoint being written, skipped_images.txt) is moved into ``set-aside-TIME``; nothing is
    deleted. Returns that folder, or None when there was nothing to move."""
    moved = [path(save_dir, name) for name in sorted(os.listdir(save_dir))
             if name not in _KEPT_ON_RESTART and not name.endswith(".tmp")
             and not name.startswith((PREVIOUS, SET_ASIDE))]
    folder = _move_into(moved, _timestamped(save_dir, SET_ASIDE)) if moved else None
    logger.info("no checkpoint in %s: the run stopped before its first one, so it starts again from "
                "the beginning%s", save_dir,
                " (what its first attempt wrote was moved into %s)" % folder if folder else "")
    return folder


def write_results(save_dir, results):
    storage.write_json(path(save_dir, RESULTS), results, storage.RESUME_FIX)
