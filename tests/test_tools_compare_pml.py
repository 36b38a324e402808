"""tools.compare_pml's dump step (the half that runs in the project's venv; the compare half needs
torch and pytorch-metric-learning, which do not live here): the files it writes, their shapes,
finite values, and that each recorded project value and gradient is a fresh computation's."""
import json
import os

import mxnet as mx
import numpy as np

from loss import get_loss
from tools import compare_pml

INPUTS = ("x", "labels", "class_ids", "proxies")


def fresh(loss_name, params, case):
    """The loss, built here as tests/test_loss_proxy.py builds it, on the case's inputs."""
    block = get_loss(loss_name, dtype="float32", **params)
    block.attach_classes(case["class_ids"], case["x"].shape[1])
    block.initialize(ctx=mx.cpu())
    block.proxies.set_data(mx.nd.array(case["proxies"]))
    x = mx.nd.array(case["x"])
    x.attach_grad()
    with mx.autograd.record():
        value = block(x, mx.nd.array(case["labels"], dtype="int32"))
    value.backward()
    return value.asnumpy()[0], x.grad.asnumpy(), block.proxies.grad().asnumpy()


def test_dump_writes_the_inputs_and_the_projects_values(tmp_path):
    out = str(tmp_path / "dump")
    assert compare_pml.main(["dump", "--out", out, "--cases", "small"]) == 0
    assert sorted(os.listdir(out)) == ["case_small.npz", "manifest.json"]
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    assert list(manifest["cases"]) == ["small"] and set(manifest["checks"]) == set(compare_pml.CHECKS)
    _, batch, dim, class_ids, present, _ = compare_pml.CASES["small"]
    with np.load(os.path.join(out, "case_small.npz")) as arrays:
        case = {key: arrays[key] for key in arrays.files}
    assert case["x"].shape == (batch, dim) and case["proxies"].shape == (len(class_ids), dim)
    assert list(case["class_ids"]) == class_ids and set(case["labels"]) == set(present)
    assert set(present) < set(class_ids), "some training classes are absent from the batch"
    for check, spec in manifest["checks"].items():
        value, grad_x, grad_p = fresh(spec["loss"], spec["params"], case)
        recorded = manifest["cases"]["small"][check]
        assert np.isfinite(recorded) and recorded == value, (check, recorded, value)
        assert case[f"{check}/grad_x"].shape == (batch, dim), check
        assert case[f"{check}/grad_p"].shape == (len(class_ids), dim), check
        assert np.all(np.isfinite(case[f"{check}/grad_x"])) and np.all(np.isfinite(case[f"{check}/grad_p"]))
        np.testing.assert_array_equal(case[f"{check}/grad_x"], grad_x, err_msg=check)
        np.testing.assert_array_equal(case[f"{check}/grad_p"], grad_p, err_msg=check)


def test_the_same_seed_draws_the_same_case():
    first, again = (compare_pml.draw_case(*compare_pml.CASES["opposed"]) for _ in range(2))
    assert all(np.array_equal(first[key], again[key]) for key in INPUTS)
    x = first["x"] / np.linalg.norm(first["x"], axis=1, keepdims=True)
    p = first["proxies"] / np.linalg.norm(first["proxies"], axis=1, keepdims=True)
    own = np.sum(x * p[np.searchsorted(first["class_ids"], first["labels"])], axis=1)
    assert np.all(own[:4] < np.cos(np.pi - 0.5)), "the opposed rows reach ArcFace's fallback branch"
