"""Training checkpoints: written atomically, verified by checksum, pruned, resumed from.

A checkpoint is three files sharing a stem ``checkpoint-eEEEEEE-sSSSSSSSSS`` (completed epochs,
global step; ``-pre-eval`` when the epoch's evaluation was still to run) in the run folder:

- ``STEM.params``: the network's parameters (BatchNorm running statistics included),
- ``STEM.states``: the trainer's (optimiser's) state,
- ``STEM.loss.params``: a proxy loss's parameters (its class proxies, ``loss.proxy_base``), only
  for such a loss: they train beside the network but are no part of it (model_*.params and the
  export hold the network alone),
- ``STEM.json``: the run state (epoch, batches done within it, global step, results so far, the
  epoch's running loss, whether an evaluation is pending, random states), the size and SHA-256 of
  the two files above, and the sizes of the run's append-only files at that point (see
  ``utils.run.folder``).

The parameters and states go first, the JSON last, each through ``utils.run.storage`` (temporary name,
fsync, rename): a checkpoint exists once its JSON does, and the JSON vouches for the other two.
``find_intact`` takes the newest checkpoint whose files match their checksums and says why newer
ones were passed over.
"""
import glob
import json
import logging
import os
import random

import numpy as np

from utils.errors import one_line
from utils.run import faults, storage

logger = logging.getLogger(__name__)

PREFIX = "checkpoint-"
SUFFIXES = (".json", ".params", ".states", ".loss.params")


def _stem_of_file(name):
    """The checkpoint stem of a file name (the longest suffix of ``SUFFIXES`` removed)."""
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def stem_of(state):
    """The file stem of the checkpoint of ``state``."""
    stem = "%se%06d-s%09d" % (PREFIX, state["epoch"], state["global_step"])
    return stem + "-pre-eval" if state.get("pending_eval") else stem


def order_of(meta):
    """Sort key of a checkpoint: by global step; before its evaluation comes before after it."""
    return meta.get("global_step", -1), 0 if meta.get("pending_eval") else 1


def _random_state():
    py_state = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
    }


def _set_random_state(state):
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def remove_partial_files(save_dir):
    """Delete ``*.tmp`` files a killed writer may have left in the run folder; they were never
    renamed into place, so nothing refers to them."""
    for path in glob.glob(os.path.join(save_dir, "*.tmp")):
        os.remove(path)


def _read_meta(json_path):
    with open(json_path) as handle:
        meta = json.load(handle)
    if not isinstance(meta, dict) or "files" not in meta or "global_step" not in meta:
        raise ValueError("not a checkpoint of this version (no file checksums)")
    return meta


def list_checkpoints(save_dir):
    """``(json_path, meta)`` of every readable checkpoint JSON in ``save_dir``, oldest first."""
    found = []
    for path in glob.glob(os.path.join(save_dir, PREFIX + "*.json")):
        try:
            found.append((path, _read_meta(path)))
        except (OSError, ValueError):
            continue
    return sorted(found, key=lambda item: order_of(item[1]))


def verify(json_path):
    """``(meta, None)`` when the checkpoint is intact, else ``(None, reason)``."""
    try:
        meta = _read_meta(json_path)
    except OSError as error:
        return None, "cannot read it (%s)" % error.strerror
    except ValueError as error:
        return None, "its JSON is unreadable (%s)" % str(error).splitlines()[0]
    folder = os.path.dirname(json_path)
    for kind, expected in sorted(meta["files"].items()):
        path = os.path.join(folder, expected["name"])
        if not os.path.isfile(path):
            return None, "its %s file %s is missing" % (kind, expected["name"])
        actual = storage.file_digest(path)
        if actual["size"] != expected["size"]:
            return None, "its %s file is %d bytes, %d were written (truncated)" % (
                kind, actual["size"], expected["size"])
        if actual["sha256"] != expected["sha256"]:
            return None, "its %s file does not match its checksum (corrupt)" % kind
    return meta, None


def find_intact(save_dir, wanted=None):
    """The newest intact checkpoint of ``save_dir``, or ``wanted`` (a JSON path) when given.

    Returns
    -------
    json_path, meta, skipped
        ``skipped``: ``[(json name, reason), ...]`` for the newer checkpoints passed over.

    Raises
    ------
    ValueError
        No intact checkpoint (one line, listing why each was refused).
    """
    if wanted is not None:
        meta, reason = verify(wanted)
        if meta is None:
            raise ValueError("--resume: checkpoint %s cannot be used: %s; take the newest intact one "
                             "instead: python3 main.py --save_dir=%s --resume=auto"
                             % (wanted, reason, save_dir))
        return wanted, meta, []
    candidates = glob.glob(os.path.join(save_dir, PREFIX + "*.json"))
    # Unreadable JSONs have no order of their own: the file name carries epoch and step.
    keyed = []
    for path in candidates:
        try:
            key = order_of(_read_meta(path))
        except (OSError, ValueError):
            key = (float("inf"), 0)  # try readable ones first; a broken one is reported as skipped
        keyed.append((key, path))
    skipped = []
    for _, path in sorted(keyed, reverse=True):
        meta, reason = verify(path)
        if meta is not None:
            return path, meta, skipped
        skipped.append((os.path.basename(path), reason))
    # A run that stopped before its first checkpoint does not come here: it starts again
    # (utils.run.folder.restart). These runs had checkpoints, and none can be used.
    start_over = ("start the run over with its command and --overwrite=True instead of --resume (its "
                  "files are moved into previous-TIME inside it), or choose another --save_dir")
    if skipped:
        raise ValueError("--resume: no intact checkpoint in %s (%s); %s" % (
            save_dir, "; ".join("%s: %s" % s for s in skipped), start_over))
    raise ValueError("--resume: no checkpoint in %s, though the run has trained (its checkpoints were "
                     "removed); %s" % (save_dir, start_over))


def save_checkpoint(save_dir, params_bytes, states_bytes, state, keep=None, params_source=None,
                    loss_params=None):
    """Write a checkpoint of ``state`` (a JSON-able dict with ``epoch``, ``global_step``, ...).

    ``params_bytes`` and ``states_bytes`` are the serialised network and trainer
    (``storage.serialize``), ``loss_params`` a proxy loss's (None: the loss has none); with
    ``params_source`` (a file holding exactly ``params_bytes``, such
    as ``model_last.params``) the parameters are hard-linked from it instead of written again.
    Keeps the newest ``keep`` checkpoints (all when None). Returns the JSON path.
    """
    stem = stem_of(state)
    files = {"params": stem + ".params", "states": stem + ".states"}
    params_path = os.path.join(save_dir, files["params"])
    if params_source is not None:
        storage.link_or_copy(params_source, params_path, storage.RESUME_FIX)
    else:
        storage.write_bytes(params_path, params_bytes, storage.RESUME_FIX)
    faults.at("checkpoint", state["epoch"])
    storage.write_bytes(os.path.join(save_dir, files["states"]), states_bytes, storage.RESUME_FIX)
    written = {"params": params_bytes, "states": states_bytes}
    if loss_params is not None:
        files["loss"], written["loss"] = stem + ".loss.params", loss_params
        storage.write_bytes(os.path.join(save_dir, files["loss"]), loss_params, storage.RESUME_FIX)
    meta = dict(state, random_state=_random_state(), files={
        kind: dict(storage.bytes_digest(content), name=files[kind]) for kind, content in written.items()})
    json_path = os.path.join(save_dir, stem + ".json")
    storage.write_json(json_path, meta, storage.RESUME_FIX)
    if keep is not None:
        prune_checkpoints(save_dir, keep)
    return json_path


def loss_parameters(loss_fn):
    """A proxy loss's parameters serialised for :func:`save_checkpoint`; None for a loss without."""
    if getattr(loss_fn, "proxies", None) is None:
        return None
    return storage.serialize(loss_fn.save_parameters)


def _remove_checkpoint(save_dir, stem):
    # The JSON goes first: without it the other two files are no longer a checkpoint.
    for suffix in SUFFIXES:
        try:
            os.remove(os.path.join(save_dir, stem + suffix))
        except FileNotFoundError:
            pass


def prune_checkpoints(save_dir, keep):
    """Delete all but the newest ``keep`` checkpoints."""
    listed = list_checkpoints(save_dir)
    for path, _ in listed[: max(0, len(listed) - keep)]:
        _remove_checkpoint(save_dir, os.path.basename(path)[: -len(".json")])


def checkpoint_files_after(save_dir, meta):
    """Paths of the checkpoint files in ``save_dir`` that do not belong to a checkpoint at or before
    ``meta``: newer checkpoints (from a run that went on after it) and broken ones."""
    keep = {os.path.basename(path)[: -len(".json")]
            for path, other in list_checkpoints(save_dir) if order_of(other) <= order_of(meta)}
    stems = {_stem_of_file(os.path.basename(path))
             for suffix in SUFFIXES for path in glob.glob(os.path.join(save_dir, PREFIX + "*" + suffix))}
    return sorted(os.path.join(save_dir, stem + suffix) for stem in stems - keep for suffix in SUFFIXES
                  if os.path.exists(os.path.join(save_dir, stem + suffix)))


def load_checkpoint(json_path, meta, net, trainer, ctx, loss_fn=None):
    """Restore ``net``, ``trainer``, a proxy loss's parameters (``loss_fn``) and the random states
    from a verified checkpoint."""
    folder = os.path.dirname(json_path)
    has_proxies = getattr(loss_fn, "proxies", None) is not None
    if has_proxies != ("loss" in meta["files"]):
        raise ValueError("cannot resume from %s: %s; resume with the run's own --loss (its args.json)" % (
            json_path, "the loss has class proxies and the checkpoint none" if has_proxies
            else "the checkpoint holds class proxies and the loss has none"))
    try:
        if has_proxies:
            loss_fn.load_parameters(os.path.join(folder, meta["files"]["loss"]["name"]), ctx=ctx[:1])
        net.load_parameters(os.path.join(folder, meta["files"]["params"]["name"]), ctx=ctx)
        trainer.load_states(os.path.join(folder, meta["files"]["states"]["name"]))
    except Exception as error:  # MXNetError names the parameter that does not fit
        raise ValueError("cannot resume from %s: %s" % (json_path, one_line(error)[:300])) from None
    if "random_state" in meta:
        _set_random_state(meta["random_state"])


def resume(save_dir, wanted, net, trainer, ctx, loss_fn=None):
    """Load the newest intact checkpoint of ``save_dir`` (or ``wanted``) into ``net``, ``trainer``
    and a proxy loss's parameters (``loss_fn``), logging which one and why newer ones were passed
    over; returns its meta."""
    path, meta, skipped = find_intact(save_dir, wanted)
    for name, reason in skipped:
        logger.warning("skipped checkpoint %s: %s", name, reason)
    load_checkpoint(path, meta, net, trainer, ctx, loss_fn)
    logger.info("resuming from %s (epoch %d, batch %d, step %d)", path, meta["epoch"],
                meta["batch_in_epoch"], meta["global_step"])
    return meta
