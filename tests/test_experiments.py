"""experiments: tables as data, the runs of a protocol, the refusal of flags main.py would refuse, and
the report's statistics (against a mean, sd and t interval computed here)."""
import csv
import json
import math
import os

import numpy as np
import pytest

from experiments.plan import check_runs, parse_seeds, plan_runs
from experiments.report import gather, interval, markdown, write_csv
from experiments.table import load_table, parse_table, table_names

TINY = {"name": "tiny", "units": "percent", "metrics": ["R@1", "NMI"],
        "common_flags": {"data_name": "demo", "epochs": 2, "loss": "hphn_triplet", "num_instances": 4,
                         "batch_size": 8, "gpu_idx": -1},
        "protocol": {"val_classes": 2, "folds": 3},
        "rows": [{"name": "demo/ee", "pair": "demo", "synthesis": "ee", "flags": {"n_inner_pts": 2},
                  "paper_figures": {"R@1": 50.0}},
                 {"name": "demo/none", "pair": "demo", "synthesis": "none", "flags": {"n_inner_pts": 0}},
                 {"name": "demo/absent", "flags": None, "paper_figures": {"R@1": 60.0}}]}


def test_every_stored_table_loads_and_its_trainable_rows_pass_main_pys_checks():
    names = table_names()
    assert "demo" in names, names
    for name in names:
        table = load_table(name)
        runs = plan_runs(table, table.rows, [0], "release", "out")
        check_runs(runs)  # raises on a row main.py would refuse
        assert len(runs) == sum(row.trainable for row in table.rows), name


def test_rows_and_runs_of_each_protocol():
    table = parse_table(TINY)
    assert [r.name for r in table.select(["demo/none", "demo/ee"])] == ["demo/ee", "demo/none"], "table order"
    release = plan_runs(table, table.rows, [0, 1], "release", "out")
    assert [(r.row, r.seed) for r in release] == [("demo/ee", 0), ("demo/ee", 1), ("demo/none", 0), ("demo/none", 1)]
    assert release[0].save_dir == os.path.join("out", "tiny", "demo", "ee", "release", "seed-0")
    assert "--n_inner_pts=2" in release[0].argv and "--seed=0" in release[0].argv
    assert not any(a.startswith(("--select_on", "--val_classes", "--fold")) for a in release[0].argv), \
        "the release's protocol adds no flag"
    val = plan_runs(table, table.rows[:1], [0], "val", "out")
    assert "--select_on=val" in val[0].argv and "--val_classes=2" in val[0].argv
    kfold = plan_runs(table, table.rows[:1], [0], "kfold", "out")
    assert [r.fold for r in kfold] == [0, 1, 2] and "--folds=3" in kfold[2].argv and "--fold=2" in kfold[2].argv
    assert kfold[1].save_dir.endswith(os.path.join("kfold", "fold-1", "seed-0"))


def test_a_row_main_py_would_refuse_is_caught_before_anything_runs():
    bad = dict(TINY, rows=[{"name": "demo/odd", "flags": {"n_inner_pts": 2, "num_instances": 3, "batch_size": 9}}])
    with pytest.raises(ValueError) as info:
        check_runs(plan_runs(parse_table(bad), parse_table(bad).rows, [0], "release", "out"))
    assert "demo/odd" in str(info.value) and "--num_instances must be even" in str(info.value), str(info.value)
    unknown = dict(TINY, rows=[{"name": "demo/typo", "flags": {"epoch": 3}}])
    with pytest.raises(ValueError, match="unrecognized arguments: --epoch=3"):
        check_runs(plan_runs(parse_table(unknown), parse_table(unknown).rows, [0], "release", "out"))


@pytest.mark.parametrize("text, seeds", [("0", [0]), ("0,1,2", [0, 1, 2]), ("0-3", [0, 1, 2, 3]), ("0-1,5", [0, 1, 5])])
def test_seeds(text, seeds):
    assert parse_seeds(text) == seeds


def test_bad_tables_and_seeds_are_one_line():
    with pytest.raises(ValueError, match="names rows more than once: a"):
        parse_table(dict(TINY, rows=[{"name": "a"}, {"name": "a"}]))
    with pytest.raises(ValueError, match="no experiment table 'nope'"):
        load_table("nope")
    with pytest.raises(ValueError, match="--seeds takes"):
        parse_seeds("2-1")
    with pytest.raises(ValueError, match="has no row 'x'"):
        parse_table(TINY).select(["x"])


def fake_run(save_dir, r1, nmi, epochs=2, finished=True, selected_on=None, manifest="ab" * 32):
    os.makedirs(save_dir)
    json.dump({"epochs": epochs, "split_manifest_sha256": manifest}, open(os.path.join(save_dir, "args.json"), "w"))
    results = {"epoch": epochs if finished else 1, "initial": None, "last": {"R@1": r1, "NMI": nmi, "epoch": 2},
               "best": {"R@1": r1, "NMI": nmi, "epoch": 2, "non_finite": 0}}
    if selected_on:
        results["selected_on"] = selected_on
    json.dump(results, open(os.path.join(save_dir, "results.json"), "w"))


def test_the_report_gives_mean_sd_and_a_t_interval_and_says_what_is_missing(tmp_path):
    table = parse_table(TINY)
    runs = plan_runs(table, table.rows, [0, 1, 2], "release", str(tmp_path))
    values = [0.5, 0.6, 0.7]
    for run, r1 in zip(runs[:3], values):
        fake_run(run.save_dir, r1, 0.3, manifest=("ab" if r1 < 0.7 else "cd") * 32)
    fake_run(runs[3].save_dir, 0.4, 0.2, finished=False)  # demo/none seed 0: stopped
    lines = gather(runs)
    ee, none = lines
    mean, sd, low, high = interval([v * 100 for v in ee.values["R@1"]])
    sample = np.array(values) * 100
    want_sd = math.sqrt(((sample - sample.mean()) ** 2).sum() / 2)
    assert mean == pytest.approx(60.0) and sd == pytest.approx(want_sd), (mean, sd)
    assert high - mean == pytest.approx(4.302652729911275 * want_sd / math.sqrt(3)), "t(0.975, 2) interval"
    assert ee.runs == 3 and none.runs == 0 and none.status == {"partial": 1, "new": 2}
    text = markdown(table, lines)
    assert "| demo/ee | paper (its table) | - | - | - | 50.0 | - |" in text, text
    assert "| 3 | %s, %s |" % ("ab" * 6, "cd" * 6) in text, "the split manifests of the runs: %s" % text
    assert "60.00 ± 10.00" in text and "test (test-selected)" in text, text
    assert "0 of 3 done, 1 running or stopped, 2 not started" in text, text
    assert "demo/absent | - | - | not trainable here" in text, text
    write_csv(str(tmp_path / "r.csv"), table, lines)
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    r1 = [r for r in rows if r["row"] == "demo/ee" and r["metric"] == "R@1"][0]
    assert r1["runs_done"] == "3" and float(r1["mean"]) == pytest.approx(60.0) and r1["paper"] == "50.0", r1
    assert r1["split_manifest_sha256"] == "ab" * 32 + "+" + "cd" * 32, r1


def test_kfold_separated_and_concatenated(tmp_path):
    table = parse_table(TINY)
    runs = plan_runs(table, table.rows[:1], [0], "kfold", str(tmp_path))
    for run, r1 in zip(runs, (0.5, 0.6, 0.7)):
        fake_run(run.save_dir, r1, 0.3, selected_on="val")
    joined = []
    lines = gather(runs, concatenate=lambda dirs: joined.append(sorted(dirs)) or {"R@1": 0.9, "NMI": 0.4})
    kinds = {line.kind: line for line in lines}
    assert kinds["separated"].values["R@1"] == [0.5, 0.6, 0.7] and kinds["separated"].selected_on == {"val"}
    assert kinds["concatenated"].values["R@1"] == [0.9], "one concatenated evaluation per seed"
    assert joined == [sorted(run.save_dir for run in runs)], "the three folds of seed 0 are joined"


def test_concatenated_joins_unit_embeddings_image_by_image_and_keeps_the_result(tmp_path):
    from experiments.concatenated import concatenated_metrics, join_embeddings
    from utils.metrics import evaluate_embeddings

    rng = np.random.RandomState(0)
    labels = np.repeat(np.arange(5), 4)
    parts = [rng.randn(20, 3).astype(np.float32) * (i + 1) for i in range(3)]
    joined = join_embeddings(parts)
    unit = [p / np.linalg.norm(p, axis=1, keepdims=True) for p in parts]
    want = np.concatenate(unit, axis=1) / math.sqrt(3)  # each part has norm 1, so the whole sqrt(3)
    assert np.allclose(joined, want, atol=1e-6), "each fold's unit rows, joined, normalised again"
    dirs = []
    for fold in range(3):
        save_dir = tmp_path / "kfold" / ("fold-%d" % fold) / "seed-0"
        save_dir.mkdir(parents=True)
        (save_dir / "model_best.params").write_bytes(b"fold %d" % fold)
        json.dump({"recallk": [1, 2], "eval_metrics": ["recall"]}, open(save_dir / "args.json", "w"))
        dirs.append(str(save_dir))
    calls = []

    def embed(checkpoint):
        calls.append(checkpoint)
        return parts[int(os.path.basename(os.path.dirname(os.path.dirname(checkpoint)))[-1])], labels

    got = concatenated_metrics(dirs, embed=embed)
    assert got == evaluate_embeddings(want, labels, [1, 2], metrics=["recall"]), got
    assert len(calls) == 3 and os.path.isfile(tmp_path / "kfold" / "concatenated-seed-0.json")
    assert concatenated_metrics(dirs, embed=embed) == got and len(calls) == 3, "kept, not embedded again"


def test_each_dataset_has_its_own_columns_and_the_papers_reference_rows_are_shown():
    table = load_table("ee_cvpr2020")
    text = markdown(table, [])
    sop = text[text.index("## sop"):]
    assert "| row | protocol | selected on | runs | split manifest | NMI | F1 | R@1 | R@10 | R@100 |" in sop, sop[:300]
    assert "reference: another method" in text, "DAML / HDML rows are printed beside the paper's own"
    assert table.metrics_of("cars196") == ["NMI", "F1", "R@1", "R@2", "R@4", "R@8"]
