"""The losses' command-line flags and their ranges, gathered from the losses; and the training
recipes that come with the papers' losses (the learning-rate schedules, the Symm release's
regulariser and gradient multiplier).

Where each flag is declared (a :class:`loss._flag.LossFlag`: name, default, type, help, range):

- main.py's "loss" group, the original release's flags (:func:`add_core_loss_flags`): ``--loss``
  here; ``--margin`` and ``--soft_margin`` in ``loss/hphn_triplet.py``; ``--n_inner_pts`` and
  ``--ee_l2norm`` in ``loss/embedding_expansion.py``; the unused ``--alpha``, ``--beta``,
  ``--sigma`` here.
- the "loss options" group (:func:`add_loss_arguments`): each registered loss's ``flags`` (its
  class attribute, declared in its file), in registry order, a flag shared by several losses once,
  where the first lists it; then the synthesis flags of the symmetrical losses (``--symm_ratio``,
  ``--symm_norm_ratio``, ``--symm_norm``, ``loss/symmetrical_synthesis.py``); then the recipe flags
  declared here.

:func:`validate_loss_flags` checks every declared range. Which loss combines with which layout is
each loss class's word (``loss.layout``, applied to the flags by ``loss.factory``).
"""
import argparse

from . import LOSSES
from ._flag import AT_LEAST_ZERO, POSITIVE, LossFlag, Range
from .embedding_expansion import EE_L2NORM, N_INNER_PTS
from .hphn_triplet import MARGIN, SOFT_MARGIN

# Help sentences of the original's flags that it parsed and never used.
COMPAT_FLAG_HELP = {
    "alpha": "kept for compatibility with the original, which ignored it; unused "
             "(multi_similarity uses --ms_alpha, angular losses --angular_alpha)",
    "beta": "kept for compatibility with the original, which ignored it; unused "
            "(multi_similarity uses --ms_beta)",
    "sigma": "kept for compatibility with the original, which ignored it; unused",
}

LOSS_NAME = LossFlag("loss", "hphn-triplet", None, "loss name (hphn_triplet = hphn-triplet); see docs/losses.md for all")

# The original parsed these and never used them; their defaults match no paper's parameter, so
# every loss has its own named flags instead.
COMPAT_FLAGS = tuple(LossFlag(name, default, float, COMPAT_FLAG_HELP[name])
                     for name, default in (("alpha", 10), ("beta", 1.2), ("sigma", 0.5)))

# main.py's "loss" group, in --help order.
CORE_FLAGS = (LOSS_NAME, MARGIN, SOFT_MARGIN, N_INNER_PTS, EE_L2NORM) + COMPAT_FLAGS

LR_SCHEDULES = ("multifactor", "step")

# The learning-rate schedule and the Symm release's regularisation (not loss parameters).
RECIPE_FLAGS = (
    LossFlag("lr_schedule", "multifactor", None,
             "multifactor: x --lr_decay_factor at each of --lr_decay_epochs; step: x 0.5 every "
             "--lr_step_iters iterations, then --lr_fixed from --lr_fix_after_iters (Symm)",
             range=Range(lambda v: v in LR_SCHEDULES, f"must be one of {', '.join(LR_SCHEDULES)}"),
             choices=LR_SCHEDULES),
    LossFlag("lr_step_iters", 5000, int, "step schedule: halve the learning rate every N iterations",
             range=Range(lambda v: v >= 1, "must be a positive number of iterations")),
    LossFlag("lr_fix_after_iters", 15000, int, "step schedule: use --lr_fixed from this iteration on",
             range=AT_LEAST_ZERO),
    LossFlag("lr_fixed", 1e-5, float, "step schedule: the final, fixed learning rate", range=POSITIVE),
    LossFlag("l2_reg", 0.0, float,
             "add l2_reg * sum of |w|^2 / 2 over the non-BatchNorm parameters to the loss "
             "(Symm: 5e-3, with --wd=0)", range=AT_LEAST_ZERO),
    LossFlag("embed_grad_mult", 1.0, float,
             "multiply the embedding layer's gradients by this before the update (Symm: 10)",
             range=POSITIVE),
)


def loss_flags():
    """The registered losses' own flags in registry order, then their synthesis flags, each once.

    Raises ValueError when two declarations share a name (a flag shared by several losses is one
    :class:`LossFlag`, listed by each)."""
    seen = {}
    for declared in [cls.flags for cls in LOSSES.values()] + [cls.synthesis_flags() for cls in LOSSES.values()]:
        for flag in declared:
            if seen.setdefault(flag.name, flag) is not flag:
                raise ValueError(f"--{flag.name} is declared twice; declare it once and list it in each loss's flags.")
    return tuple(seen.values())


def add_core_loss_flags(loss):
    """The loss flags of main.py's "loss" group (:data:`CORE_FLAGS`) into ``loss``."""
    for flag in CORE_FLAGS:
        flag.add_to(loss)


def add_loss_arguments(parser):
    """Add the per-loss flags, the Symm training-recipe flags and the schedule flags.

    ``parser`` is an ``argparse.ArgumentParser`` (a group named "loss options" is added) or an
    argument group (the flags go into it). The flags of :func:`add_core_loss_flags` and
    ``--num_instances`` (train/options.py's data group) are not redefined. Returns the group the
    flags went into.
    """
    group = parser.add_argument_group("loss options") if isinstance(parser, argparse.ArgumentParser) else parser
    for flag in loss_flags():
        flag.add_to(group)
    add_recipe_arguments(group)
    return group


def add_recipe_arguments(group):
    """The learning-rate schedule and the Symm release's regularisation (not loss parameters)."""
    for flag in RECIPE_FLAGS:
        flag.add_to(group)


def validate_loss_flags(args):
    """The ranges of every flag declared above (core, losses', recipe), in that order; a flag the
    namespace does not hold is passed over (a namespace of ``train.options.build_parser`` alone has
    only the core ones). Part of ``train.options.validate_args``; also the first step of
    ``loss.factory.check_loss_args``."""
    for flag in CORE_FLAGS + loss_flags() + RECIPE_FLAGS:
        flag.check(args)
