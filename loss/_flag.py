"""A command-line flag declared beside the loss that reads it, with its range.

A loss file declares its flags as :class:`LossFlag` values and lists them in its class's ``flags``
(:class:`loss.base.MetricLoss`); ``loss.flags`` adds them to the parser and checks their ranges.
A flag read by several losses is declared once, in the file of the first, and listed by the others.
A :class:`Range` is one rule, written once, that the flag check and a constructor can share.
"""
import math
from typing import Any, Callable, NamedTuple, Optional, Tuple


class Range(NamedTuple):
    """Values a number may take: ``test(value)`` is true for them; ``requirement`` completes the
    sentence "<name> ..., got <value>." (e.g. "must be a positive number")."""

    test: Callable[[Any], bool]
    requirement: str

    def check(self, value, name):
        """One-line ValueError naming ``name`` (``--ms_beta`` or ``beta``) when ``value`` is out of range."""
        if not self.test(value):
            shown = repr(value) if isinstance(value, str) else value
            raise ValueError(f"{name} {self.requirement}, got {shown}.")
        return value


POSITIVE = Range(lambda v: math.isfinite(v) and v > 0, "must be a positive number")
AT_LEAST_ZERO = Range(lambda v: math.isfinite(v) and v >= 0, "must be 0 or more")


class LossFlag(NamedTuple):
    """One flag: ``--name`` with its default, argparse type, help sentence, choices and range."""

    name: str
    default: Any
    type: Optional[Callable] = None
    help: str = ""
    range: Optional[Range] = None
    choices: Optional[Tuple] = None

    def add_to(self, group):
        """Add ``--name`` to an argparse parser or argument group."""
        options = dict(default=self.default, help=self.help)
        if self.type is not None:
            options["type"] = self.type
        if self.choices is not None:
            options["choices"] = self.choices
        group.add_argument("--" + self.name, **options)

    def check(self, args):
        """Its range on a parsed namespace (passed over when the namespace lacks the flag)."""
        if self.range is not None and hasattr(args, self.name):
            self.range.check(getattr(args, self.name), "--" + self.name)
