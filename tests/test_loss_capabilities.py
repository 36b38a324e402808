"""A loss declares its capabilities; the factory reads them, so a new loss is one file + one line."""
import mxnet as mx
import pytest

import loss
from loss import LOSSES, MetricLoss, wants_unit_embeddings
from loss.factory import build_loss_from_args, check_loss_args, ee_losses
from utils.options import build_full_parser


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
