"""The one line of an exception worth showing a user, flag errors in one line, and the exit code of
a command."""
import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    """argparse for every command of this project: a bad flag is one line ``error: ... (see PROG
    --help)`` with exit code 2, not the usage block first; and no prefix matching, so ``--epoch=2``
    is an unknown flag rather than a silent ``--epochs=2``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, "error: %s (see %s --help)\n" % (message, self.prog))


def one_line(error):
    """The informative line of ``error``: MXNet's errors start with a C++ "Traceback" header and end
    with the cause (``MXNetError: ...``); other errors are usually one line already."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Traceback")] or lines
    last = lines[-1] if lines else type(error).__name__
    return last[len("MXNetError: "):] if last.startswith("MXNetError: ") else last


def run_command(build_parser, run, argv=None):
    """A tool's ``main``: parse ``argv``, log to the console, ``run(args)``; returns the exit code:
    0, or on bad input (a ValueError) 2 after one line ``error: ...`` on stderr, no traceback."""
    from .logs import console

    args = build_parser().parse_args(argv)
    console()
    try:
        run(args)
    except ValueError as error:
        sys.stderr.write("error: %s\n" % error)
        return 2
    return 0
