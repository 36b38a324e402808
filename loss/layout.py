"""The batch layouts the losses need, and the rules that check a layout, each written once.

The sampler puts ``num_instances`` consecutive rows per class in a batch. A loss (or its synthesis)
may need more than that:

- pairs: rows 2i and 2i+1 are paired (Embedding Expansion draws its segments between them; the
  N-pair-style losses read them as anchor and positive), so num_instances is even;
- N classes x 2 images (Symmetrical Synthesis): num_instances is 2;
- no Embedding Expansion (a loss whose ``takes_ee`` is False): n_inner_pts is 0;
- unnormalised embeddings (``wants_unit_embeddings`` False): EE's points are not L2-normalised.

Each rule is one function, called both by ``loss.factory`` on the flags (``flags=True``: the
message names ``--num_instances``, ``--n_inner_pts``, ``--ee_l2norm``) and by the constructors on
their arguments (``num_instances``, ``n_inner_pts``, ``l2_norm``). ``who`` starts the sentence:
``"--loss=npair"`` (flags), ``"npair"`` (arguments) or ``"Embedding Expansion"``. :func:`check_layout`
applies them all from a loss class's capabilities (:class:`loss.base.MetricLoss`).
"""

_FLAG_OF = {"num_instances": "--num_instances", "n_inner_pts": "--n_inner_pts", "l2_norm": "--ee_l2norm"}


def _spelled(argument, flags):
    """The argument's name as the user wrote it: the flag on a command line, else the keyword."""
    return _FLAG_OF[argument] if flags else argument


def check_even_pairs(num_instances, who, flags=False):
    """Rows 2i and 2i+1 are paired, so num_instances must be even."""
    if num_instances % 2:
        raise ValueError(
            f"{who} pairs rows 2i and 2i+1, so {_spelled('num_instances', flags)} must be even, "
            f"got {num_instances}."
        )


def check_symm_pairs(num_instances, who, flags=False):
    """N classes x 2 images (Symmetrical Synthesis): num_instances must be 2."""
    if num_instances != 2:
        raise ValueError(
            f"{who} takes N classes x 2 images, so {_spelled('num_instances', flags)} must be 2, "
            f"got {num_instances}."
        )


def check_without_ee(n_inner_pts, who, flags=False, ee_losses=()):
    """A loss that does not take Embedding Expansion gets n_inner_pts = 0; ``ee_losses``, when
    given, are named as the ones that do."""
    if n_inner_pts:
        works_with = f" (EE works with {', '.join(ee_losses)})" if ee_losses else f", got {n_inner_pts}"
        raise ValueError(
            f"{who} does not combine with Embedding Expansion; pass {_spelled('n_inner_pts', flags)}=0"
            f"{works_with}."
        )


def check_unnormalised_ee(n_inner_pts, l2_norm, who, flags=False):
    """A loss on unnormalised embeddings takes EE points that are not L2-normalised either
    (``who`` is the loss's name, flags or not)."""
    if n_inner_pts and l2_norm:
        raise ValueError(
            f"{who} takes unnormalised embeddings, so its EE points must not be L2-normalised; pass "
            f"{_spelled('l2_norm', flags)}=False."
        )


def check_layout(cls, name, num_instances, n_inner_pts, l2_norm, flags=False, ee_losses=()):
    """Every rule above that the capabilities of loss class ``cls`` (registered as ``name``)
    impose, in this order: EE taken at all, pairs (EE's, or the loss's own ``pair_layout``),
    N classes x 2 images, EE points unnormalised for a loss on raw embeddings."""
    who = f"--loss={name}" if flags else name
    if not cls.takes_ee:
        check_without_ee(n_inner_pts, who, flags, ee_losses)
    if n_inner_pts > 0:
        check_even_pairs(num_instances, "Embedding Expansion", flags)
    elif cls.pair_layout == "pairs":
        check_even_pairs(num_instances, who, flags)
    if cls.pair_layout == "symm_pairs":
        check_symm_pairs(num_instances, who, flags)
    if not cls.wants_unit_embeddings:
        check_unnormalised_ee(n_inner_pts, l2_norm, name, flags)
