"""tools.compare_dtypes: the float32/bfloat16 table of demo runs over seeds."""
import json

import numpy as np

from tools import compare_dtypes


def write_run(folder, name, r1, epoch=180, epochs=180):
    run = folder / name
    run.mkdir()
    (run / "args.json").write_text(json.dumps({"epochs": epochs}))
    (run / "results.json").write_text(json.dumps({"last": {"R@1": r1, "epoch": epoch}}))


def test_table_over_the_seeds_run_in_both_dtypes(tmp_path, capsys):
    f32, bf16 = [0.40, 0.50, 0.30], [0.35, 0.52, 0.20]
    for seed, (a, b) in enumerate(zip(f32, bf16)):
        write_run(tmp_path, "scratch-float32-s%d" % seed, a)
        write_run(tmp_path, "scratch-bfloat16-s%d" % seed, b)
    write_run(tmp_path, "scratch-float32-s7", 0.9)                 # no bfloat16 twin: left out
    write_run(tmp_path, "scratch-bfloat16-s8", 0.1, epoch=45)      # still training: left out
    write_run(tmp_path, "scratch-float32-s8", 0.1)
    (tmp_path / "notes").mkdir()                                   # not a run: ignored
    assert compare_dtypes.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "seeds 0 1 2\n" in out, out
    difference = np.mean(bf16) - np.mean(f32)
    error = np.sqrt(np.var(f32, ddof=1) / 3 + np.var(bf16, ddof=1) / 3)
    assert "bfloat16 - float32: %+.3f (standard error %.3f); bfloat16 higher in 1 of 3 seeds" % (
        difference, error) in out, out
    assert "mean %.3f sd %.3f" % (np.mean(f32), np.std(f32, ddof=1)) in out, out
