"""tools.demo_range: the ranges of demo runs over seeds and CPU kernels."""
import json

import pytest

from tools import demo_range


def write_run(folder, name, initial, last, best, epoch=180, epochs=180, log=("10:00:00 a", "10:02:30 b")):
    run = folder / name
    run.mkdir()
    (run / "args.json").write_text(json.dumps({"epochs": epochs}))
    (run / "results.json").write_text(json.dumps({
        "initial": {"R@1": initial, "epoch": 0}, "last": {"R@1": last, "epoch": epoch},
        "best": {"R@1": best, "epoch": epoch}}))
    (run / "train.log").write_text("\n".join(log) + "\n")


def test_ranges_per_kernels_and_threads(tmp_path, capsys):
    write_run(tmp_path, "avx512-t1-s0", 0.1135, 0.60, 0.61)
    write_run(tmp_path, "avx512-t1-s1", 0.1135, 0.30, 0.35, log=("23:59:00 a", "no stamp", "00:01:00 b"))
    write_run(tmp_path, "avx512-t1-s2", 0.1135, 0.45, 0.50)
    write_run(tmp_path, "avx2-t1-s0", 0.1136, 0.42, 0.44)
    write_run(tmp_path, "avx2-t1-s1", 0.1136, 0.9, 0.9, epoch=45)   # still training: left out
    (tmp_path / "notes").mkdir()                                     # not a run: ignored
    assert demo_range.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    avx512 = out[out.index("avx512 kernels, 1 thread, seeds 0 1 2"):]
    assert "last epoch       0.300 / 0.450 / 0.600  (each: 0.600 0.300 0.450)" in avx512, out
    assert "best             0.350 / 0.500 / 0.610" in avx512, out
    assert "before training  0.1135 / 0.1135 / 0.1135" in avx512, out
    # 150 s, 120 s across midnight, 150 s
    assert "time (s)         120 / 150 / 150" in avx512, out
    assert "avx2 kernels, 1 thread, seeds 0\n" in out, out


def test_a_folder_without_finished_runs_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        demo_range.main([str(tmp_path)])
    assert stop.value.code == 2, "no run is a usage error"
    assert "no finished run under" in capsys.readouterr().err
