"""What TensorBoard itself reads from a run: the run listed by its folder's name under --logdir, the
run's flags as text and hparams (once), a described retrieval grid per evaluation, loss points at
global steps, and the metric tags' descriptions. Read with TensorBoard's own readers."""
import json
import os
import subprocess
import sys

import pytest

from conftest import SUBPROCESS_TIMEOUT, subprocess_env
from data.demo import generate_demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A 4-epoch run in RESULTS/run-a: 4 train classes x 4 images = 2 iterations of 8 per epoch,
    so 8 steps; --summary_step=3 logs the loss at steps 3 and 6 (not 1, 3, 5, 7 as a count that
    restarts every epoch would)."""
    data_dir = generate_demo(str(tmp_path_factory.mktemp("demo") / "d"), classes=8, per_class=8, size=40,
                             seed=0)
    root = tmp_path_factory.mktemp("results")
    argv = [sys.executable, "main.py", "--data_name=demo", "--data_dir=%s" % data_dir, "--gpu_idx=-1",
            "--pretrained=none", "--image_size=32", "--embed_dim=16", "--batch_size=8", "--num_instances=4",
            "--num_workers=0", "--epochs=4", "--eval_epoch_term=1", "--summary_step=3", "--grid_queries=3",
            "--lr_decay_epochs=2", "--lr=0.001", "--progress=False", "--save_dir=%s" % (root / "run-a")]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          env=subprocess_env())
    assert proc.returncode == 0, "main.py failed: %s" % proc.stderr[-3000:]
    return str(root)


def _run(results):
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    multiplexer = EventMultiplexer(size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    multiplexer.AddRunsFromDirectory(results)
    multiplexer.Reload()
    return multiplexer


def test_the_run_is_listed_by_its_folder_name(results):
    runs = _run(results).Runs()
    assert sorted(runs) == ["run-a"], "tensorboard --logdir=results lists the run as its folder: %s" % sorted(runs)


def test_flags_as_text_and_hparams_once(results):
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    from tensorboard.plugins.text import metadata as text_metadata

    multiplexer = _run(results)
    texts = multiplexer.PluginRunToTagToContent(text_metadata.PLUGIN_NAME)
    assert list(texts.get("run-a", {})) == ["args"], "one text tag, args: %s" % texts
    events = multiplexer.Tensors("run-a", "args")
    assert len(events) == 1 and events[0].step == 0, "the flags are written once, at step 0"
    table = events[0].tensor_proto.string_val[0].decode("utf-8")
    saved = json.load(open(os.path.join(results, "run-a", "args.json")))
    assert "| n_inner_pts | 2 |" in table and "| lr_decay_epochs | 2 |" in table, table
    assert table.count("\n| ") == len(saved) - 1 + 1, "a row per flag of args.json (and the header)"
    assert "main.py" in table.splitlines()[0], "the command that started the run comes first"

    hparams = multiplexer.PluginRunToTagToContent(hparams_metadata.PLUGIN_NAME)["run-a"]
    assert list(hparams) == [hparams_metadata.SESSION_START_INFO_TAG], \
        "a session start only (TensorBoard gathers the experiment from the runs): %s" % list(hparams)
    start = hparams_metadata.parse_session_start_info_plugin_data(hparams[hparams_metadata.SESSION_START_INFO_TAG])
    values = {name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
              for name, value in start.hparams.items()}
    assert values["loss"] == saved["loss"] and values["n_inner_pts"] == 2.0 and values["lr"] == 0.001, values
    assert values["ee_l2norm"] is True and values["lr_decay_epochs"] == "2" and values["batch_size"] == 8, values
    assert "summary_step" not in values and "save_dir" not in values, "only what is trained: %s" % sorted(values)


def test_a_described_grid_per_evaluation_and_global_loss_steps(results):
    from tensorboard.plugins.image import metadata as image_metadata

    multiplexer = _run(results)
    grids = multiplexer.Tensors("run-a", "retrieval/test")
    assert [event.step for event in grids] == [0, 2, 4, 6, 8], \
        "a grid at every evaluation, the untrained one at step 0: %s" % [event.step for event in grids]
    described = multiplexer.SummaryMetadata("run-a", "retrieval/test")
    assert described.plugin_data.plugin_name == image_metadata.PLUGIN_NAME
    assert "green" in described.summary_description and "query" in described.summary_description, \
        "the grid's tag says how to read it: %r" % described.summary_description

    loss_steps = [event.step for event in multiplexer.Tensors("run-a", "loss")]
    assert loss_steps == [3, 6], "--summary_step=3 counts global steps: %s" % loss_steps
    assert [event.step for event in multiplexer.Tensors("run-a", "loss_epoch")] == [1, 2, 3, 4]

    best = multiplexer.SummaryMetadata("run-a", "metric/R1/best").summary_description
    assert "after training" in best and "step 0" in best, "metric/R1/best says where it starts: %r" % best
    r1 = multiplexer.SummaryMetadata("run-a", "metric/R1").summary_description
    assert "untrained" in r1 and "smoothing 0" in r1, r1
