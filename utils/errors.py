"""The one line of an exception worth showing a user."""


def one_line(error):
    """The informative line of ``error``: MXNet's errors start with a C++ "Traceback" header and end
    with the cause (``MXNetError: ...``); other errors are usually one line already."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Traceback")] or lines
    last = lines[-1] if lines else type(error).__name__
    return last[len("MXNetError: "):] if last.startswith("MXNetError: ") else last
