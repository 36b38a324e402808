"""The losses' flags are declared beside the losses and gathered from the registry: a new loss with
a new flag is its file and one registry line; the layout rules are written once (loss/layout.py)."""
import subprocess
import sys

import mxnet as mx
import pytest

from conftest import ROOT, SUBPROCESS_TIMEOUT, subprocess_env
from loss import LOSSES, MetricLoss
from loss._flag import POSITIVE, LossFlag
from loss.factory import build_loss_from_args, check_loss_args
from loss.flags import CORE_FLAGS, RECIPE_FLAGS, loss_flags, validate_loss_flags
from loss.layout import check_even_pairs, check_symm_pairs
from train.options import build_full_parser


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_registered_loss_declares_its_flags(name):
    cls = LOSSES[name]
    assert isinstance(cls.flags, tuple), "%s.flags must be a tuple of LossFlag" % name
    for flag in cls.flags + cls.synthesis_flags():
        assert isinstance(flag, LossFlag), "%s declares %r, not a LossFlag" % (name, flag)
        assert flag.help, "--%s of %s needs a help sentence" % (flag.name, name)
        assert flag in loss_flags(), "--%s of %s reaches the parser" % (flag.name, name)


def test_a_shared_flag_is_declared_once():
    names = [flag.name for flag in CORE_FLAGS + loss_flags() + RECIPE_FLAGS]
    assert len(names) == len(set(names)), "a flag name appears twice: %s" % names
    assert LOSSES["triplet"].flags == LOSSES["symm_triplet"].flags, "triplet flags shared by symm_triplet"
    npair_reg = LOSSES["npair"].flags[0]
    for name in ("angular", "symm_npair", "symm_angular"):
        assert npair_reg in LOSSES[name].flags, "--npair_reg is npair's declaration, listed by %s" % name


def test_the_loss_options_keep_their_help_order():
    # Registry order, each flag where its first loss lists it, then Symm's, then the recipe's.
    group = [g for g in build_full_parser()._action_groups if g.title == "loss options"][0]
    got = [action.dest for action in group._group_actions]
    assert got == ["hphn_distinct_points", "triplet_margin", "triplet_squared", "lifted_margin", "npair_reg",
                   "ms_alpha", "ms_beta", "ms_base", "ms_epsilon", "angular_alpha", "angular_weight",
                   "symm_angular_weight", "ns_scale", "proxy_lr_mult", "nca_scale",
                   "pa_alpha", "pa_delta", "cf_scale", "cf_margin", "af_scale", "af_margin", "symm_ratio", "symm_norm_ratio", "symm_norm", "ps_mu", "ps_alpha", "lr_schedule",
                   "lr_step_iters", "lr_fix_after_iters", "lr_fixed", "l2_reg", "embed_grad_mult"], got


TOY_SCALE = LossFlag("toy_scale", 1.0, float, "scale of the toy loss", range=POSITIVE)


class _ToyLoss(MetricLoss):
    """Mean squared norm of the embeddings times --toy_scale (a test-only loss, any layout)."""

    loss_name = "toy"
    flags = (TOY_SCALE,)

    def __init__(self, scale=1.0, num_instances=2, n_inner_pts=0, **kwargs):
        super().__init__(**kwargs)
        self.scale = POSITIVE.check(scale, "scale")
        self._attach_synthesis(num_instances, n_inner_pts)

    @classmethod
    def options_from_flags(cls, args):
        return dict(scale=args.toy_scale, num_instances=args.num_instances, n_inner_pts=args.n_inner_pts)

    def hybrid_forward(self, F, embeddings, labels):
        return self.scale * F.mean(F.sum(F.square(embeddings), axis=1), axis=0, keepdims=True)


def test_a_new_loss_with_a_new_flag_is_one_file_and_one_registry_line(monkeypatch):
    monkeypatch.setitem(LOSSES, "toy", _ToyLoss)
    args = build_full_parser().parse_args(["--loss=toy", "--n_inner_pts=0", "--num_instances=3",
                                           "--batch_size=6", "--toy_scale=2"])
    block = build_loss_from_args(args)
    assert block.scale == 2.0, "--toy_scale reached the loss: %r" % block.scale
    assert block(mx.nd.ones((6, 2)), mx.nd.array([0, 0, 0, 1, 1, 1])).asscalar() == pytest.approx(4.0)
    bad = build_full_parser().parse_args(["--loss=toy", "--n_inner_pts=0", "--toy_scale=0"])
    with pytest.raises(ValueError, match=r"^--toy_scale must be a positive number, got 0.0.$"):
        check_loss_args(bad)
    with pytest.raises(ValueError, match="--toy_scale"):
        validate_loss_flags(bad)  # validate_args's part: checked whatever --loss is
    help_text = build_full_parser().format_help()
    assert "--toy_scale" in help_text and "scale of the toy loss" in help_text, "listed in --help"


def test_a_flag_declared_twice_is_refused(monkeypatch):
    twin = TOY_SCALE._replace(default=3.0)
    monkeypatch.setitem(LOSSES, "toy", _ToyLoss)
    monkeypatch.setitem(LOSSES, "toy2", type("_Toy2", (_ToyLoss,), {"loss_name": "toy2", "flags": (twin,)}))
    with pytest.raises(ValueError, match="--toy_scale is declared twice"):
        loss_flags()


@pytest.mark.parametrize("flags, who, spelled", [(True, "--loss=npair", "--num_instances"),
                                                 (False, "npair", "num_instances")])
def test_a_layout_rule_is_one_sentence_for_flags_and_arguments(flags, who, spelled):
    with pytest.raises(ValueError) as even:
        check_even_pairs(3, who, flags)
    assert str(even.value) == f"{who} pairs rows 2i and 2i+1, so {spelled} must be even, got 3.", even.value
    with pytest.raises(ValueError) as pairs:
        check_symm_pairs(4, who, flags)
    assert str(pairs.value) == f"{who} takes N classes x 2 images, so {spelled} must be 2, got 4.", pairs.value


def test_loss_imports_nothing_of_train():
    code = ("import sys, loss, loss.factory, loss.flags, loss.layout; "
            "bad = sorted(m for m in sys.modules if m == 'train' or m.startswith('train.')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(), check=True,
                   timeout=SUBPROCESS_TIMEOUT)
