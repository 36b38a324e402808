"""loss.factory: flags added to the real parser, their checks, and building every registry entry."""
import argparse

import pytest

from loss import LOSSES, HPHNTripletLoss, wants_unit_embeddings as loss_wants_normalized_embeddings
from loss.factory import build_loss_from_args, check_loss_args
from loss.flags import COMPAT_FLAG_HELP, add_loss_arguments
from train.options import build_parser


def full_parser():
    parser = build_parser()
    add_loss_arguments(parser)  # as main.py does
    return parser


def parse(*argv):
    return full_parser().parse_args(list(argv))


# One valid command line per registry entry, with and without EE / Symm.
VALID = {
    "hphn_triplet": [[], ["--n_inner_pts=0"]],
    "triplet": [["--n_inner_pts=0"], ["--n_inner_pts=2"], ["--num_instances=3", "--batch_size=9", "--n_inner_pts=0"]],
    "lifted": [["--n_inner_pts=0"], ["--n_inner_pts=4"]],
    "npair": [["--n_inner_pts=0", "--num_instances=2"], ["--n_inner_pts=2", "--ee_l2norm=False", "--num_instances=2"]],
    "multi_similarity": [["--n_inner_pts=0"], ["--n_inner_pts=8"]],
    "angular": [["--n_inner_pts=0", "--num_instances=2"]],
    "symm_npair": [["--n_inner_pts=0", "--num_instances=2"]],
    "symm_angular": [["--n_inner_pts=0", "--num_instances=2", "--symm_norm=True"]],
    "symm_triplet": [["--n_inner_pts=0", "--num_instances=2"]],
    "symm_lifted": [["--n_inner_pts=0", "--num_instances=2"]],
    "norm_softmax": [["--n_inner_pts=0", "--num_instances=1"], ["--n_inner_pts=0", "--ps_mu=1", "--ns_scale=16"]],
    "proxy_nca": [["--n_inner_pts=0", "--num_instances=3", "--batch_size=9"], ["--n_inner_pts=0", "--ps_mu=0.5"]],
    "proxy_anchor": [["--n_inner_pts=0", "--num_instances=1", "--batch_size=1"],
                     ["--n_inner_pts=0", "--ps_mu=1", "--pa_alpha=16", "--pa_delta=0.2"]],
    "cosface": [["--n_inner_pts=0", "--cf_scale=30", "--cf_margin=0.2"], ["--n_inner_pts=0", "--ps_mu=1"]],
    "arcface": [["--n_inner_pts=0", "--af_margin=0.3"], ["--n_inner_pts=0", "--ps_mu=0.25"]],
}


def test_valid_cases_cover_the_registry():
    assert sorted(VALID) == sorted(LOSSES), "every registry entry needs a valid command line"


@pytest.mark.parametrize("name, extra", [(n, e) for n, lines in VALID.items() for e in lines],
                         ids=[f"{n}{i}" for n, lines in VALID.items() for i in range(len(lines))])
def test_build_loss_from_args_for_every_entry(name, extra):
    args = parse(f"--loss={name.replace('_', '-')}", *extra)
    block = build_loss_from_args(args)
    assert isinstance(block, LOSSES[name]), f"--loss={name} built {type(block).__name__}"
    assert check_loss_args(args) == name, "check_loss_args returns the canonical name"


def test_defaults_build_the_original_hphn_loss():
    block = build_loss_from_args(parse())
    assert isinstance(block, HPHNTripletLoss), f"default --loss built {block!r}"
    assert (block.margin, block.n_inner_pts, block.expansion.num_instances) == (1e-5, 2, 32), f"{block!r}"
    assert block.distinct_points is False, f"the default must be the release's HPHN form: {block!r}"


def test_hphn_distinct_points_flag_reaches_the_loss():
    block = build_loss_from_args(parse("--hphn_distinct_points=True"))
    assert block.distinct_points is True, f"--hphn_distinct_points=True built {block!r}"
    with pytest.raises(SystemExit):
        parse("--hphn_distinct_points=yes")  # str2bool: true/false/1/0 only


def test_flags_reach_the_losses():
    ms = build_loss_from_args(parse("--loss=multi_similarity", "--n_inner_pts=0", "--ms_alpha=3", "--ms_beta=40",
                                    "--ms_base=1.0", "--ms_epsilon=0.05"))
    assert (ms.alpha, ms.beta, ms.base, ms.epsilon) == (3.0, 40.0, 1.0, 0.05), f"{ms!r}"
    triplet = build_loss_from_args(parse("--loss=triplet", "--n_inner_pts=2", "--triplet_margin=0.3",
                                         "--triplet_squared=False", "--ee_l2norm=False"))
    assert (triplet.margin, triplet.squared, triplet.n_inner_pts, triplet.synthesis.l2_norm) == (0.3, False, 2, False)
    angular = build_loss_from_args(parse("--loss=angular", "--n_inner_pts=0", "--num_instances=2",
                                         "--angular_alpha=30", "--npair_reg=0.01", "--angular_weight=1.5"))
    assert (angular.alpha, angular.reg, angular.weight) == (30.0, 0.01, 1.5), f"{angular!r}"
    symm = build_loss_from_args(parse("--loss=symm_angular", "--n_inner_pts=0", "--num_instances=2",
                                      "--symm_ratio=1.5", "--symm_norm_ratio=0.5", "--symm_norm=True",
                                      "--symm_angular_weight=2"))
    s = symm.synthesis
    assert (s.symm_ratio, s.symm_norm_ratio, s.symm_norm, symm.weight) == (1.5, 0.5, True, 2.0), f"{symm!r}"
    lifted = build_loss_from_args(parse("--loss=symm_lifted", "--n_inner_pts=0", "--num_instances=2",
                                        "--lifted_margin=0.5"))
    assert lifted.margin == 0.5, f"{lifted!r}"


def test_paper_defaults():
    args = parse()
    got = {k: getattr(args, k) for k in ("triplet_margin", "triplet_squared", "lifted_margin", "npair_reg", "ms_alpha",
                                         "ms_beta", "ms_base", "ms_epsilon", "angular_alpha", "angular_weight",
                                         "symm_angular_weight", "symm_ratio", "symm_norm_ratio", "symm_norm",
                                         "lr_schedule", "lr_step_iters", "lr_fix_after_iters", "lr_fixed", "l2_reg",
                                         "embed_grad_mult")}
    assert got == dict(triplet_margin=0.2, triplet_squared=True, lifted_margin=1.0, npair_reg=0.002, ms_alpha=2.0,
                       ms_beta=50.0, ms_base=0.5, ms_epsilon=0.1, angular_alpha=45.0, angular_weight=2.0,
                       symm_angular_weight=1.0, symm_ratio=2.0, symm_norm_ratio=1.0, symm_norm=False,
                       lr_schedule="multifactor", lr_step_iters=5000, lr_fix_after_iters=15000, lr_fixed=1e-5,
                       l2_reg=0.0, embed_grad_mult=1.0), f"defaults {got}"


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--loss=angular", "--n_inner_pts=2", "--num_instances=2"], "does not combine with Embedding Expansion"),
        (["--loss=symm_npair", "--n_inner_pts=2", "--num_instances=2"], "does not combine with Embedding Expansion"),
        (["--loss=symm_triplet", "--n_inner_pts=0", "--num_instances=4"], "--num_instances must be 2"),
        (["--loss=symm_angular", "--n_inner_pts=0"], "--num_instances must be 2"),
        (["--loss=triplet", "--n_inner_pts=2", "--num_instances=3"], "must be even"),
        (["--loss=lifted", "--n_inner_pts=1", "--num_instances=5"], "must be even"),
        (["--loss=npair", "--num_instances=2"], "--ee_l2norm=False"),
        (["--loss=npair", "--n_inner_pts=0", "--num_instances=3"], "must be even"),
        (["--loss=hphn_triplet", "--n_inner_pts=0", "--num_instances=3"], "must be even"),
        (["--loss=tripplet"], "unknown --loss"),
        (["--loss=multi_similarity", "--n_inner_pts=0", "--ms_beta=0"], "--ms_beta"),
        (["--loss=angular", "--n_inner_pts=0", "--num_instances=2", "--angular_alpha=90"], "--angular_alpha"),
        (["--loss=triplet", "--n_inner_pts=0", "--triplet_margin=-1"], "--triplet_margin"),
        (["--l2_reg=-0.1"], "--l2_reg"),
        (["--embed_grad_mult=0"], "--embed_grad_mult"),
        (["--lr_step_iters=0"], "--lr_step_iters"),
        (["--n_inner_pts=-1"], "--n_inner_pts"),
    ],
)
def test_nonsense_combinations_are_refused(argv, fragment):
    args = parse(*argv)
    with pytest.raises(ValueError) as info:
        check_loss_args(args)
    message = str(info.value)
    assert fragment in message, f"{argv}: message {message!r} should mention {fragment!r}"
    assert "\n" not in message and message.endswith("."), f"expected one sentence, got {message!r}"
    with pytest.raises(ValueError):
        build_loss_from_args(args)


def test_normalisation_wanted():
    unnormalised = {"npair", "angular", "symm_npair", "symm_angular", "symm_triplet", "symm_lifted"}
    for name in LOSSES:
        assert loss_wants_normalized_embeddings(name) == (name not in unnormalised), f"{name}"
    assert loss_wants_normalized_embeddings("HPHN-Triplet"), "names are normalised"
    with pytest.raises(ValueError, match="unknown loss"):
        loss_wants_normalized_embeddings("nope")


def test_existing_flags_are_not_redefined():
    # argparse raises on a conflicting option string; also check nothing shadows options.py's flags.
    base = {a.dest for a in build_parser()._actions}
    added = {a.dest for a in full_parser()._actions} - base
    assert added, "add_loss_arguments added nothing"
    for dest in ("loss", "margin", "soft_margin", "n_inner_pts", "ee_l2norm", "alpha", "beta", "sigma",
                 "num_instances"):
        assert dest not in added, f"--{dest} must stay defined by train/options.py only"
    for action in full_parser()._actions:
        if action.dest in added:
            assert action.help, f"--{action.dest} needs a help sentence"


def test_add_loss_arguments_accepts_a_group():
    parser = argparse.ArgumentParser()
    group = parser.add_argument_group("loss")
    assert add_loss_arguments(group) is group, "flags go into the given group"
    assert parser.parse_args([]).ms_beta == 50.0, "flags usable from the parser"
    assert set(COMPAT_FLAG_HELP) == {"alpha", "beta", "sigma"}, "help sentences for the unused original flags"
