"""The pieces of a run's life, one by one: durable writes and their errors, checkpoint checksums
and pruning, deferred interrupts, and the resume flag rules."""
import errno
import json
import os
import signal

import mxnet as mx
import numpy as np
import pytest

from utils.run import checkpoint, faults, folder as run_folder, storage
from utils.run.interrupts import Interrupts, RunInterrupted


def _net():
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(4, in_units=3), mx.gluon.nn.BatchNorm(in_channels=4))
    net.initialize(mx.init.Xavier())
    return net


# ------------------------------------------------------------------------------------ storage

def test_serialize_gives_the_bytes_mxnet_writes(tmp_path):
    net = _net()
    trainer = mx.gluon.Trainer(net.collect_params(), "adam")
    with mx.autograd.record():
        loss = net(mx.nd.ones((2, 3))).sum()
    loss.backward()
    trainer.step(2)
    net.save_parameters(str(tmp_path / "p"))
    trainer.save_states(str(tmp_path / "s"))
    assert storage.serialize(net.save_parameters) == open(str(tmp_path / "p"), "rb").read(), \
        "parameters serialised in memory must equal save_parameters' file"
    assert storage.serialize(trainer.save_states) == open(str(tmp_path / "s"), "rb").read(), \
        "trainer states serialised in memory must equal save_states' file"


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk is full"), (errno.EACCES, "permission denied"),
                                         (errno.EROFS, "read-only")])
def test_a_failed_write_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, code, words):
    path = str(tmp_path / "results.json")
    storage.write_json(path, {"epoch": 1})
    real_fsync = os.fsync

    def failing_fsync(fd):  # the data reached the temporary file; the disk refuses to keep it
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(storage.StorageError) as info:
        storage.write_json(path, {"epoch": 2}, fix="free space, then resume")
    monkeypatch.setattr(os, "fsync", real_fsync)
    message = str(info.value)
    assert "\n" not in message and path in message and words in message and "resume" in message, message
    assert json.load(open(path)) == {"epoch": 1}, "the previous file is intact"
    assert os.listdir(str(tmp_path)) == ["results.json"], "no temporary file is left"


def test_injected_write_fault_fires_once(tmp_path, monkeypatch):
    monkeypatch.setattr(faults, "_FAULT", ("ENOSPC", "write", "model_last"))
    monkeypatch.setattr(faults, "_fired", set())
    with pytest.raises(storage.StorageError, match="disk is full"):
        storage.write_bytes(str(tmp_path / "model_last.params"), b"x")
    storage.write_bytes(str(tmp_path / "model_last.params"), b"y")
    assert open(str(tmp_path / "model_last.params"), "rb").read() == b"y"


def test_link_or_copy_shares_the_bytes(tmp_path):
    source = str(tmp_path / "a")
    storage.write_bytes(source, b"params")
    storage.link_or_copy(source, str(tmp_path / "b"))
    assert open(str(tmp_path / "b"), "rb").read() == b"params"
    assert os.stat(source).st_ino == os.stat(str(tmp_path / "b")).st_ino, "a hard link on this file system"


# --------------------------------------------------------------------------------- checkpoints

def _state(epoch, step, pending=None):
    return {"epoch": epoch, "batch_in_epoch": 0, "global_step": step, "epoch_loss": [0.0, 0],
            "pending_eval": pending, "pending_row": None, "results": {"epoch": epoch},
            "run_files": {}}


def _write(folder, epoch, step, pending=None, keep=None):
    return checkpoint.save_checkpoint(str(folder), b"P%d" % step * 100, b"S%d" % step * 50,
                                      _state(epoch, step, pending), keep=keep)


def test_checkpoint_verify_names_what_is_wrong(tmp_path):
    path = _write(tmp_path, 1, 4)
    assert checkpoint.verify(path)[0]["global_step"] == 4
    stem = path[: -len(".json")]
    with open(stem + ".params", "r+b") as handle:
        handle.truncate(10)
    assert "truncated" in checkpoint.verify(path)[1]
    path = _write(tmp_path, 2, 8)
    with open(path[: -len(".json")] + ".states", "r+b") as handle:
        handle.write(b"X")
    assert "checksum" in checkpoint.verify(path)[1]
    os.remove(path[: -len(".json")] + ".states")
    assert "missing" in checkpoint.verify(path)[1]


def test_find_intact_takes_the_newest_good_one_and_says_why(tmp_path):
    _write(tmp_path, 1, 4)
    _write(tmp_path, 2, 8, pending="epoch")
    good = _write(tmp_path, 2, 8)
    broken = _write(tmp_path, 3, 12)
    with open(broken, "w") as handle:
        handle.write("{")
    path, meta, skipped = checkpoint.find_intact(str(tmp_path))
    assert path == good and meta["pending_eval"] is None, "after-evaluation beats before-evaluation"
    assert [name for name, _ in skipped] == [os.path.basename(broken)], skipped
    with pytest.raises(ValueError, match="no checkpoint"):
        checkpoint.find_intact(str(tmp_path / "empty"))


def test_prune_keeps_the_newest(tmp_path):
    for epoch in range(1, 5):
        _write(tmp_path, epoch, 4 * epoch, keep=2)
    kept = [meta["epoch"] for _, meta in checkpoint.list_checkpoints(str(tmp_path))]
    assert kept == [3, 4], kept
    assert len(os.listdir(str(tmp_path))) == 6, "three files per kept checkpoint, nothing else"


# ---------------------------------------------------------------------------------- interrupts

def test_a_signal_during_a_deferred_part_stops_after_it():
    interrupts = Interrupts().install()
    try:
        done = []
        with pytest.raises(RunInterrupted):
            with interrupts.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                done.append("the step finished")
        assert done == ["the step finished"], "the deferred part runs whole"
    finally:
        interrupts.uninstall()


def test_before_the_run_folder_opens_a_signal_stops_at_once_and_after_only_at_safe_points():
    interrupts = Interrupts().install()
    try:
        with pytest.raises(RunInterrupted):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
        interrupts.requested = None
        interrupts.defer_all()
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass  # no exception here: only at a safe point
        with pytest.raises(RunInterrupted):
            interrupts.check()
    finally:
        interrupts.uninstall()


# ------------------------------------------------------------------------------ resume flags

@pytest.fixture
def parser():
    import main

    return main.build_full_parser()


def _saved(parser, **flags):
    saved = dict(vars(parser.parse_args([])), data_dir="/data/demo", contexts=["cpu(0)"], history=[])
    saved.update(flags)
    return json.loads(json.dumps(saved))


def test_resume_args_take_the_saved_flags(parser):
    saved = _saved(parser, loss="triplet", lr=0.003, lr_decay_epochs=[5, 9])
    args, changed = run_folder.resume_args(
        parser, run_folder.given_flags(parser, ["--resume=auto", "--save_dir=RUN"]), saved)
    assert (args.loss, args.lr, args.lr_decay_epochs) == ("triplet", 0.003, [5, 9]) and changed == {}
    given = run_folder.given_flags(parser, ["--resume=auto", "--epochs=9", "--lr=0.003",
                                            "--data_dir=/data/../data/demo"])
    args, changed = run_folder.resume_args(parser, given, saved)
    assert args.epochs == 9 and changed == {"epochs": [5000, 9]}, "equal values are not changes"


@pytest.mark.parametrize("flag", ["--loss=hphn_triplet", "--optim=sgd", "--seed=1", "--n_inner_pts=0",
                                  "--lr_decay_epochs=5,10", "--data_dir=/elsewhere", "--ms_alpha=3"])
def test_resume_args_refuse_what_changes_training(parser, flag):
    saved = _saved(parser, loss="triplet", lr_decay_epochs=[5, 9])
    with pytest.raises(ValueError) as info:
        run_folder.resume_args(parser, run_folder.given_flags(parser, ["--resume=auto", flag]), saved)
    name = flag[2:].split("=")[0]
    assert "--%s" % name in str(info.value) and "args.json" in str(info.value), str(info.value)


@pytest.mark.parametrize("events_dir", ["", "tensorboard_log"])  # the run folder; where older runs kept them
def test_rewind_cuts_append_only_files_back(tmp_path, events_dir):
    folder = str(tmp_path)
    events = os.path.join(folder, events_dir)
    os.makedirs(events, exist_ok=True)
    open(os.path.join(events, "events.out.tfevents.1.h.8"), "w").write("kept")
    for name, text in (("train.log", "a\n"), ("summary.csv", "h\nr1\n")):
        open(os.path.join(folder, name), "w").write(text)
    sizes = run_folder.append_only_sizes(folder)
    assert os.path.join(events_dir, "events.out.tfevents.1.h.8") in sizes, "event files are append-only: %s" % sizes
    assert run_folder.tensorboard_dir(folder) == events.rstrip(os.sep), "the summary writes where the events are"
    open(os.path.join(folder, "train.log"), "a").write("after\n")
    open(os.path.join(folder, "summary.csv"), "a").write("r2\n")
    open(os.path.join(events, "events.out.tfevents.1.h.8"), "a").write(" and after")
    open(os.path.join(events, "events.out.tfevents.2.h.9"), "w").write("later")
    run_folder.rewind(folder, {"run_files": sizes, "results": {"epoch": 1}, "global_step": 4})
    assert open(os.path.join(folder, "summary.csv")).read() == "h\nr1\n"
    assert open(os.path.join(folder, "train.log")).read() == "a\n"
    assert open(os.path.join(folder, "replayed.log")).read() == "after\n", "cut log lines are kept"
    assert open(os.path.join(events, "events.out.tfevents.1.h.8")).read() == "kept", "events cut back"
    assert not os.path.exists(os.path.join(events, "events.out.tfevents.2.h.9")), "a later event file is set aside"
    assert json.load(open(os.path.join(folder, "results.json"))) == {"epoch": 1}


def test_serialized_parameters_load_back(tmp_path):
    net = _net()
    path = str(tmp_path / "p.params")
    storage.write_bytes(path, storage.serialize(net.save_parameters))
    other = _net()
    other.load_parameters(path)
    for (_, a), (_, b) in zip(sorted(net.collect_params().items()), sorted(other.collect_params().items())):
        assert np.array_equal(a.data().asnumpy(), b.data().asnumpy())


def test_only_a_run_that_never_checkpointed_is_started_again(tmp_path):
    folder = str(tmp_path)
    assert not run_folder.stopped_before_first_checkpoint(folder), "no args.json: no run at all"
    open(os.path.join(folder, "args.json"), "w").write("{}")
    assert run_folder.stopped_before_first_checkpoint(folder), "args.json alone: stopped before its first"
    open(os.path.join(folder, "checkpoint-e000000-s000000000.params"), "w").write("orphan")
    assert run_folder.stopped_before_first_checkpoint(folder), "a checkpoint exists once its JSON does"
    open(os.path.join(folder, "checkpoint-e000000-s000000000.json"), "w").write("{")
    assert not run_folder.stopped_before_first_checkpoint(folder), "a broken checkpoint is still one"
    os.remove(os.path.join(folder, "checkpoint-e000000-s000000000.json"))
    open(os.path.join(folder, "results.json"), "w").write("{}")
    assert not run_folder.stopped_before_first_checkpoint(folder), \
        "results.json follows a checkpoint: a run whose checkpoints were removed is not started again"


def test_restart_sets_the_attempt_aside_and_keeps_flags_and_log(tmp_path):
    folder = str(tmp_path)
    kept = {"args.json": "{}", "train.log": "attempt\n"}
    attempt = {"events.out.tfevents.1.h.8": "events", "summary.csv": "h\nr1\n", "model_last.params": "P",
               "checkpoint-e000001-s000000004.params": "orphan"}
    for name, text in dict(kept, **attempt).items():
        open(os.path.join(folder, name), "w").write(text)
    os.makedirs(os.path.join(folder, "previous-20250101-000000"))
    open(os.path.join(folder, "model_last.params.tmp"), "w").write("partial")
    aside = run_folder.restart(folder)
    assert sorted(os.listdir(aside)) == sorted(attempt), "the attempt's files move together: %r" % os.listdir(aside)
    assert all(open(os.path.join(aside, name)).read() == text for name, text in attempt.items()), "bytes kept"
    assert sorted(os.listdir(folder)) == sorted(list(kept) + [os.path.basename(aside), "model_last.params.tmp",
                                                              "previous-20250101-000000"]), os.listdir(folder)
    assert all(open(os.path.join(folder, name)).read() == text for name, text in kept.items()), \
        "args.json and train.log stay in place, unchanged"
