"""Losses from command-line flags: the per-loss flags, their cross-checks, and the builder.

How ``main.py`` uses it::

    parser = utils.options.build_parser()
    loss.factory.add_loss_arguments(parser)          # per-loss, Symm-recipe and schedule flags
    args = parser.parse_args()
    loss.factory.check_loss_args(args)               # one-line ValueError, before any data is read
    loss_fn = loss.factory.build_loss_from_args(args)
    normalise = loss.factory.loss_wants_normalized_embeddings(args.loss)

Each loss's own parameters are flags with the defaults of its paper (or of the release that the
paper's numbers come from). The original's ``--alpha`` (10), ``--beta`` (1.2) and ``--sigma`` (0.5)
were parsed and never used; their defaults differ from every paper's, so they stay unused
(``COMPAT_FLAG_HELP`` holds help sentences saying so) and ``--margin`` stays HPHN's margin.
"""
import argparse
import math

from . import LOSSES, get_loss, normalize_loss_name

# Losses that read rows (2i, 2i+1) as Symmetrical Synthesis pairs.
SYMM_LOSSES = ("symm_npair", "symm_angular", "symm_triplet", "symm_lifted")
# Losses that accept Embedding Expansion (n_inner_pts > 0).
EE_LOSSES = ("hphn_triplet", "triplet", "lifted", "npair", "multi_similarity")
# Losses trained on unnormalised embeddings (as in the Symm release); the others on unit vectors.
UNNORMALIZED_LOSSES = ("npair", "angular") + SYMM_LOSSES
LR_SCHEDULES = ("multifactor", "step")

# Help sentences for the original's unused flags (they live in utils/options.py).
COMPAT_FLAG_HELP = {
    "alpha": "kept for compatibility with the original, which parsed and ignored it; unused "
             "(multi_similarity uses --ms_alpha, angular losses --angular_alpha)",
    "beta": "kept for compatibility with the original, which parsed and ignored it; unused "
            "(multi_similarity uses --ms_beta)",
    "sigma": "kept for compatibility with the original, which parsed and ignored it; unused",
}


def _str2bool(value):
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError("expected True or False, got %r" % value)


def add_loss_arguments(parser):
    """Add the per-loss flags, the Symm training-recipe flags and the schedule flags.

    ``parser`` is an ``argparse.ArgumentParser`` (a group named "loss options" is added) or an
    argument group (the flags go into it). Flags already defined by ``utils/options.py``
    (--loss, --margin, --soft_margin, --n_inner_pts, --ee_l2norm, --alpha, --beta, --sigma,
    --num_instances) are not redefined. Returns the group the flags went into.
    """
    group = parser.add_argument_group("loss options") if isinstance(parser, argparse.ArgumentParser) else parser
    add = group.add_argument
    add("--hphn_distinct_points", default=False, type=_str2bool,
        help="hphn_triplet: mine the hardest negatives over the distinct EE points, each extreme "
             "picked once, so the gradient is the loss's derivative; False: the release's form, whose "
             "twin synthetic points tie and both take the gradient (docs/losses.md)")
    add("--triplet_margin", default=0.2, type=float,
        help="margin of triplet and symm_triplet (FaceNet: 0.2)")
    add("--triplet_squared", default=True, type=_str2bool,
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
    add("--symm_norm", default=False, type=_str2bool,
        help="Symmetrical Synthesis: rescale each synthetic point to the norm of its basis")
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
    return group


def check_loss_args(args):
    """Refuse flag combinations that do not make sense, with a one-sentence ValueError.

    Call it before reading any data. ``args`` is the Namespace of the full parser (the flags of
    ``utils/options.py`` plus those of :func:`add_loss_arguments`). Returns the canonical loss name.
    """
    name = normalize_loss_name(args.loss)
    if name not in LOSSES:
        raise ValueError(f"unknown --loss {args.loss!r}; valid names: {', '.join(sorted(LOSSES))}.")
    n, num_instances = args.n_inner_pts, args.num_instances
    if n < 0:
        raise ValueError(f"--n_inner_pts must be 0 (no EE) or more, got {n}.")
    if n > 0 and name not in EE_LOSSES:
        raise ValueError(
            f"--loss={name} does not combine with Embedding Expansion; pass --n_inner_pts=0 "
            f"(EE works with {', '.join(EE_LOSSES)})."
        )
    if n > 0 and num_instances % 2:
        raise ValueError(
            f"Embedding Expansion pairs rows 2i and 2i+1, so --num_instances must be even, got {num_instances}."
        )
    if name in SYMM_LOSSES and num_instances != 2:
        raise ValueError(
            f"--loss={name} takes N classes x 2 images, so --num_instances must be 2, got {num_instances}."
        )
    if name in ("hphn_triplet", "npair", "angular") and num_instances % 2:
        raise ValueError(
            f"--loss={name} pairs rows 2i and 2i+1, so --num_instances must be even, got {num_instances}."
        )
    if name == "npair" and n > 0 and args.ee_l2norm:
        raise ValueError(
            "npair takes unnormalised embeddings, so its EE points must not be L2-normalised; pass "
            "--ee_l2norm=False."
        )
    positive = {"ms_alpha": args.ms_alpha, "ms_beta": args.ms_beta, "embed_grad_mult": args.embed_grad_mult,
                "lr_fixed": args.lr_fixed}
    for flag, value in positive.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"--{flag} must be a positive number, got {value}.")
    non_negative = {"triplet_margin": args.triplet_margin, "l2_reg": args.l2_reg, "ms_epsilon": args.ms_epsilon}
    for flag, value in non_negative.items():
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"--{flag} must be 0 or more, got {value}.")
    if not 0 < args.angular_alpha < 90:
        raise ValueError(f"--angular_alpha is in degrees, strictly between 0 and 90, got {args.angular_alpha}.")
    if args.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"--lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {args.lr_schedule!r}.")
    if args.lr_step_iters < 1:
        raise ValueError(f"--lr_step_iters must be a positive number of iterations, got {args.lr_step_iters}.")
    if args.lr_fix_after_iters < 0:
        raise ValueError(f"--lr_fix_after_iters must be 0 or more, got {args.lr_fix_after_iters}.")
    # Whatever the constructors refuse beyond this (non-finite values, ...), with their own message.
    _build(name, args)
    return name


def loss_kwargs_from_args(name, args):
    """Constructor keyword arguments of loss ``name`` (canonical) from the parsed flags."""
    ee = dict(num_instances=args.num_instances, n_inner_pts=args.n_inner_pts)
    symm = dict(num_instances=args.num_instances, n_inner_pts=args.n_inner_pts, symm_ratio=args.symm_ratio,
                symm_norm_ratio=args.symm_norm_ratio, symm_norm=args.symm_norm)
    triplet = dict(margin=args.triplet_margin, squared=args.triplet_squared)
    table = {
        "hphn_triplet": lambda: dict(margin=args.margin, soft_margin=args.soft_margin, l2_norm=args.ee_l2norm,
                                     distinct_points=args.hphn_distinct_points, **ee),
        "triplet": lambda: dict(l2_norm=args.ee_l2norm, **triplet, **ee),
        "lifted": lambda: dict(margin=args.lifted_margin, l2_norm=args.ee_l2norm, **ee),
        "npair": lambda: dict(reg=args.npair_reg, l2_norm=args.ee_l2norm if args.n_inner_pts else False, **ee),
        "multi_similarity": lambda: dict(alpha=args.ms_alpha, beta=args.ms_beta, base=args.ms_base,
                                         epsilon=args.ms_epsilon, l2_norm=args.ee_l2norm, **ee),
        "angular": lambda: dict(alpha=args.angular_alpha, reg=args.npair_reg, weight=args.angular_weight, **ee),
        "symm_npair": lambda: dict(reg=args.npair_reg, **symm),
        "symm_angular": lambda: dict(alpha=args.angular_alpha, reg=args.npair_reg,
                                     weight=args.symm_angular_weight, **symm),
        "symm_triplet": lambda: dict(**triplet, **symm),
        "symm_lifted": lambda: dict(margin=args.lifted_margin, **symm),
    }
    return table[name]()


def _build(name, args):
    return get_loss(name, **loss_kwargs_from_args(name, args))


def build_loss_from_args(args):
    """The loss HybridBlock selected by ``--loss``, with its flags (checked first)."""
    return _build(check_loss_args(args), args)


def loss_wants_normalized_embeddings(name):
    """True when loss ``name`` expects L2-normalised embeddings; False for npair, angular and symm_*.

    Evaluation L2-normalises in either case.
    """
    key = normalize_loss_name(name)
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))}.")
    return key not in UNNORMALIZED_LOSSES
