"""Logging for a run: set up before the first message, written to the run folder once it may be.

Nothing is written to ``--save_dir`` before the inputs are checked, yet the messages of those
checks matter (a class drawn with replacement, the checkpoint a resume takes and why newer ones
were passed over). So :func:`start` logs to the console at once and keeps every record in memory;
:func:`attach_file` writes the kept records to ``train.log`` and then appends as they come.
"""
import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATEFMT = "%H:%M:%S"


class _Keep(logging.Handler):
    """Keeps records until the run folder exists."""

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


class _RunLogFile(logging.FileHandler):
    """``train.log``; a failed write (disk full) is remembered for the run to report, not printed
    as a traceback in the middle of training."""

    failure = None

    def handleError(self, record):
        if self.failure is None:
            self.failure = sys.exc_info()[1]


_kept = None


def console():
    """Console logging of a tool (``embed.py``, ``evaluate.py``): INFO and up, on stdout."""
    logging.basicConfig(level=logging.INFO, format=FORMAT, datefmt=DATEFMT, stream=sys.stdout)


def start():
    """Console logging for the ``ee_gluon`` process, and keeping records for :func:`attach_file`."""
    global _kept
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        if isinstance(handler, (_Keep, _RunLogFile)) or getattr(handler, "_ee_console", False):
            root.removeHandler(handler)
    console = logging.StreamHandler(sys.stdout)
    console._ee_console = True
    console.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    root.addHandler(console)
    _kept = _Keep()
    root.addHandler(_kept)


def attach_file(log_path):
    """Write the records kept so far to ``log_path`` (appending), then log there too.
    Returns the handler (its ``failure`` is the first write error, or None)."""
    global _kept
    root = logging.getLogger()
    handler = _RunLogFile(log_path)
    handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    if _kept is not None:
        root.removeHandler(_kept)
        for record in _kept.records:
            handler.handle(record)
        _kept = None
    root.addHandler(handler)
    return handler


def detach():
    """Stop keeping records (processes that write no log file: distributed workers > 0)."""
    global _kept
    if _kept is not None:
        logging.getLogger().removeHandler(_kept)
        _kept = None


def close():
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _RunLogFile):
            handler.close()
            root.removeHandler(handler)
