"""The proxy losses (norm_softmax, proxy_nca, proxy_anchor, cosface, arcface) and Proxy Synthesis against NumPy
references written from the papers' formulas (float64 loops): values, gradients with respect to the
embeddings and the proxies (central finite differences of the references), PS with the same drawn
partners and ratio, and the construction errors. (pytorch-metric-learning, which needs torch, is
compared in its own environment by tools/compare_pml.py; docs/losses.md shows its table.)"""
import math

import mxnet as mx
import numpy as np
import pytest

from loss import ArcFaceLoss, CosFaceLoss, NormSoftmaxLoss, ProxyAnchorLoss, ProxyNCALoss, get_loss
from loss.proxy_synthesis import draw_noise
from loss_helpers import finite_difference

CLASS_IDS = np.array([3, 7, 11, 20, 42])  # not 0 .. C-1: labels are looked up among them


def unit(v):
    return v / math.sqrt(float(np.dot(v, v)) + 1e-12)


# ------------------------------------------------------------------ references, one row at a time

def norm_softmax_ref(xs, ps, ys, scale=23.0):
    total = 0.0
    for x, y in zip(xs, ys):
        logits = [scale * np.dot(x, p) for p in ps]
        top = max(logits)
        total += -logits[y] + top + math.log(sum(math.exp(v - top) for v in logits))
    return total / len(xs)


def proxy_nca_ref(xs, ps, ys, scale=10.0):
    total = 0.0
    for x, y in zip(xs, ys):
        d = [scale * float(np.sum((x - p) ** 2)) for p in ps]
        others = [-d[z] for z in range(len(ps)) if z != y]
        top = max(others)
        total += d[y] + top + math.log(sum(math.exp(v - top) for v in others))
    return total / len(xs)


def proxy_anchor_ref(xs, ps, ys, alpha=32.0, delta=0.1):
    with_pos = sorted(set(ys))
    pos = sum(math.log(1 + sum(math.exp(-alpha * (np.dot(x, ps[c]) - delta)) for x, y in zip(xs, ys) if y == c))
              for c in with_pos)
    neg = sum(math.log(1 + sum(math.exp(alpha * (np.dot(x, ps[c]) + delta)) for x, y in zip(xs, ys) if y != c))
              for c in range(len(ps)))
    return pos / len(with_pos) + neg / len(ps)


def margin_softmax_ref(xs, ps, ys, scale, target_logit):
    """-log softmax of the target, whose logit is scale * target_logit(cos) (the others scale * cos)."""
    total = 0.0
    for x, y in zip(xs, ys):
        logits = [scale * (target_logit(np.dot(x, p)) if c == y else np.dot(x, p)) for c, p in enumerate(ps)]
        top = max(logits)
        total += -logits[y] + top + math.log(sum(math.exp(v - top) for v in logits))
    return total / len(xs)


def cosface_ref(xs, ps, ys, scale=64.0, margin=0.35):
    return margin_softmax_ref(xs, ps, ys, scale, lambda c: c - margin)


def arcface_ref(xs, ps, ys, scale=64.0, margin=0.5):
    def target(c):  # cos(theta + m) while theta + m <= pi, else the release's c - m sin(m)
        theta = math.acos(c)
        return math.cos(theta + margin) if theta + margin <= math.pi else c - margin * math.sin(margin)
    return margin_softmax_ref(xs, ps, ys, scale, target)


REFERENCES = {"norm_softmax": norm_softmax_ref, "proxy_nca": proxy_nca_ref, "proxy_anchor": proxy_anchor_ref,
              "cosface": cosface_ref, "arcface": arcface_ref}


def proxy_synthesis_ref(xs, ps, ys, noise, ratio, mu):
    """PS from the paper: for the first floor(mu B) rows i with a partner j(i) of another class
    (argmax of noise_ij over those), x^ = unit(r x_i + (1-r) x_j), p^ = unit(r p_yi + (1-r) p_yj),
    a new class; returns the enlarged rows, proxies and proxy indices."""
    xs, ps, ys = list(xs), list(ps), list(ys)
    batch = len(xs)
    for i in range(int(math.floor(mu * batch))):
        candidates = [j for j in range(batch) if ys[j] != ys[i]]
        if not candidates:
            continue
        j = max(candidates, key=lambda k: noise[i, k])
        xs.append(unit(ratio * xs[i] + (1 - ratio) * xs[j]))
        ps.append(unit(ratio * ps[ys[i]] + (1 - ratio) * ps[ys[j]]))
        ys.append(len(ps) - 1)
    return xs, ps, ys


def reference(name, x, proxies, labels, ps=None, **params):
    """The loss of raw embeddings ``x`` and raw ``proxies`` (normalised here), labels among CLASS_IDS."""
    xs, pv = [unit(v) for v in x], [unit(v) for v in proxies]
    ys = [int(np.where(CLASS_IDS == label)[0][0]) for label in labels]
    if ps is not None:
        xs, pv, ys = proxy_synthesis_ref(xs, pv, ys, *ps)
    return REFERENCES[name](xs, pv, ys, **params)


# ------------------------------------------------------------------------------------- helpers

def build(name, ps_mu=0.0, **params):
    block = get_loss(name, ps_mu=ps_mu, dtype="float64", **params)
    block.attach_classes(CLASS_IDS, 5)
    block.initialize(ctx=mx.cpu())
    return block


def mx_value_and_grads(block, x, proxies, labels, noise=None):
    block.proxies.set_data(mx.nd.array(proxies, dtype="float64"))
    xe = mx.nd.array(x, dtype="float64")
    xe.attach_grad()
    extra = () if noise is None else tuple(mx.nd.array(v, dtype="float64") for v in noise)
    with mx.autograd.record():
        value = block(xe, mx.nd.array(labels, dtype="int32"), *extra)
    value.backward()
    return value.asnumpy(), xe.grad.asnumpy(), block.proxies.grad().asnumpy()


def check_against_reference(name, block, x, proxies, labels, ps=None, **params):
    noise = None if ps is None else (ps[0], np.array([ps[1]]))
    value, grad_x, grad_p = mx_value_and_grads(block, x, proxies, labels, noise)
    assert value.shape == (1,), value.shape
    want = reference(name, x, proxies, labels, ps, **params)
    np.testing.assert_allclose(value[0], want, rtol=1e-9, err_msg=f"{name}: value")
    want_x = finite_difference(lambda v: reference(name, v, proxies, labels, ps, **params), x)
    want_p = finite_difference(lambda v: reference(name, x, v, labels, ps, **params), proxies)
    np.testing.assert_allclose(grad_x, want_x, rtol=1e-5, atol=1e-7, err_msg=f"{name}: d/d embeddings")
    np.testing.assert_allclose(grad_p, want_p, rtol=1e-5, atol=1e-7, err_msg=f"{name}: d/d proxies")


def random_case(seed, labels):
    rng = np.random.RandomState(seed)
    return rng.randn(len(labels), 5), rng.randn(len(CLASS_IDS), 5), np.asarray(labels)


# Class 42 is absent from the batch (Proxy-Anchor's positive term leaves it out, its negative
# term keeps it); the layout is the sampler's (runs of num_instances) or any.
LABELS = {"pairs": [3, 3, 7, 7, 20, 20], "mixed": [11, 3, 11, 7, 20, 3]}
PARAMS = {"norm_softmax": [{}, {"scale": 4.0}], "proxy_nca": [{}, {"scale": 3.0}],
          "proxy_anchor": [{}, {"alpha": 4.0, "delta": -0.2}], "cosface": [{}, {"scale": 5.0, "margin": 0.0}],
          "arcface": [{}, {"scale": 3.0, "margin": 1.2}]}
CASES = [(name, params, layout) for name in REFERENCES for params in PARAMS[name] for layout in LABELS]


@pytest.mark.parametrize("name, params, layout", CASES)
def test_value_and_gradients_match_the_paper(name, params, layout):
    x, proxies, labels = random_case(0, LABELS[layout])
    check_against_reference(name, build(name, **params), x, proxies, labels, **params)


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("mu", [1.0, 0.5])
def test_proxy_synthesis_matches_the_paper_on_the_same_draws(name, mu):
    x, proxies, labels = random_case(1, LABELS["pairs"])
    rng = np.random.RandomState(2)
    ps = (rng.uniform(size=(6, 6)), float(rng.beta(0.4, 0.4)), mu)
    check_against_reference(name, build(name, ps_mu=mu), x, proxies, labels, ps)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_proxy_synthesis_of_a_batch_of_one_class_adds_nothing(name):
    # No partner of another class: no synthetic class takes part, the loss is the plain one.
    x, proxies, labels = random_case(3, [7, 7, 7, 7])
    noise = (np.random.RandomState(4).uniform(size=(4, 4)), np.array([0.3]))
    value, _, _ = mx_value_and_grads(build(name, ps_mu=1.0), x, proxies, labels, noise)
    np.testing.assert_allclose(value[0], reference(name, x, proxies, labels), rtol=1e-9)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_ps_mu_zero_is_the_plain_loss(name):
    x, proxies, labels = random_case(5, LABELS["mixed"])
    block = build(name, ps_mu=0.0)
    assert block.ps is None, "ps_mu=0 builds no synthesis"
    value, _, _ = mx_value_and_grads(block, x, proxies, labels)
    np.testing.assert_allclose(value[0], reference(name, x, proxies, labels), rtol=1e-9)


def test_drawn_noise_is_reproducible_and_beta_distributed():
    np.random.seed(7)
    first = [a.asnumpy() for a in draw_noise(4, 0.4, mx.cpu())]
    np.random.seed(7)
    again = [a.asnumpy() for a in draw_noise(4, 0.4, mx.cpu())]
    assert all(np.array_equal(a, b) for a, b in zip(first, again)), "seeded draws repeat"
    assert first[0].shape == (4, 4) and first[1].shape == (1,)
    rng = np.random.RandomState(0)
    ratios = np.array([draw_noise(2, 0.4, mx.cpu(), "float64", rng=rng)[1].asscalar() for _ in range(3000)])
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)) = 0.139 for a = 0.4
    assert abs(ratios.mean() - 0.5) < 0.03 and abs(ratios.var() - 1 / (4 * 1.8)) < 0.02, (ratios.mean(), ratios.var())


def test_the_loss_draws_its_own_noise_from_numpys_generator():
    x, proxies, labels = random_case(6, LABELS["pairs"])
    block = build("norm_softmax", ps_mu=1.0)
    np.random.seed(11)
    drawn, _, _ = mx_value_and_grads(block, x, proxies, labels)
    np.random.seed(11)
    noise, ratio = draw_noise(6, 0.4, mx.cpu(), "float64")
    want = reference("norm_softmax", x, proxies, labels, (noise.asnumpy(), float(ratio.asscalar()), 1.0))
    np.testing.assert_allclose(drawn[0], want, rtol=1e-9)


@pytest.mark.parametrize("cls", [NormSoftmaxLoss, ProxyNCALoss, ProxyAnchorLoss, CosFaceLoss, ArcFaceLoss])
def test_construction_errors(cls):
    with pytest.raises(ValueError, match="ps_mu must be between 0 and 1"):
        cls(ps_mu=1.5)
    with pytest.raises(ValueError, match="does not combine with Embedding Expansion"):
        cls(n_inner_pts=2, num_instances=2)
    block = cls()
    with pytest.raises(ValueError, match="no proxies yet; call attach_classes"):
        block(mx.nd.ones((2, 3)), mx.nd.array([0, 1]))
    with pytest.raises(ValueError, match="distinct training class ids"):
        block.attach_classes([1, 1, 2], 3)
    block.attach_classes([1, 2], 3)
    with pytest.raises(ValueError, match="already has proxies"):
        block.attach_classes([1, 2], 3)
    assert cls(num_classes=4, embed_dim=3).proxies.shape == (4, 3)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_hybridized_with_synthesis_serves_any_batch_size(name):
    block = build(name, ps_mu=1.0)
    block.hybridize(static_alloc=True)
    for seed, labels in ((7, LABELS["pairs"]), (8, [3, 7, 11, 3]), (9, LABELS["mixed"])):
        x, proxies, labels = random_case(seed, labels)
        noise = np.random.RandomState(seed).uniform(size=(len(labels),) * 2)
        value, _, _ = mx_value_and_grads(block, x, proxies, labels, (noise, np.array([0.7])))
        np.testing.assert_allclose(value[0], reference(name, x, proxies, labels, (noise, 0.7, 1.0)), rtol=1e-9)
