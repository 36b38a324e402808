"""The losses' command-line flags, their ranges, and the training recipes that come with the papers'
losses (the learning-rate schedules, the Symm release's regulariser and gradient multiplier).

``add_core_loss_flags`` gives main.py's "loss" group (the original release's --loss, --margin,
--soft_margin, --n_inner_pts, --ee_l2norm and its unused --alpha, --beta, --sigma);
``add_loss_arguments`` the per-loss flags and the recipe flags; ``validate_loss_flags`` checks
their ranges. Which loss combines with which layout is each loss class's word (``loss.factory``).
"""
import argparse
import math

from utils.flags import check_rules, str2bool

# Help sentences of the original's flags that it parsed and never used.
COMPAT_FLAG_HELP = {
    "alpha": "kept for compatibility with the original, which ignored it; unused "
             "(multi_similarity uses --ms_alpha, angular losses --angular_alpha)",
    "beta": "kept for compatibility with the original, which ignored it; unused "
            "(multi_similarity uses --ms_beta)",
    "sigma": "kept for compatibility with the original, which ignored it; unused",
}


LR_SCHEDULES = ("multifactor", "step")


def add_core_loss_flags(loss):
    """The loss flags."""
    loss.add_argument("--loss", default="hphn-triplet", help="loss name (hphn_triplet = hphn-triplet); see README for all")
    loss.add_argument("--margin", default=1e-5, type=float, help="triplet margin of HPHN-triplet")
    loss.add_argument("--soft_margin", default=False, type=str2bool,
                      help="HPHN-triplet with log(1 + exp(d_ap - d_an)) instead of the hinge")
    loss.add_argument("--n_inner_pts", default=2, type=int,
                      help="synthetic points per pair for Embedding Expansion; 0 disables EE")
    loss.add_argument("--ee_l2norm", default=True, type=str2bool,
                      help="L2-normalise the synthetic points of EE")
    # The original parsed these and never used them; their defaults match no paper's parameter,
    # so every loss has its own named flags (add_loss_arguments) instead.
    for name, default in (("alpha", 10), ("beta", 1.2), ("sigma", 0.5)):
        loss.add_argument("--" + name, default=default, type=float, help=COMPAT_FLAG_HELP[name])


def add_loss_arguments(parser):
    """Add the per-loss flags, the Symm training-recipe flags and the schedule flags.

    ``parser`` is an ``argparse.ArgumentParser`` (a group named "loss options" is added) or an
    argument group (the flags go into it). The flags of :func:`build_parser` (--loss, --margin,
    --soft_margin, --n_inner_pts, --ee_l2norm, --alpha, --beta, --sigma, --num_instances) are not
    redefined. Returns the group the flags went into.
    """
    group = parser.add_argument_group("loss options") if isinstance(parser, argparse.ArgumentParser) else parser
    add = group.add_argument
    add("--hphn_distinct_points", default=False, type=str2bool,
        help="hphn_triplet: mine the hardest negatives over the distinct EE points, each extreme "
             "picked once, so the gradient is the loss's derivative; False: the release's form, whose "
             "twin synthetic points tie and both take the gradient (docs/losses.md)")
    add("--triplet_margin", default=0.2, type=float,
        help="margin of triplet and symm_triplet (FaceNet: 0.2)")
    add("--triplet_squared", default=True, type=str2bool,
        help="triplet and symm_triplet on squared Euclidean distances (FaceNet, TensorFlow), "
             "else on Euclidean distances")
    add("--lifted_margin", default=1.0, type=float,
        help="margin alpha of lifted and symm_lifted (Oh Song et al.: 1.0)")
    add("--npair_reg", default=0.002, type=float,
        help="lambda of the 0.25 * lambda * (mean |A|^2 + mean |P|^2) regulariser of npair, angular, "
             "symm_npair and symm_angular (Sohn; TensorFlow npairs_loss: 0.002)")
    add("--ms_alpha", default=2.0, type=float, help="positive scale alpha of multi_similarity")
    add("--ms_beta", default=50.0, type=float, help="negative scale beta of multi_similarity")
    add("--ms_base", default=0.5, type=float, help="similarity margin lambda of multi_similarity")
    add("--ms_epsilon", default=0.1, type=float, help="pair-mining margin epsilon of multi_similarity")
    add("--angular_alpha", default=45.0, type=float,
        help="angle bound alpha in degrees of angular and symm_angular (Wang et al.: 45)")
    add("--angular_weight", default=2.0, type=float,
        help="weight of the angular loss in the total (Symm release: 2.0)")
    add("--symm_angular_weight", default=1.0, type=float,
        help="weight of the symm_angular loss in the total (Symm release: 1.0)")
    add("--symm_ratio", default=2.0, type=float,
        help="Symmetrical Synthesis: Q = symm_norm_ratio * (symm_ratio * R - P); 2 mirrors P")
    add("--symm_norm_ratio", default=1.0, type=float, help="Symmetrical Synthesis: scale of Q")
    add("--symm_norm", default=False, type=str2bool,
        help="Symmetrical Synthesis: rescale each synthetic point to the norm of its basis")
    add_recipe_arguments(group)
    return group


def add_recipe_arguments(group):
    """The learning-rate schedule and the Symm release's regularisation (not loss parameters)."""
    add = group.add_argument
    add("--lr_schedule", default="multifactor", choices=LR_SCHEDULES,
        help="multifactor: x --lr_decay_factor at each of --lr_decay_epochs; step: x 0.5 every "
             "--lr_step_iters iterations, then --lr_fixed from --lr_fix_after_iters (Symm)")
    add("--lr_step_iters", default=5000, type=int,
        help="step schedule: halve the learning rate every N iterations")
    add("--lr_fix_after_iters", default=15000, type=int,
        help="step schedule: use --lr_fixed from this iteration on")
    add("--lr_fixed", default=1e-5, type=float, help="step schedule: the final, fixed learning rate")
    add("--l2_reg", default=0.0, type=float,
        help="add l2_reg * sum of |w|^2 / 2 over the non-BatchNorm parameters to the loss "
             "(Symm: 5e-3, with --wd=0)")
    add("--embed_grad_mult", default=1.0, type=float,
        help="multiply the embedding layer's gradients by this before the update (Symm: 10)")


# Ranges of the loss and recipe flags (add_loss_arguments): (flag, test, what it must be).
_LOSS_FLAG_RULES = (
    ("ms_alpha", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("ms_beta", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("embed_grad_mult", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("lr_fixed", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("triplet_margin", lambda v: math.isfinite(v) and v >= 0, "0 or more"),
    ("l2_reg", lambda v: math.isfinite(v) and v >= 0, "0 or more"),
    ("ms_epsilon", lambda v: math.isfinite(v) and v >= 0, "0 or more"),
)


def validate_loss_flags(args):
    """The ranges of --n_inner_pts and of the flags of :func:`add_loss_arguments` (a namespace of
    :func:`build_parser` alone has only the first). Part of :func:`validate_args`; also the first
    step of ``loss.factory.check_loss_args``."""
    if args.n_inner_pts < 0:
        raise ValueError("--n_inner_pts must be 0 (no EE) or more, got %d." % args.n_inner_pts)
    if not hasattr(args, "lr_schedule"):
        return
    check_rules(args, _LOSS_FLAG_RULES)
    if not 0 < args.angular_alpha < 90:
        raise ValueError(f"--angular_alpha is in degrees, strictly between 0 and 90, got {args.angular_alpha}.")
    if args.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"--lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {args.lr_schedule!r}.")
    if args.lr_step_iters < 1:
        raise ValueError(f"--lr_step_iters must be a positive number of iterations, got {args.lr_step_iters}.")
    if args.lr_fix_after_iters < 0:
        raise ValueError(f"--lr_fix_after_iters must be 0 or more, got {args.lr_fix_after_iters}.")
