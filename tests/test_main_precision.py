"""main.py --dtype: a bfloat16 run stopped and resumed ends bit-identical to one never stopped (the
pattern of test_main_resume, smaller); the dtype of a run cannot change on resume; a dtype the
devices cannot run is refused before anything is written (on every CPU: the flags of a CPU without
BF16 are written and passed in EE_GLUON_CPUINFO)."""
import json
import os
import signal

import pytest

from conftest import needs_bf16, write_cpuinfo
from test_main_resume import assert_same_run, resume_argv, run, train_argv


@pytest.fixture(scope="module")
def straight_bf16(demo_dir, tmp_path_factory):
    save_dir = str(tmp_path_factory.mktemp("straight") / "run")
    proc = run(train_argv(demo_dir, save_dir, "--dtype=bfloat16", "--export=True"))
    assert proc.returncode == 0, "uninterrupted bfloat16 run failed: %s" % proc.stderr[-2000:]
    return save_dir


@needs_bf16
def test_bfloat16_run_exports_a_float32_graph(straight_bf16):
    text = open(os.path.join(straight_bf16, "export", "model-symbol.json")).read()
    assert '"FullyConnected"' in text, "the export must hold the network"
    assert "amp_cast" not in text, "the exported graph must be float32, without AMP's casts"


@needs_bf16
@pytest.mark.parametrize("point", ["step=7", "eval=2"])
def test_bfloat16_run_resumes_bit_identical(demo_dir, straight_bf16, tmp_path, point):
    save_dir = str(tmp_path / "run")
    proc = run(train_argv(demo_dir, save_dir, "--dtype=bfloat16"), fault="SIGKILL@" + point)
    assert proc.returncode == -signal.SIGKILL, "should die by SIGKILL: %s" % proc.stderr[-2000:]
    proc = run(resume_argv(save_dir))
    assert proc.returncode == 0, "resume failed: %s" % proc.stderr[-2000:]
    assert json.load(open(os.path.join(save_dir, "args.json")))["dtype"] == "bfloat16", \
        "args.json records the dtype"
    assert_same_run(save_dir, straight_bf16)


@needs_bf16
def test_dtype_cannot_change_on_resume(straight_bf16):
    before = sorted(os.listdir(straight_bf16))
    proc = run(resume_argv(straight_bf16, "--dtype=float32", "--epochs=5"))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, "one-line refusal, exit 2: %s" % proc.stderr[-2000:]
    assert "--dtype=float32" in lines[0] and "bfloat16" in lines[0], lines[0]
    assert sorted(os.listdir(straight_bf16)) == before, "a refused resume writes nothing"


def test_float16_on_the_cpu_is_refused_before_anything_is_written(demo_dir, tmp_path):
    save_dir = str(tmp_path / "run")
    proc = run(train_argv(demo_dir, save_dir, "--dtype=float16"))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, "one-line refusal, exit 2: %s" % proc.stderr[-2000:]
    assert "--dtype=float16" in lines[0] and "--gpu_idx" in lines[0], lines[0]
    assert "Traceback" not in proc.stderr, "no traceback"
    assert not os.path.exists(save_dir), "nothing is written before the inputs are checked"


def test_bfloat16_on_a_cpu_without_bf16_is_refused_before_anything_is_written(demo_dir, tmp_path):
    cpuinfo = write_cpuinfo(tmp_path, [])
    save_dir = str(tmp_path / "run")
    proc = run(train_argv(demo_dir, save_dir, "--dtype=bfloat16"), EE_GLUON_CPUINFO=cpuinfo)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, "one-line refusal, exit 2: %s" % proc.stderr[-2000:]
    assert "--dtype=bfloat16 needs a CPU with BF16 instructions" in lines[0] and cpuinfo in lines[0] \
        and "--dtype=float32" in lines[0], "the refusal names the flags' file and the fix: %s" % lines[0]
    assert not os.path.exists(save_dir), "nothing is written before the inputs are checked"
