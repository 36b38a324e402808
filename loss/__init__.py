"""Metric-learning losses as Gluon HybridBlocks, and their registry.

Usage::

    from loss import get_loss
    loss_fn = get_loss("hphn-triplet", margin=1e-5, num_instances=32, n_inner_pts=2)
    loss_fn.hybridize(static_alloc=True, static_shape=True)
    values = loss_fn(embeddings, labels)  # (B,); train on values.sum() / backward() of the vector

Every loss returns a vector whose sum is the training objective: (B,) per-anchor values for
``hphn_triplet`` (the original's convention), (1,) for the batch-level losses.

The proxy losses (``norm_softmax``, ``proxy_nca``, ``proxy_anchor``, ``cosface``, ``arcface``;
:class:`loss.proxy_base.ProxyLoss`) hold one learned proxy per training class, made once the
classes are known (``loss_fn.attach_classes(class_ids, embed_dim)``, then
``loss_fn.initialize(ctx=...)``), and take Proxy Synthesis (``ps_mu > 0``, :mod:`loss.proxy_synthesis`).

Where things are: each loss in its own file, with its flags (``flags``, declared there) and its
capabilities (:class:`loss.base.MetricLoss`: ``takes_ee``, ``pair_layout``,
``wants_unit_embeddings``, ``needs_negatives``); the layout rules those impose in
:mod:`loss.layout`; the flags gathered into a parser, with their ranges checked, in
:mod:`loss.flags`; a loss built from parsed flags in :mod:`loss.factory`. Adding a loss is its file
and one line in ``LOSSES`` (docs/extending.md).
"""
from utils.flags import registry_key

from .angular import AngularLoss
from .arcface import ArcFaceLoss
from .base import MetricLoss
from .cosface import CosFaceLoss
from .distance import pairwise_euclidean, same_label_mask
from .embedding_expansion import EmbeddingExpansion
from .hphn_triplet import HPHNTripletLoss
from .lifted import LiftedStructuredLoss
from .multi_similarity import MultiSimilarityLoss
from .norm_softmax import NormSoftmaxLoss
from .npair import NPairLoss
from .proxy_anchor import ProxyAnchorLoss
from .proxy_base import ProxyLoss
from .proxy_nca import ProxyNCALoss
from .proxy_synthesis import ProxySynthesis
from .symm_angular import SymmAngularLoss
from .symm_lifted import SymmLiftedLoss
from .symm_npair import SymmNPairLoss
from .symm_triplet import SymmTripletLoss
from .symmetrical_synthesis import SymmetricalSynthesis
from .triplet import TripletSemiHardLoss

__all__ = [
    "LOSSES",
    "AngularLoss",
    "ArcFaceLoss",
    "CosFaceLoss",
    "EmbeddingExpansion",
    "HPHNTripletLoss",
    "LiftedStructuredLoss",
    "MetricLoss",
    "MultiSimilarityLoss",
    "NPairLoss",
    "NormSoftmaxLoss",
    "ProxyAnchorLoss",
    "ProxyLoss",
    "ProxyNCALoss",
    "ProxySynthesis",
    "SymmAngularLoss",
    "SymmLiftedLoss",
    "SymmNPairLoss",
    "SymmTripletLoss",
    "SymmetricalSynthesis",
    "TripletSemiHardLoss",
    "get_loss",
    "loss_class",
    "normalize_loss_name",
    "pairwise_euclidean",
    "same_label_mask",
    "wants_unit_embeddings",
]

LOSSES = {
    "hphn_triplet": HPHNTripletLoss,
    "triplet": TripletSemiHardLoss,
    "lifted": LiftedStructuredLoss,
    "npair": NPairLoss,
    "multi_similarity": MultiSimilarityLoss,
    "angular": AngularLoss,
    "symm_npair": SymmNPairLoss,
    "symm_angular": SymmAngularLoss,
    "symm_triplet": SymmTripletLoss,
    "symm_lifted": SymmLiftedLoss,
    "norm_softmax": NormSoftmaxLoss,
    "proxy_nca": ProxyNCALoss,
    "proxy_anchor": ProxyAnchorLoss,
    "cosface": CosFaceLoss,
    "arcface": ArcFaceLoss,
}


def normalize_loss_name(name):
    """Canonical registry key: lower case, surrounding spaces dropped, '-' read as '_'.

    >>> normalize_loss_name("HPHN-Triplet")
    'hphn_triplet'
    """
    if not isinstance(name, str):
        raise ValueError(f"loss name must be a string, got {name!r}.")
    return registry_key(name)


def loss_class(name):
    """The class registered under ``name`` (see :func:`normalize_loss_name`).

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the valid names.
    """
    key = normalize_loss_name(name)
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))}.")
    return LOSSES[key]


def get_loss(name, **kwargs):
    """Build the loss registered under ``name`` (see :func:`loss_class`) with ``kwargs``."""
    return loss_class(name)(**kwargs)


def wants_unit_embeddings(name):
    """True when loss ``name`` trains on L2-normalised embeddings (the network's head normalises);
    False for npair, angular and symm_*. Evaluation L2-normalises in either case."""
    return loss_class(name).wants_unit_embeddings
