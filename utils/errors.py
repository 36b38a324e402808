"""The one line of an exception worth showing a user, and the exit code of a command."""
import sys


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
