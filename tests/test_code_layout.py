"""The house's rules, read from the code itself: each package imports only from the floors below it
(utils/ the ground floor; data/, model/, loss/ above it; train/ and inference/ above those; the
scripts, experiments/, tools/ and bench/ on top), and no function outside the tests is over 60 lines."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What each package may import of this repository (besides itself).
ALLOWED = {
    "utils": set(),
    "data": {"utils"},
    "model": {"utils"},
    "loss": {"utils"},
    "inference": {"utils", "data", "model", "loss"},
    "train": {"utils", "data", "model", "loss", "inference"},
}
PACKAGES = {"utils", "data", "model", "loss", "inference", "train", "experiments", "tools", "bench"}
SKIP = {".venv", ".git", "tests", "results", "__pycache__"}


def _sources():
    for root, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP]
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(root, name)


def _imported_packages(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES or top in ("main", "embed", "evaluate"):
                yield top, node.lineno


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_runs_back_up(package):
    wrong = []
    for path in _sources():
        relative = os.path.relpath(path, ROOT)
        if relative.split(os.sep)[0] != package:
            continue
        tree = ast.parse(open(path, encoding="utf-8").read(), relative)
        for top, line in _imported_packages(tree):
            if top != package and top not in ALLOWED[package]:
                wrong.append("%s:%d imports %s" % (relative, line, top))
    assert not wrong, "%s/ may import only %s: %s" % (package, sorted(ALLOWED[package]) or "nothing of ours", wrong)


def test_no_function_over_60_lines_outside_the_tests():
    long = []
    for path in _sources():
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    long.append("%s:%d %s (%d lines)" % (os.path.relpath(path, ROOT), node.lineno, node.name, length))
    assert not long, "functions over 60 lines: %s" % long
