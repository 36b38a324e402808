"""Constructor argument types shared by the losses: one-sentence ValueErrors, no asserts. (The
layout rules, such as an even num_instances, are ``loss.layout``'s.)"""
import math
import numbers

import numpy as np


def check_int(name, value, minimum=None):
    """Return ``value`` as an int, or raise ValueError when it is not a suitable integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}.")
    return value


def check_bool(name, value):
    """Return ``value`` as a bool, or raise ValueError when it is not a boolean."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def check_real(name, value):
    """Return ``value`` as a float, or raise ValueError when it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}.")
    return float(value)
