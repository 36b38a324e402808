"""A loss declares its capabilities; the factory reads them, so a new loss is one file + one line."""
import mxnet as mx
import numpy as np
import pytest

import loss
from loss import LOSSES, MetricLoss, wants_unit_embeddings
from loss.factory import build_loss_from_args, check_loss_args, ee_losses
from train.options import build_full_parser


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_registered_loss_declares_its_capabilities(name):
    cls = LOSSES[name]
    assert issubclass(cls, MetricLoss), "%s must derive from loss.base.MetricLoss" % name
    assert cls.loss_name == name, "%s declares loss_name %r" % (name, cls.loss_name)
    assert cls.pair_layout in (None, "pairs", "symm_pairs"), "%s pair_layout %r" % (name, cls.pair_layout)
    assert isinstance(cls.takes_ee, bool) and isinstance(cls.wants_unit_embeddings, bool), name
    assert not (cls.symmetrical and cls.takes_ee), "%s: Symm does not combine with EE" % name


def test_ee_losses_are_the_papers():
    assert ee_losses() == ("hphn_triplet", "triplet", "lifted", "npair", "multi_similarity"), ee_losses()


class _ToyLoss(MetricLoss):
    """Mean squared norm of the embeddings (a test-only loss)."""

    loss_name = "toy"
    pair_layout = "symm_pairs"
    wants_unit_embeddings = False

    def __init__(self, scale=1.0, num_instances=2, n_inner_pts=0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self._attach_synthesis(num_instances, n_inner_pts, l2_norm=False)

    @classmethod
    def options_from_flags(cls, args):
        return dict(scale=args.margin, num_instances=args.num_instances, n_inner_pts=args.n_inner_pts)

    def hybrid_forward(self, F, embeddings, labels):
        return self.scale * F.mean(F.sum(F.square(embeddings), axis=1), axis=0, keepdims=True)


def test_a_loss_registered_in_one_line_is_picked_up(monkeypatch):
    monkeypatch.setitem(LOSSES, "toy", _ToyLoss)
    args = build_full_parser().parse_args(["--loss=toy", "--n_inner_pts=0", "--num_instances=2", "--margin=3"])
    block = build_loss_from_args(args)
    assert isinstance(block, _ToyLoss) and block.scale == 3.0, "built from its own options_from_flags"
    assert not wants_unit_embeddings("toy"), "its normalisation is its own word"
    value = block(mx.nd.ones((4, 2)), mx.nd.array([0, 0, 1, 1])).asscalar()
    assert value == pytest.approx(6.0), "toy loss value %s" % value
    with pytest.raises(ValueError, match="--num_instances must be 2"):
        check_loss_args(build_full_parser().parse_args(["--loss=toy", "--n_inner_pts=0"]))
    with pytest.raises(ValueError, match="does not combine with Embedding Expansion"):
        check_loss_args(build_full_parser().parse_args(["--loss=toy", "--num_instances=2"]))
    assert "toy" in str(pytest.raises(ValueError, loss.get_loss, "nope").value), "listed among valid names"


# A command line per loss with its layout (Symm and pair losses: N classes x 2 images).
def _layout_flags(name):
    pairs = LOSSES[name].pair_layout is not None
    return ["--loss=" + name, "--n_inner_pts=0", "--num_instances=%d" % (2 if pairs else 4)]


PAIR_LOSSES = sorted(name for name, cls in LOSSES.items() if not cls.uses_proxies)
PROXY_LOSSES = sorted(name for name, cls in LOSSES.items() if cls.uses_proxies)


def test_the_proxy_losses_are_these():
    assert PROXY_LOSSES == ["arcface", "cosface", "norm_softmax", "proxy_anchor", "proxy_nca"], PROXY_LOSSES


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_every_pair_and_tuple_loss_needs_negatives(name):
    assert LOSSES[name].needs_negatives is True, "%s compares anchors with other classes" % name


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_a_proxy_loss_takes_one_class_unless_it_synthesises(name):
    # Its negatives are the other classes' proxies; Proxy Synthesis, though, mixes two classes.
    assert LOSSES[name].needs_negatives is False and LOSSES[name].pair_layout is None, name
    flags = ["--loss=" + name, "--n_inner_pts=0", "--num_instances=4", "--batch_size=4"]
    assert check_loss_args(build_full_parser().parse_args(flags)) == name
    with pytest.raises(ValueError, match=r"^--ps_mu > 0 \(Proxy Synthesis\) mixes .* pass --batch_size=8 or more, or --ps_mu=0\.$"):
        check_loss_args(build_full_parser().parse_args(flags + ["--ps_mu=1"]))
    assert check_loss_args(build_full_parser().parse_args(flags[:-1] + ["--batch_size=8", "--ps_mu=1"])) == name


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_a_batch_of_one_class_is_refused_for_a_loss_that_needs_negatives(name):
    flags = _layout_flags(name)
    num_instances = int(flags[-1].split("=")[1])
    one_class = build_full_parser().parse_args(flags + ["--batch_size=%d" % num_instances])
    with pytest.raises(ValueError) as error:
        check_loss_args(one_class)
    message = str(error.value)
    assert "\n" not in message, "one line: %r" % message
    for part in ("--batch_size %d" % num_instances, "--num_instances %d" % num_instances, "1 class",
                 "--loss=" + name, "--batch_size=%d" % (2 * num_instances)):
        assert part in message, "the message names %r: %s" % (part, message)
    two_classes = build_full_parser().parse_args(flags + ["--batch_size=%d" % (2 * num_instances)])
    assert check_loss_args(two_classes) == name, "two classes in a batch are accepted for %s" % name


@pytest.mark.parametrize("name", sorted(set(PAIR_LOSSES) - {"hphn_triplet"}))
def test_a_batch_of_one_class_teaches_these_losses_nothing(name):
    # Why the refusal: without a negative these losses are constant (gradient 0; npair_reg=0 leaves
    # out the N-pair regulariser, which is no metric). hphn_triplet in the release's form has a
    # gradient there, an artefact of its masked row maximum (its docstring).
    flags = _layout_flags(name)
    num_instances = int(flags[-1].split("=")[1])
    block = build_loss_from_args(build_full_parser().parse_args(
        flags + ["--batch_size=%d" % (2 * num_instances), "--npair_reg=0"]))
    rng = np.random.RandomState(0)
    x = rng.randn(num_instances, 8)
    x = mx.nd.array(x / np.linalg.norm(x, axis=1, keepdims=True), dtype="float64")
    x.attach_grad()
    with mx.autograd.record():
        value = block(x, mx.nd.zeros((num_instances,), dtype="float64"))
    value.backward()
    largest = float(mx.nd.abs(x.grad).max().asscalar())
    assert largest < 1e-5, "%s learns from a batch of one class: gradient up to %g" % (name, largest)


def test_a_loss_without_negatives_takes_a_batch_of_one_class(monkeypatch):
    monkeypatch.setitem(LOSSES, "toy", _ToyLoss)
    monkeypatch.setattr(_ToyLoss, "needs_negatives", False)
    args = build_full_parser().parse_args(["--loss=toy", "--n_inner_pts=0", "--num_instances=2", "--batch_size=2"])
    assert check_loss_args(args) == "toy", "a loss that declares needs_negatives=False is not refused"
