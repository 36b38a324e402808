"""The loss registry: name normalisation, errors, and every registered loss hybridizing."""
import mxnet as mx
import numpy as np
import pytest

import loss
from loss import LOSSES, HPHNTripletLoss, get_loss, normalize_loss_name


@pytest.mark.parametrize("name", ["hphn_triplet", "hphn-triplet", "HPHN-Triplet", " hphn_TRIPLET "])
def test_names_are_normalised(name):
    assert normalize_loss_name(name) == "hphn_triplet", f"{name!r} normalised to {normalize_loss_name(name)!r}"
    assert isinstance(get_loss(name), HPHNTripletLoss), f"get_loss({name!r}) built the wrong class"


def test_registry_keys_are_normalised():
    for key in LOSSES:
        assert normalize_loss_name(key) == key, f"registry key {key!r} is not in normal form"


def test_get_loss_passes_keyword_arguments():
    block = get_loss("hphn-triplet", margin=1e-5, soft_margin=True, num_instances=32, n_inner_pts=2, l2_norm=False)
    got = (block.margin, block.soft_margin, block.expansion.num_instances, block.n_inner_pts, block.expansion.l2_norm)
    assert got == (1e-5, True, 32, 2, False), f"arguments not applied: {got}"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        get_loss("triplett")
    message = str(info.value)
    assert "'triplett'" in message, f"message should quote the bad name: {message!r}"
    for key in LOSSES:
        assert key in message, f"message should list valid name {key!r}: {message!r}"


@pytest.mark.parametrize("name", [None, 3])
def test_non_string_name_is_rejected(name):
    with pytest.raises(ValueError, match="string"):
        get_loss(name)


def test_public_surface():
    for attr in ("LOSSES", "get_loss", "normalize_loss_name", "EmbeddingExpansion", "HPHNTripletLoss",
                 "pairwise_euclidean", "same_label_mask", "SymmetricalSynthesis", "TripletSemiHardLoss",
                 "LiftedStructuredLoss", "NPairLoss", "MultiSimilarityLoss", "AngularLoss", "SymmNPairLoss",
                 "SymmAngularLoss", "SymmTripletLoss", "SymmLiftedLoss", "NormSoftmaxLoss",
                 "ProxyNCALoss", "ProxyAnchorLoss", "ProxySynthesis"):
        assert hasattr(loss, attr), f"loss package should export {attr}"


# Every registry entry with valid keyword arguments: its defaults, and EE / Symm variants. Layout:
# num_instances consecutive rows per class (the sampler's), batch sizes 8 and 16.
CASES = [(name, {}, 2) for name in sorted(LOSSES)] + [
    ("hphn_triplet", dict(num_instances=4, n_inner_pts=2), 4),
    ("triplet", dict(num_instances=4, n_inner_pts=2), 4),
    ("triplet", dict(squared=False, n_inner_pts=1), 2),
    ("lifted", dict(num_instances=4, n_inner_pts=2), 4),
    ("npair", dict(num_instances=2, n_inner_pts=2, l2_norm=False), 2),
    ("npair", dict(num_instances=4), 4),
    ("multi_similarity", dict(num_instances=4, n_inner_pts=2), 4),
    ("angular", dict(num_instances=4), 4),
    ("symm_npair", dict(symm_norm=True, symm_ratio=1.5), 2),
    ("symm_angular", dict(symm_norm=True, symm_norm_ratio=0.5), 2),
    ("symm_triplet", dict(symm_norm=True), 2),
    ("symm_lifted", dict(symm_ratio=1.5), 2),
    ("norm_softmax", dict(num_instances=1), 1),
    ("proxy_anchor", dict(num_instances=4), 4),
]


def test_cases_cover_the_registry():
    assert sorted({name for name, _, _ in CASES}) == sorted(LOSSES), "every registry entry needs a case"


@pytest.mark.parametrize("name, kwargs, num_instances", CASES,
                         ids=[f"{n}-{'-'.join(f'{k}{v}' for k, v in kw.items()) or 'defaults'}" for n, kw, _ in CASES])
@pytest.mark.parametrize("ctx", [mx.cpu(0), mx.cpu(1)], ids=str)
def test_every_registered_loss_hybridizes(name, kwargs, num_instances, ctx):
    # One block hybridized with static_alloc and static_shape serves batch sizes 8, 16 and 8 again,
    # and gives the imperative block's values and gradients.
    imperative, hybrid = get_loss(name, **kwargs), get_loss(name, **kwargs)
    if LOSSES[name].uses_proxies:  # 8 classes (the labels 0..7 below), the same proxies in both
        for block in (imperative, hybrid):
            block.attach_classes(np.arange(8), 12)
            block.initialize(ctx=ctx)
        hybrid.proxies.set_data(imperative.proxies.data(ctx))
    hybrid.hybridize(static_alloc=True, static_shape=True)
    rng = np.random.RandomState(0)
    for batch in (8, 16, 8):
        x = rng.randn(batch, 12)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        y = np.repeat(np.arange(batch // num_instances), num_instances).astype("int32")
        results = []
        for block in (imperative, hybrid):
            xe = mx.nd.array(x, ctx=ctx)
            xe.attach_grad()
            with mx.autograd.record():
                values = block(xe, mx.nd.array(y, ctx=ctx, dtype="int32"))
            values.backward()
            assert values.context == ctx, f"{name}: output on {values.context}, expected {ctx}"
            results.append((values.asnumpy(), xe.grad.asnumpy()))
        (want, want_grad), (got, got_grad) = results
        assert np.isfinite(got).all() and np.isfinite(got_grad).all(), f"{name}: non-finite output at B={batch}"
        assert np.abs(got_grad).sum() > 0, f"{name}: no gradient at all at B={batch}"
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{name}: values at B={batch}")
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-6, err_msg=f"{name}: gradients at B={batch}")
