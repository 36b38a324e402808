"""tools.plot_runs: curves of several runs from their summary.csv and results.json."""
import json
import os
import subprocess
import sys

from PIL import Image

from conftest import SUBPROCESS_TIMEOUT, subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = "epoch,step,loss,lr,R@1,R@2,MAP@R\n"


def fake_run(folder, initial, values):
    """A run folder as main.py leaves it: metrics every second epoch, the untrained value in results.json."""
    os.makedirs(folder)
    rows = [HEADER]
    for epoch in range(1, 2 * len(values) + 1):
        value = values[epoch // 2 - 1] if epoch % 2 == 0 else None
        rows.append("%d,%d,0.5,0.001,%s,,\n" % (epoch, 6 * epoch, "" if value is None else value))
    open(os.path.join(folder, "summary.csv"), "w").write("".join(rows))
    json.dump({"initial": {"R@1": initial, "epoch": 0}}, open(os.path.join(folder, "results.json"), "w"))
    return folder


def run(*argv):
    return subprocess.run([sys.executable, "-m", "tools.plot_runs"] + list(argv), cwd=ROOT,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, env=subprocess_env())


def test_two_runs_drawn_with_their_numbers(tmp_path):
    a = fake_run(str(tmp_path / "inner-2"), 0.1, [0.3, 0.6, 0.5])
    b = fake_run(str(tmp_path / "inner-0"), 0.1, [0.2, 0.25, 0.4])
    out = str(tmp_path / "pics" / "curves.png")
    proc = run(a, b, "--metric", "R@1", "-o", out)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "inner-2" in lines[0] and "first 0.100  best 0.600  last 0.500" in lines[0], proc.stdout
    assert "inner-0" in lines[1] and "first 0.100  best 0.400  last 0.400" in lines[1], proc.stdout
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.size == (640, 400), (picture.format, picture.size)
        colours = picture.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours and len(colours) > 10, "the picture has curves, not a blank canvas"


def test_unknown_metric_and_folder_are_one_line_errors(tmp_path):
    a = fake_run(str(tmp_path / "run"), 0.1, [0.3])
    proc = run(a, "--metric", "R@100", "-o", str(tmp_path / "x.png"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "no column 'R@100'" in proc.stderr and "R@1, R@2, MAP@R" in proc.stderr, proc.stderr
    proc = run(str(tmp_path), "-o", str(tmp_path / "x.png"))
    assert proc.returncode == 2 and "not a run folder" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not os.path.exists(str(tmp_path / "x.png")), "nothing is written on an error"
