"""Losses from command-line flags: the rules a loss's capabilities impose on the flags, and the builder.

How ``main.py`` uses it::

    parser = train.options.build_full_parser()       # core, per-loss, Symm-recipe and schedule flags
    args = parser.parse_args()
    loss_fn = loss.factory.build_loss_from_args(args)   # every flag checked first, one-line ValueError

Where each part is:

- the flags' ranges: declared beside each flag (``loss/_flag.py``'s ``LossFlag``, in the loss's
  file), gathered and checked by ``loss.flags.validate_loss_flags`` (the first step here);
- the capabilities: class attributes of each loss (:class:`loss.base.MetricLoss`: ``takes_ee``,
  ``pair_layout``, ``wants_unit_embeddings``, ``needs_negatives``);
- the layout rules they impose: ``loss.layout`` (each once, also used by the constructors); the
  batch rule (two classes for a loss that needs negatives) is :func:`_check_batch_classes` here;
- the constructor options: each class's ``options_from_flags``.

So a new loss needs no line here. ``--num_instances`` and ``--batch_size`` are train/options.py's
data flags (which also checks that --batch_size is a multiple of --num_instances). The original's
``--alpha`` (10), ``--beta`` (1.2) and ``--sigma`` (0.5) were parsed and never used; their defaults
differ from every paper's, so they stay unused and ``--margin`` stays HPHN's margin.
"""
from . import LOSSES, loss_class, normalize_loss_name
from .flags import validate_loss_flags
from .layout import check_layout


def ee_losses():
    """Names of the losses that combine with Embedding Expansion, in registry order."""
    return tuple(name for name, cls in LOSSES.items() if cls.takes_ee)


def _check_layout(name, cls, args):
    """The loss's capabilities against --n_inner_pts, --num_instances, --ee_l2norm
    (``loss.layout.check_layout``, the rules the constructors apply to their arguments) and
    --batch_size."""
    check_layout(cls, name, args.num_instances, args.n_inner_pts, args.ee_l2norm, flags=True,
                 ee_losses=ee_losses())
    _check_batch_classes(name, cls, args.batch_size, args.num_instances)
    if cls.uses_proxies and args.ps_mu > 0:
        _check_synthesis_classes(args.batch_size, args.num_instances)


def _check_batch_classes(name, cls, batch_size, num_instances):
    """A loss that needs negatives gets batches of at least two classes.

    The loss sees the whole batch, whatever the devices: ``train.step`` gathers every device's
    embeddings before the loss, so the classes of a batch are ``batch_size / num_instances`` (N
    classes x 2 images for the symmetrical losses, whose num_instances is 2), not those of one
    device's slice.
    """
    classes = batch_size // num_instances
    if cls.needs_negatives and classes < 2:
        raise ValueError(
            f"--batch_size {batch_size} with --num_instances {num_instances} puts {classes} class in a "
            f"batch, and --loss={name} needs images of another class in it (negatives), or it learns "
            f"nothing; pass --batch_size={2 * num_instances} (2 classes) or more, or a smaller "
            "--num_instances."
        )


def _check_synthesis_classes(batch_size, num_instances):
    """Proxy Synthesis mixes images of two classes, so a batch holds two classes or more."""
    if batch_size // num_instances < 2:
        raise ValueError(
            f"--ps_mu > 0 (Proxy Synthesis) mixes images of different classes, and --batch_size "
            f"{batch_size} with --num_instances {num_instances} puts 1 class in a batch; pass "
            f"--batch_size={2 * num_instances} or more, or --ps_mu=0."
        )


def check_loss_args(args):
    """Refuse flags that do not make sense, with a one-sentence ValueError; returns the canonical
    loss name. ``args`` is the namespace of ``train.options.build_full_parser``: the ranges of the
    loss flags (``loss.flags.validate_loss_flags``), then what the chosen loss says it needs."""
    validate_loss_flags(args)
    name = normalize_loss_name(args.loss)
    if name not in LOSSES:
        raise ValueError(f"unknown --loss {args.loss!r}; valid names: {', '.join(sorted(LOSSES))}.")
    _check_layout(name, LOSSES[name], args)
    return name


def loss_kwargs_from_args(name, args):
    """Constructor keyword arguments of loss ``name`` from the parsed flags."""
    return loss_class(name).options_from_flags(args)


def build_loss_from_args(args):
    """The loss HybridBlock selected by ``--loss``, with its flags (checked first); built once.
    Whatever its constructor refuses beyond the checks comes with the constructor's message."""
    name = check_loss_args(args)
    return LOSSES[name](**loss_kwargs_from_args(name, args))

