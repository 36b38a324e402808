"""The OpenMP wait policy the commands pick before MXNet loads (utils.environment)."""
import os
import re
import subprocess
import sys

import pytest

from conftest import SUBPROCESS_TIMEOUT, subprocess_env
from utils.environment import OPENMP_WAIT_VARIABLES, prefer_passive_openmp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_passive_is_set_only_where_the_user_chose_nothing():
    environ = {"PATH": "/bin"}
    assert prefer_passive_openmp(environ) is True, "an environment without a choice gets the policy"
    assert environ["OMP_WAIT_POLICY"] == "PASSIVE", "the policy set is PASSIVE: %r" % environ
    for name, value in (("OMP_WAIT_POLICY", "ACTIVE"), ("GOMP_SPINCOUNT", "300000")):
        environ = {name: value}
        assert prefer_passive_openmp(environ) is False, "%s given: nothing is changed" % name
        assert environ == {name: value}, "the user's %s is kept as it was: %r" % (name, environ)


def libgomp_spin_count(script, **extra):
    """GOMP_SPINCOUNT as libgomp itself reports it (OMP_DISPLAY_ENV) when ``script`` loads MXNet."""
    unset = dict.fromkeys(OPENMP_WAIT_VARIABLES)  # None: removed, so the command's own default shows
    env = subprocess_env(**dict(unset, OMP_DISPLAY_ENV="VERBOSE", **extra))
    done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=SUBPROCESS_TIMEOUT)
    assert done.returncode == 0, "%s --help failed: %s" % (script, done.stderr[-2000:])
    found = re.findall(r"GOMP_SPINCOUNT = '(\d+)'", done.stderr)
    assert found, "libgomp printed no GOMP_SPINCOUNT for %s: %s" % (script, done.stderr[-2000:])
    return set(found)


@pytest.mark.parametrize("script", ["main.py", "embed.py", "evaluate.py"])
def test_commands_load_mxnet_with_threads_that_sleep_when_they_wait(script):
    # libgomp's default spins 300000 rounds at a barrier; PASSIVE makes that 0.
    assert libgomp_spin_count(script) == {"0"}, \
        "%s should load MXNet's OpenMP with the passive wait policy (spin count 0)" % script
    assert libgomp_spin_count(script, OMP_WAIT_POLICY="ACTIVE") != {"0"}, \
        "%s should keep a wait policy the user set" % script
