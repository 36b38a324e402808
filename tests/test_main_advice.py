"""Every message of main.py that names a way forward leads somewhere.

Each such message is provoked in a tiny run on the demo data; the commands it advises are read
from it (spelled out as ``python3 main.py ...``, or built from the flag it names, e.g. "pass
--overwrite=True" adds that flag to the refused command) and run from the folder as the message
left it; each must succeed (exit 0). A source scan keeps the list whole: every message literal of
the run's modules that advises a flag or a command must be provoked by one of the cases here.
"""
import ast
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "main.py")
SOURCES = ["main.py", "utils/run/folder.py", "utils/run/checkpoint.py", "train/loop.py", "train/state.py",
           "train/setup.py", "train/parts.py", "train/step.py", "utils/run/storage.py"]
ADVISING = re.compile(r"--resume|--overwrite|--save_dir|--nan_policy|--lr|--epochs|pass --|give --|"
                      r"leave --|run again")
LOWER_RATE = "1e-4"  # what the test gives for a learning rate the message asks to lower (LR)


def env(fault=None):
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    environment.pop("EE_GLUON_FAULT", None)
    if fault:
        environment["EE_GLUON_FAULT"] = fault
    return environment


def main(argv, cwd, fault=None):
    # Run from a scratch folder: a command without --save_dir may only write there.
    return subprocess.run([sys.executable, MAIN] + list(argv), cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env(fault))


def flag_name(arg):
    return arg[2:].split("=", 1)[0]


def without(argv, *names):
    return [arg for arg in argv if flag_name(arg) not in names]


def replaced(argv, name, value):
    return without(argv, name) + ["--%s=%s" % (name, value)]


class Case:
    """One provoked message: the run's training command, the command that was refused, and what
    each piece of advice turns into."""

    def __init__(self, tmp_path, data_dir):
        self.tmp_path, self.data_dir = tmp_path, data_dir
        self.save_dir = str(tmp_path / "run")
        self.given = None  # the command that produced the message
        self.before_following = lambda: None  # what the message asks to fix first (an image)

    def train(self, *extra, save_dir=None):
        # 8 train classes x 4 instances: 4 iterations of 8 images per epoch, evaluated every epoch.
        return ["--data_name=demo", "--data_dir=" + self.data_dir, "--gpu_idx=-1", "--pretrained=none",
                "--image_size=32", "--embed_dim=8", "--batch_size=8", "--num_instances=4",
                "--num_workers=0", "--epochs=2", "--eval_epoch_term=1", "--eval_metrics=recall",
                "--progress=False", "--save_dir=" + (save_dir or self.save_dir)] + list(extra)

    def resume(self, *extra):
        return ["--save_dir=" + self.save_dir, "--resume=auto"] + list(extra)

    def new_run(self):
        """The training command with the refused command's own flags (those not of the folder)."""
        return self.train(*without(self.given, "save_dir", "resume", "overwrite"))


def spelled(match, case):
    """A command the message spells out; LR (a learning rate to lower) becomes LOWER_RATE."""
    return [arg[: -len("LR")] + LOWER_RATE if arg.endswith("=LR") else arg
            for arg in shlex.split(match.group(1))]


# (what the message says, the command it means). Commands are flags after ``python3 main.py``.
ADVICE = [
    (r"python3 main\.py ([^,;()]+)", spelled),
    (r"pass --resume=auto to continue it", lambda m, c: replaced(c.given, "resume", "auto")),
    (r"resume with --resume=auto", lambda m, c: replaced(c.given, "resume", "auto")),
    (r"--overwrite=True to start over", lambda m, c: c.given + ["--overwrite=True"]),
    (r"its command and --overwrite=True instead of --resume|without --resume and with --overwrite=True",
     lambda m, c: c.new_run() + ["--overwrite=True"]),
    (r"without --resume(?! and)", lambda m, c: c.new_run()),
    (r"another --save_dir|choose a writable --save_dir",
     lambda m, c: replaced(c.new_run(), "save_dir", str(c.tmp_path / "elsewhere"))),
    (r"leave --(\w+) out", lambda m, c: without(c.given, m.group(1))),
    (r"give --(epochs)=(\d+) or more", lambda m, c: replaced(c.given, m.group(1), m.group(2))),
    (r"give one of the two", lambda m, c: without(c.given, "save_dir")),
    (r"not auto, a run folder or a checkpoint file", lambda m, c: replaced(c.given, "resume", "auto")),
    (r"then run again", lambda m, c: c.given),
    (r"or with --nan_policy=skip_batch", lambda m, c: c.resume("--nan_policy=skip_batch")),
]


def advised_commands(line, case):
    commands = []
    for pattern, command in ADVICE:
        for match in re.finditer(pattern, line):
            argv = command(match, case)
            if argv not in commands:
                commands.append(argv)
    return commands


def one_line(proc, code):
    # libpng reports a broken PNG on stderr itself, from C, before OpenCV returns; that is not ours.
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("libpng")]
    assert proc.returncode == code, "expected exit %d, got %d: %s" % (code, proc.returncode, proc.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith(("error: ", "interrupted by ")), \
        "one line, no traceback: %r" % proc.stderr[-3000:]
    return lines[0]


# ------------------------------------------------------------------------------------- cases
# Each provokes its message and returns (command, fault, expected exit code, what the line says).


def copy_finished(case, finished):
    shutil.copytree(finished, case.save_dir)


def checkpoints(save_dir):
    return sorted(glob.glob(os.path.join(save_dir, "checkpoint-*.json")))


def new_run_over_a_run(case, finished):
    copy_finished(case, finished)
    return case.train(), None, 2, "already holds a run"


def new_run_over_a_run_that_stopped_before_its_first_checkpoint(case, finished):
    proc = main(case.train(), case.tmp_path, fault="ENOSPC@write=checkpoint-e000000")
    assert proc.returncode == 2 and not checkpoints(case.save_dir), proc.stderr[-3000:]
    return case.train(), None, 2, "already holds a run"


def disk_full_at_the_first_checkpoint(case, finished):
    return case.train(), "ENOSPC@write=checkpoint-e000000", 2, "checkpoint-e000000"


def disk_full_mid_run(case, finished):
    return case.train(), "ENOSPC@write=checkpoint-e000001", 2, "checkpoint-e000001"


def disk_full_at_args_json(case, finished):
    return case.train(), "ENOSPC@write=args.json", 2, "args.json"


def disk_full_at_the_list_of_skipped_images(case, finished):
    broken = str(case.tmp_path / "data")
    shutil.copytree(case.data_dir, broken)
    with open(os.path.join(broken, "images", "003", "0002.jpg"), "w") as handle:
        handle.write("not a jpeg")
    case.data_dir = broken
    return case.train("--skip_bad_images=True"), "ENOSPC@write=skipped_images", 2, "skipped_images.txt"


def save_dir_cannot_be_made(case, finished):
    open(str(case.tmp_path / "a-file"), "w").close()
    case.save_dir = str(case.tmp_path / "a-file" / "run")
    return case.train(), None, 2, "a-file"


def interrupted(case, finished):
    return case.train(), "SIGTERM@step=3", 130, "interrupted by SIGTERM"


def image_failing_mid_run(case, finished):
    import cv2
    import numpy as np

    broken = str(case.tmp_path / "data")
    shutil.copytree(case.data_dir, broken)
    # A PNG whose header reads (the start-up check passes) and whose pixel data is cut off.
    bad = os.path.join(broken, "images", "001", "0001.jpg")
    original = open(bad, "rb").read()
    ok, png = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    with open(bad, "wb") as handle:
        handle.write(png.tobytes()[: len(png) // 2])

    def replace_that_file():
        with open(bad, "wb") as handle:
            handle.write(original)

    case.data_dir, case.before_following = broken, replace_that_file
    return case.train(), None, 2, bad


def non_finite_loss(case, finished):
    # Global step 6 is the second of epoch 2.
    return case.train(), "nan@step=6", 1, "the loss became nan at epoch 2"


def all_test_embeddings_non_finite(case, finished):
    # The last update of epoch 1 (iteration 3) at 1e20 breaks the parameters; its loss was finite.
    return (case.train("--lr_schedule=step", "--lr_fix_after_iters=3", "--lr_fixed=1e20"), None, 1,
            "the test embeddings after epoch 1 are all non-finite")


def resume_changing_a_training_flag(case, finished):
    copy_finished(case, finished)
    return case.resume("--seed=5", "--epochs=3"), None, 2, "--seed=5 differs"


def resume_of_a_checkpoint_of_another_run(case, finished):
    copy_finished(case, finished)
    return ["--save_dir=" + str(case.tmp_path / "other"), "--resume=" + case.save_dir], None, 2, "belongs to"


def resume_of_no_known_kind(case, finished):
    copy_finished(case, finished)
    return case.resume("--resume=newest"), None, 2, "not auto"


def resume_of_a_broken_checkpoint(case, finished):
    copy_finished(case, finished)
    newest = checkpoints(case.save_dir)[-1][: -len(".json")]
    with open(newest + ".params", "r+b") as handle:
        handle.truncate(100)
    return ["--resume=" + newest + ".params"], None, 2, "truncated"


def resume_without_an_intact_checkpoint(case, finished):
    copy_finished(case, finished)
    for path in checkpoints(case.save_dir):
        with open(path[: -len(".json")] + ".states", "r+b") as handle:
            handle.truncate(100)
    return case.resume(), None, 2, "no intact checkpoint"


def resume_of_a_trained_run_whose_checkpoints_were_removed(case, finished):
    copy_finished(case, finished)
    for path in glob.glob(os.path.join(case.save_dir, "checkpoint-*")):
        os.remove(path)
    return case.resume(), None, 2, "no checkpoint in"


def resume_of_run_files_without_args_json(case, finished):
    copy_finished(case, finished)
    os.remove(os.path.join(case.save_dir, "args.json"))
    return case.resume(), None, 2, "has no args.json"


def new_run_over_run_files_without_args_json(case, finished):
    copy_finished(case, finished)
    os.remove(os.path.join(case.save_dir, "args.json"))
    return case.train(), None, 2, "holds files of a run but no args.json"


def resume_of_an_empty_folder(case, finished):
    return case.resume(), None, 2, "holds no run to continue"


def resume_with_fewer_epochs(case, finished):
    copy_finished(case, finished)
    return case.resume("--epochs=1"), None, 2, "already trained 2 epochs"


# (case, fragments of the source's message literals it provokes)
CASES = [
    (new_run_over_a_run, ["already holds a run; pass --resume=auto"]),
    (new_run_over_a_run_that_stopped_before_its_first_checkpoint, ["already holds a run; pass --resume=auto"]),
    (disk_full_at_the_first_checkpoint, ["then resume with --resume=auto"]),
    (disk_full_mid_run, ["then resume with --resume=auto"]),
    (disk_full_at_args_json, ["then run again"]),
    (disk_full_at_the_list_of_skipped_images, ["then resume with --resume=auto"]),
    (save_dir_cannot_be_made, ["choose a writable --save_dir"]),
    (interrupted, ["resume with --resume=auto (python3 main.py"]),
    (image_failing_mid_run, ["replace that file, then resume with"]),
    (non_finite_loss, ["or with --nan_policy=skip_batch", "with a lower --%s: python3 main.py"]),
    (all_test_embeddings_non_finite, ["with a lower --%s: python3 main.py"]),
    (resume_changing_a_training_flag, ["leave --%s out, or start a new run in another --save_dir"]),
    (resume_of_a_checkpoint_of_another_run, ["give one of the two"]),
    (resume_of_no_known_kind, ["not auto, a run folder or a checkpoint file"]),
    (resume_of_a_broken_checkpoint, ["take the newest intact one"]),
    (resume_without_an_intact_checkpoint, ["no intact checkpoint", "with its command and --overwrite=True"]),
    (resume_of_a_trained_run_whose_checkpoints_were_removed,
     ["no checkpoint in %s, though", "with its command and --overwrite=True"]),
    (resume_of_run_files_without_args_json, ["without --resume and with --overwrite=True"]),
    (new_run_over_run_files_without_args_json, ["holds files of a run but no %s"]),
    (resume_of_an_empty_folder, ["holds no run to continue; start a new run without --resume"]),
    (resume_with_fewer_epochs, ["give --epochs=%d or more"]),
]


@pytest.fixture(scope="module")
def finished(demo_dir, tmp_path_factory):
    """A finished 2-epoch run: checkpoints after the evaluations of epochs 1 and 2 are kept."""
    case = Case(tmp_path_factory.mktemp("finished"), demo_dir)
    proc = main(case.train(), case.tmp_path)
    assert proc.returncode == 0, "the reference run failed: %s" % proc.stderr[-3000:]
    return case.save_dir


@pytest.mark.parametrize("provoke", [case for case, _ in CASES], ids=lambda case: case.__name__)
def test_advice_leads_somewhere(provoke, finished, demo_dir, tmp_path):
    case = Case(tmp_path, demo_dir)
    case.given, fault, code, says = provoke(case, finished)
    line = one_line(main(case.given, tmp_path, fault=fault), code)
    assert says in line, "the message of this case: %s" % line
    commands = advised_commands(line, case)
    assert commands, "the message names no way forward this test can follow: %s" % line
    snapshot = str(tmp_path / "snapshot")
    if os.path.isdir(case.save_dir):
        shutil.copytree(case.save_dir, snapshot, symlinks=True)
    case.before_following()
    for argv in commands:
        if os.path.isdir(snapshot):  # each piece of advice from the folder as the message left it
            shutil.rmtree(case.save_dir)
            shutil.copytree(snapshot, case.save_dir, symlinks=True)
        shutil.rmtree(str(tmp_path / "elsewhere"), ignore_errors=True)
        proc = main(argv, tmp_path)
        assert proc.returncode == 0, "advised by %r, %r failed: %s" % (line, argv, proc.stderr[-3000:])


def _advising_literals():
    """``(file, text)`` of every string literal of SOURCES that names a flag or a command, other
    than docstrings and log messages (what a user is told to do comes in an error)."""
    found = []
    for name in SOURCES:
        tree = ast.parse(open(os.path.join(ROOT, name), encoding="utf-8").read())
        skipped = set()
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                    isinstance(body[0].value, ast.Constant):
                skipped.add(id(body[0].value))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id == "logger":
                skipped.update(id(inner) for inner in ast.walk(node))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped \
                    and ADVISING.search(node.value):
                found.append((name, node.value))
    return found


def test_every_advising_message_is_provoked():
    covered = [fragment for _, fragments in CASES for fragment in fragments]
    literals = _advising_literals()
    assert len(literals) >= 15, "the scan finds the messages: %r" % literals
    missing = [(name, text) for name, text in literals if not any(f in text for f in covered)]
    assert not missing, "messages that advise a command but no case here provokes: %r" % missing
