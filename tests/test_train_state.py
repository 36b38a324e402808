"""train.state.TrainingState: a fresh run's position, a checkpoint's read back, and the JSON it writes."""
import argparse
import json

import pytest

from train.state import CHECKPOINT_KEYS, TrainingState
from utils.run import checkpoint

# A checkpoint's run state as runs before the dataclass wrote it (float32: no loss scaler).
OLD_META = {"epoch": 3, "batch_in_epoch": 0, "global_step": 18, "epoch_loss": [0.0, 0],
            "pending_eval": None, "pending_row": None, "run_files": {"summary.csv": 120, "train.log": 900},
            "results": {"epoch": 3, "initial": {"R@1": 0.1, "epoch": 0, "non_finite": 0},
                        "best": {"R@1": 0.2, "epoch": 3, "non_finite": 0},
                        "last": {"R@1": 0.2, "epoch": 3, "non_finite": 0}}}


def _args(**flags):
    return argparse.Namespace(**dict({"start_epoch": 0, "eval_at_start": True, "epochs": 6}, **flags))


def test_a_fresh_state_starts_at_start_epoch():
    state = TrainingState.fresh(_args(start_epoch=2), iters_per_epoch=5)
    assert (state.epoch, state.batch_in_epoch, state.global_step) == (2, 0, 10), "start of epoch 2: %r" % state
    assert state.pending_eval == "initial" and state.epoch_loss == [0.0, 0], "evaluated first: %r" % state
    assert state.results == {"epoch": 2, "initial": None, "best": None, "last": None}, state.results
    assert TrainingState.fresh(_args(eval_at_start=False), 5).pending_eval is None, "no evaluation at start"


def test_an_old_checkpoint_reads_back_to_the_same_json():
    state = TrainingState.from_checkpoint(json.loads(json.dumps(OLD_META)), _args())
    assert state.loss_scaler is None, "a checkpoint without a loss scaler has none"
    assert state.to_json() == OLD_META, "the JSON a checkpoint holds is written back unchanged"
    assert sorted(state.to_json()) == sorted(CHECKPOINT_KEYS), "exactly the checkpoint's keys"


def test_a_float16_checkpoint_keeps_its_loss_scaler():
    scaler = {"_loss_scale": 256.0, "_next_loss_scale": 256.0, "_unskipped": 3}
    state = TrainingState.from_checkpoint(dict(OLD_META, loss_scaler=scaler), _args())
    assert state.loss_scaler == scaler and state.to_json()["loss_scaler"] == scaler, "scaler kept"


def test_the_checkpoint_of_a_state_is_named_and_written_from_its_json(tmp_path):
    state = TrainingState.from_checkpoint(OLD_META, _args())
    state.pending_eval = "epoch"
    path = checkpoint.save_checkpoint(str(tmp_path), b"params", b"states", state.to_json())
    assert path.endswith("checkpoint-e000003-s000000018-pre-eval.json"), path
    meta, reason = checkpoint.verify(path)
    assert reason is None and TrainingState.from_checkpoint(meta, _args()) == state, "read back: %s" % reason


def test_more_epochs_than_asked_is_one_line():
    with pytest.raises(ValueError) as error:
        TrainingState.from_checkpoint(OLD_META, _args(epochs=2))
    assert str(error.value) == ("--epochs=2: the run has already trained 3 epochs; give --epochs=3 or more"), \
        str(error.value)
