"""Fault injection for the tests of a run's life: one environment variable, read once.

A run must survive being killed or interrupted at any point and a disk that refuses a write. The
tests cannot time a signal to land inside an evaluation or between two files of a checkpoint, so
the training code announces those points here and, when ``EE_GLUON_FAULT`` asks for it, the fault
happens exactly there. Without the variable every call is a no-op (one dict lookup).

``EE_GLUON_FAULT`` holds one fault, ``WHAT@POINT=VALUE``:

- ``SIGKILL@step=7``, ``SIGTERM@step=7``, ``SIGINT@step=7``: this process gets the signal right after
  the update of global step 7 (mid-epoch when 7 is not a multiple of the epoch's iterations).
- ``SIGTERM@eval=2``: during the evaluation after epoch 2, after its first test batch is embedded.
- ``SIGINT@checkpoint=2``: while the checkpoint of epoch 2 is written, after its parameters file
  and before its JSON.
- ``ENOSPC@write=NAME`` or ``EACCES@write=NAME``: the first write of a file whose name contains
  NAME fails with that OS error (disk full, permission denied).
- ``nan@step=5``: the loss of global step 5 is reported as NaN.

``,task=N`` after any of them limits the fault to the distributed worker the launcher started with
``DMLC_TASK_ID=N`` (``SIGKILL@step=3,task=1``: one worker of the job dies).
"""
import errno
import os
import signal

ENV = "EE_GLUON_FAULT"


def _parse(text):
    if not text:
        return None
    text, _, task = text.partition(",task=")
    if task and (os.environ.get("DMLC_ROLE") != "worker" or os.environ.get("DMLC_TASK_ID") != task):
        return None  # meant for another worker of the job
    what, _, where = text.partition("@")
    point, _, value = where.partition("=")
    if not what or not point or not value:
        raise ValueError("%s=%r: expected WHAT@POINT=VALUE, e.g. SIGKILL@step=7" % (ENV, text))
    return what, point, value


_FAULT = _parse(os.environ.get(ENV))
_fired = set()


def _matches(point, value):
    return _FAULT is not None and _FAULT[1] == point and _FAULT[2] == str(value) and point not in _fired


def at(point, value):
    """Announce that the run is at ``point`` (``step``, ``eval``, ``checkpoint``) number ``value``;
    sends the configured signal to this process when it is the configured one."""
    if not _matches(point, value) or not _FAULT[0].startswith("SIG"):
        return
    _fired.add(point)
    os.kill(os.getpid(), getattr(signal, _FAULT[0]))


def loss_is_nan(step):
    """True when the loss of global ``step`` is to be reported as NaN."""
    return _FAULT is not None and _FAULT[0] == "nan" and _matches("step", step)


def before_write(path):
    """Raise the configured OSError when ``path`` is the file whose write is to fail (once)."""
    if _FAULT is None or _FAULT[1] != "write" or "write" in _fired:
        return
    if _FAULT[2] in os.path.basename(path):
        _fired.add("write")
        code = getattr(errno, _FAULT[0])
        raise OSError(code, os.strerror(code), path)
