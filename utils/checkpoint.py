"""Training checkpoints: parameters, optimiser state and run state, written atomically.

A checkpoint is three files sharing a stem in ``save_dir``:

- ``checkpoint-eEEEEE-sSSSSSSSS.params``: the network's parameters,
- ``checkpoint-eEEEEE-sSSSSSSSS.states``: the trainer's (optimiser's) state,
- ``checkpoint-eEEEEE-sSSSSSSSS.json``: epoch, batches done within it, global step, results so far,
  Python and NumPy random states, and the names of the two files above.

Each file is written to a temporary name and renamed; the JSON goes last, so a checkpoint exists
only once all of it is on disk, and a crash in the middle of writing leaves the previous one intact.
"""
import glob
import json
import logging
import os
import random

import numpy as np

logger = logging.getLogger(__name__)

PREFIX = "checkpoint-"


def _atomic(path, write):
    tmp_path = path + ".tmp"
    write(tmp_path)
    os.replace(tmp_path, path)


def write_json(path, payload):
    """Write JSON atomically: a reader never sees half a file."""

    def dump(tmp_path):
        with open(tmp_path, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())

    _atomic(path, dump)


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
    """Delete ``checkpoint*.tmp`` files a killed writer may have left; they were never renamed
    into place, so no checkpoint refers to them."""
    for path in glob.glob(os.path.join(save_dir, PREFIX + "*.tmp")):
        os.remove(path)


def list_checkpoints(save_dir):
    """Complete checkpoints in ``save_dir`` (their JSON paths), oldest first by global step."""
    found = []
    for path in glob.glob(os.path.join(save_dir, PREFIX + "*.json")):
        try:
            with open(path) as handle:
                meta = json.load(handle)
        except (OSError, ValueError):
            continue
        files = [os.path.join(save_dir, meta.get(key, "")) for key in ("params_file", "states_file")]
        if all(os.path.isfile(f) for f in files):
            found.append((meta.get("global_step", -1), path))
    return [path for _, path in sorted(found)]


def save_checkpoint(save_dir, net, trainer, state, keep=None, protect=()):
    """Write a checkpoint of ``net``, ``trainer`` and ``state`` (a JSON-able dict).

    ``state`` must hold ``epoch`` (completed epochs), ``batch_in_epoch`` and ``global_step``.
    Keeps the newest ``keep`` checkpoints (all when None) and any whose stem is in ``protect``.
    Returns the JSON path.
    """
    stem = "%se%06d-s%09d" % (PREFIX, state["epoch"], state["global_step"])
    params_file, states_file = stem + ".params", stem + ".states"
    _atomic(os.path.join(save_dir, params_file), net.save_parameters)
    _atomic(os.path.join(save_dir, states_file), trainer.save_states)
    meta = dict(state, params_file=params_file, states_file=states_file, random_state=_random_state())
    json_path = os.path.join(save_dir, stem + ".json")
    write_json(json_path, meta)
    if keep is not None:
        prune_checkpoints(save_dir, keep, protect=set(protect) | {stem})
    return json_path


def prune_checkpoints(save_dir, keep, protect=()):
    """Delete all but the newest ``keep`` checkpoints, never those whose stem is in ``protect``."""
    paths = list_checkpoints(save_dir)
    for path in paths[: max(0, len(paths) - keep)]:
        stem = os.path.basename(path)[: -len(".json")]
        if stem in protect:
            continue
        # The JSON goes first: without it the other two files are no longer a checkpoint.
        for suffix in (".json", ".params", ".states"):
            try:
                os.remove(os.path.join(save_dir, stem + suffix))
            except FileNotFoundError:
                pass


def find_checkpoint(resume, save_dir):
    """The checkpoint JSON named by ``--resume``: ``auto`` (newest in save_dir), a JSON path, or a
    directory (its newest). Raises a one-line ValueError when there is none."""
    if resume == "auto" or os.path.isdir(resume):
        folder = save_dir if resume == "auto" else resume
        paths = list_checkpoints(folder)
        if not paths:
            raise ValueError(
                "--resume=%s: no complete checkpoint in %s; start without --resume" % (resume, folder)
            )
        return paths[-1]
    if not os.path.isfile(resume):
        raise ValueError("--resume: checkpoint %s does not exist" % resume)
    if resume.endswith((".params", ".states")):
        resume = resume.rsplit(".", 1)[0] + ".json"
    return resume


def load_checkpoint(json_path, net, trainer, ctx):
    """Restore ``net`` and ``trainer`` from a checkpoint; returns its state dict."""
    try:
        with open(json_path) as handle:
            meta = json.load(handle)
        folder = os.path.dirname(json_path)
        net.load_parameters(os.path.join(folder, meta["params_file"]), ctx=ctx)
        trainer.load_states(os.path.join(folder, meta["states_file"]))
    except (OSError, ValueError, KeyError) as error:
        raise ValueError("cannot resume from %s: %s" % (json_path, str(error).splitlines()[0])) from None
    except Exception as error:  # MXNetError on a mismatched network
        raise ValueError(
            "cannot resume from %s: it does not match this network (%s); resume with the flags "
            "of that run" % (json_path, str(error).strip().splitlines()[0][:200])
        ) from None
    if "random_state" in meta:
        _set_random_state(meta["random_state"])
    logger.info("resumed from %s (epoch %d, batch %d, step %d)", json_path, meta["epoch"],
                meta.get("batch_in_epoch", 0), meta["global_step"])
    return meta
