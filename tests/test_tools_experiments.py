"""``python3 -m tools.experiments commands|run|report`` end to end on a tiny table (2 rows x 2 seeds,
the val protocol, 1 epoch on tiny demo images): the commands carry the protocol's flags, every run
trains and records the val selection, a second ``run`` skips them, and the report's means are those
of the runs' results.json computed here."""
import csv
import hashlib
import json
import os
import subprocess
import sys

import pytest

from conftest import SUBPROCESS_TIMEOUT, subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_table(path, data_dir):
    table = {"name": "tiny", "units": "fraction", "metrics": ["R@1", "MAP@R"],
             "common_flags": {"data_name": "demo", "data_dir": data_dir, "gpu_idx": -1, "pretrained": "none",
                              "backbone": "resnet18_v1", "embed_dim": 8, "image_size": 32, "batch_size": 8,
                              "num_instances": 4, "num_workers": 0, "epochs": 1, "eval_epoch_term": 1,
                              "eval_at_start": False, "grid_queries": 0, "progress": False},
             "protocol": {"val_classes": 2},
             "rows": [{"name": "demo/ee", "pair": "demo", "synthesis": "ee", "flags": {"n_inner_pts": 2}},
                      {"name": "demo/none", "pair": "demo", "synthesis": "none", "flags": {"n_inner_pts": 0}}]}
    with open(path, "w") as handle:
        json.dump(table, handle)
    return path


def experiments(*argv):
    return subprocess.run([sys.executable, "-m", "tools.experiments"] + list(argv), cwd=ROOT, capture_output=True,
                          text=True, timeout=SUBPROCESS_TIMEOUT, env=subprocess_env())


def test_commands_run_and_report_of_a_tiny_val_table(demo_dir, tmp_path):
    table = tiny_table(str(tmp_path / "tiny.json"), demo_dir)
    out = str(tmp_path / "out")
    given = [table, "--seeds", "0,1", "--protocol", "val", "--out", out]
    proc = experiments("commands", *given)
    assert proc.returncode == 0, proc.stderr
    commands = proc.stdout.splitlines()
    assert len(commands) == 4 and all("--select_on=val" in c and "--val_classes=2" in c for c in commands), commands
    proc = experiments("run", *given, "--jobs", "2")  # two at a time
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count(" ended:\n  trained") == 4, proc.stdout
    assert "4 runs: 4 trained, 0 continued, 0 already done, 0 failed" in proc.stdout, proc.stdout
    best_r1 = {}
    for row in ("ee", "none"):
        for seed in (0, 1):
            results = json.load(open(os.path.join(out, "tiny", "demo", row, "val", "seed-%d" % seed, "results.json")))
            assert results["selected_on"] == "val" and results["split"]["val_classes"] == 2
            best_r1.setdefault("demo/" + row, []).append(results["best"]["R@1"])
    proc = experiments("run", *given)
    assert "0 trained, 0 continued, 4 already done" in proc.stdout, proc.stdout
    proc = experiments("report", *given)
    assert proc.returncode == 0, proc.stderr
    report = open(os.path.join(out, "tiny", "report.md")).read()
    manifest = hashlib.sha256(open(os.path.join(demo_dir, "split_manifest.json"), "rb").read()).hexdigest()
    assert "| demo/ee | val | val | 2 | %s |" % manifest[:12] in report, report
    lines = list(csv.DictReader(open(os.path.join(out, "tiny", "report.csv"))))
    for line in lines:
        if line["metric"] == "R@1":
            values = best_r1[line["row"]]
            assert line["selected_on"] == "val" and line["runs_done"] == "2"
            assert float(line["mean"]) == pytest.approx(sum(values) / 2, abs=1e-4), line
