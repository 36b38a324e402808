"""Command-line values shared by every entry point: the argparse types (booleans, paths, integer
lists, metric lists), the registries' name normaliser, and the range checks that raise one-line
ValueErrors.
"""
import argparse

from utils.metrics.names import EVAL_METRICS


def str2bool(value):
    """'true'/'false'/'1'/'0' (any case) → bool; anything else is an error, not False. The
    original passes True/False; scripts pass 1/0 (docs/flags.md says the same)."""
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError("expected True or False (or 1 or 0, in any letter case), got %r" % value)


def path_flag(value):
    """The value of a flag that names a file or folder, refused when empty: ``--save_dir=`` (an
    unset shell variable, say) names nothing, and would fail only at the first write."""
    if not str(value).strip():
        raise argparse.ArgumentTypeError("an empty path names no file or folder (an unset shell "
                                         "variable?); give a path")
    return value


def registry_key(name):
    """The key a registry (datasets, backbones, losses) files ``name`` under: surrounding spaces
    dropped, lower case, '-' read as '_' (``HPHN-Triplet`` is ``hphn_triplet``)."""
    return str(name).strip().lower().replace("-", "_")


def int_list(value):
    """'400,800' → [400, 800]."""
    try:
        items = [int(part) for part in str(value).split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected comma-separated integers such as 1,2,4,8, got %r" % value
        ) from None
    if not items:
        raise argparse.ArgumentTypeError("expected at least one integer, got %r" % value)
    return items


def any_metric_list(value):
    """'recall,nmi' → ['recall', 'nmi'], checked against EVAL_METRICS (any subset, no repeats)."""
    items = [part.strip().lower() for part in str(value).split(",") if part.strip()]
    unknown = [item for item in items if item not in EVAL_METRICS]
    if unknown or not items:
        raise argparse.ArgumentTypeError(
            "unknown metric %r; choose from %s" % (unknown[0] if unknown else value, ",".join(EVAL_METRICS)))
    return list(dict.fromkeys(items))


def metric_list(value):
    """'recall,nmi' → ['recall', 'nmi'], checked against EVAL_METRICS; recall must be among them."""
    items = any_metric_list(value)
    if "recall" not in items:
        raise argparse.ArgumentTypeError("recall must be among the metrics: R@K picks the best epoch")
    return items


def check_minimums(args, minimums, message="--%(name)s must be at least %(low)d, got %(value)d"):
    """One-line ValueError for the first flag of ``minimums`` ({name: lowest}) below its lowest;
    a flag the namespace does not hold, or that is None (not given), is passed over."""
    for name, low in minimums.items():
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise ValueError(message % dict(name=name, low=low, value=value))


def check_positive_sizes(args, names):
    """``--NAME must be a positive integer``: the sizes given (None = not given) must be >= 1."""
    check_minimums(args, dict.fromkeys(names, 1), "--%(name)s must be a positive integer, got %(value)d")


def check_recallk(recallk):
    if recallk is not None and min(recallk) < 1:
        raise ValueError("--recallk must list positive ranks, got %s" % ",".join(map(str, recallk)))


def check_rules(args, rules):
    for flag, ok, what in rules:
        value = getattr(args, flag)
        if not ok(value):
            raise ValueError(f"--{flag} must be {what}, got {value}.")
