"""Cross-check of the proxy losses against pytorch-metric-learning (PML), issue 23, in two processes.

    /work/main/.venv/bin/python -m tools.compare_pml dump --out DIR      # the project's venv (mxnet)
    /tmp/pmlvenv/bin/python tools/compare_pml.py compare --dir DIR       # a venv with torch and PML

PML needs torch, which cannot live beside mxnet and GluonCV, so mxnet and torch never share a
process. ``dump`` draws seeded cases (embeddings of various norms, labels that leave some classes
out, non-contiguous class ids, proxies), computes each project loss's value and its gradients with
respect to the raw embeddings and the raw proxies (mxnet autograd, float32), and writes
``DIR/manifest.json`` (the checks, parameters, values) and ``DIR/case_<name>.npz`` (inputs and
gradients). ``compare`` imports neither mxnet nor the project: it reads DIR, builds the PML loss of
each check with the matching parameters, sets its proxies to the same values, computes value and
gradients (torch autograd, float32, one thread) and prints a table; exit status 1 when a comparable
difference (value or gradient entry) exceeds ``TOLERANCE``.

The matching (PML 2.x): labels become the index of their class id among the sorted ids (PML wants
0 .. C-1); NormalizedSoftmaxLoss(temperature = 1 / scale), weights W (D, C) = proxies transposed
(PML normalises W's columns and the embeddings); ProxyAnchorLoss(alpha, margin = delta);
CosFaceLoss(margin, scale); ArcFaceLoss(margin in degrees, scale); every reduction a mean over
the batch but Proxy-Anchor's (sum over proxies / proxies with positives, / all proxies).

ProxyNCALoss(softmax_scale = s) keeps the positive proxy in the denominator, the project's
proxy_nca leaves it out. With q_i PML's softmax probability of the positive and r_i = -log q_i its
row loss, the project's row loss is -log(q_i / (1 - q_i)) = r_i + log(1 - exp(-r_i)); the
comparable check takes PML's rows (``DoNothingReducer``) through that map and averages, in
float64: the map's derivative 1 / (exp(r) - 1) magnifies float32's rounding of a small r (a row of
r = 4e-4 in float32 moves its term by 2e-4; the project's float32 value, which sums the others'
exponentials directly, has no such error). A second
check compares PML's ProxyNCALoss(s) with the project's norm_softmax at scale 2 s (equal on unit
vectors: -s |x - p|^2 = 2 s x.p - 2 s), and a third, PML's ProxyNCA as is against proxy_nca, is
printed but not comparable.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

TOLERANCE = 1e-4

# name -> (seed, batch, embedding dim, training class ids, class ids drawn in the batch, rows
# opposed to their proxy: there theta + m > pi, ArcFace's fallback branch)
CASES = {
    "small": (0, 6, 4, [3, 7, 11, 20, 42], [7, 20, 42], 0),
    "wide": (1, 12, 16, [2, 5, 9, 14, 23, 31, 40, 56, 71, 88], [5, 14, 23, 40, 71, 88], 0),
    "every": (2, 8, 8, [100, 101, 150, 199], [100, 101, 150, 199], 0),
    "opposed": (3, 8, 6, [1, 4, 9, 16, 25, 36], [4, 16, 25, 36], 4),
}

# check -> (project loss, its parameters, PML mapping, comparable); the mapping is read by compare.
CHECKS = {
    "norm_softmax": ("norm_softmax", {"scale": 23.0}, "normalized_softmax", True),
    "proxy_nca": ("proxy_nca", {"scale": 10.0}, "proxy_nca_positive_removed", True),
    "proxy_nca~pml_as_is": ("proxy_nca", {"scale": 10.0}, "proxy_nca", False),
    "norm_softmax@2s~pml_proxy_nca": ("norm_softmax", {"scale": 20.0}, "proxy_nca_half_scale", True),
    "proxy_anchor": ("proxy_anchor", {"alpha": 32.0, "delta": 0.1}, "proxy_anchor", True),
    "cosface": ("cosface", {"scale": 64.0, "margin": 0.35}, "cosface", True),
    "arcface": ("arcface", {"scale": 64.0, "margin": 0.5}, "arcface", True),
}


def draw_case(seed, batch, dim, class_ids, present, opposed=0):
    """Seeded inputs of one case: ``x`` (batch, dim) float32 of norms 0.5 .. 3, ``labels`` (batch,)
    class ids drawn from ``present`` (each at least once), ``class_ids`` (C,), ``proxies`` (C, dim);
    the first ``opposed`` rows point nearly away from their class's proxy (cosine below -0.9)."""
    rng = np.random.RandomState(seed)
    if batch < len(present):
        raise ValueError(f"a batch of {batch} cannot hold the {len(present)} classes drawn in it.")
    labels = np.concatenate([present, rng.choice(present, batch - len(present))])
    labels = rng.permutation(labels)
    proxies = rng.randn(len(class_ids), dim)
    x = rng.randn(batch, dim)
    own = proxies[np.searchsorted(class_ids, labels[:opposed])]
    x[:opposed] = -own / np.linalg.norm(own, axis=1, keepdims=True) + 0.05 * x[:opposed]
    x *= rng.uniform(0.5, 3.0, size=(batch, 1)) / np.linalg.norm(x, axis=1, keepdims=True)
    return {"x": x.astype(np.float32), "labels": labels.astype(np.int64),
            "class_ids": np.asarray(class_ids, dtype=np.int64), "proxies": proxies.astype(np.float32)}


# ---------------------------------------------------------------- dump: the project venv (mxnet)

def project_value_and_grads(loss_name, params, inputs):
    """The project loss ``loss_name`` (float32) on ``inputs``: (value, d/d x, d/d proxies)."""
    import mxnet as mx

    from loss import get_loss
    block = get_loss(loss_name, dtype="float32", **params)
    block.attach_classes(inputs["class_ids"], inputs["x"].shape[1])
    block.initialize(ctx=mx.cpu())
    block.proxies.set_data(mx.nd.array(inputs["proxies"], dtype="float32"))
    x = mx.nd.array(inputs["x"], dtype="float32")
    x.attach_grad()
    with mx.autograd.record():
        value = block(x, mx.nd.array(inputs["labels"], dtype="int32"))
    value.backward()
    return float(value.asnumpy()[0]), x.grad.asnumpy(), block.proxies.grad().asnumpy()


def dump(out, case_names):
    """Write the cases ``case_names``, the project's values and gradients to folder ``out``."""
    import mxnet as mx
    os.makedirs(out, exist_ok=True)
    manifest = {"mxnet": mx.__version__, "numpy": np.__version__, "tolerance": TOLERANCE, "cases": {}}
    for case in case_names:
        inputs = draw_case(*CASES[case])
        arrays, values = dict(inputs), {}
        for check, (loss_name, params, _, _) in CHECKS.items():
            value, grad_x, grad_p = project_value_and_grads(loss_name, params, inputs)
            values[check] = value
            arrays[f"{check}/grad_x"], arrays[f"{check}/grad_p"] = grad_x, grad_p
        np.savez(os.path.join(out, f"case_{case}.npz"), **arrays)
        manifest["cases"][case] = values
    manifest["checks"] = {check: {"loss": loss_name, "params": params, "pml": pml, "comparable": comparable}
                          for check, (loss_name, params, pml, comparable) in CHECKS.items()}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


# ------------------------------------------------------- compare: the PML venv (torch, no mxnet)

def pml_loss(kind, params, num_classes, dim):
    """The PML loss matching check kind ``kind`` of the project parameters ``params``, and whether
    its weights are laid out (D, C) (``W``) rather than (C, D) (``proxies``)."""
    from pytorch_metric_learning import losses, reducers
    size = dict(num_classes=num_classes, embedding_size=dim)
    if kind == "normalized_softmax":
        return losses.NormalizedSoftmaxLoss(temperature=1.0 / params["scale"], **size), True
    if kind in ("proxy_nca", "proxy_nca_positive_removed"):
        reducer = reducers.DoNothingReducer() if kind == "proxy_nca_positive_removed" else None
        return losses.ProxyNCALoss(softmax_scale=params["scale"], reducer=reducer, **size), False
    if kind == "proxy_nca_half_scale":
        return losses.ProxyNCALoss(softmax_scale=params["scale"] / 2, **size), False
    if kind == "proxy_anchor":
        return losses.ProxyAnchorLoss(alpha=params["alpha"], margin=params["delta"], **size), False
    if kind == "cosface":
        return losses.CosFaceLoss(margin=params["margin"], scale=params["scale"], **size), True
    if kind == "arcface":
        return losses.ArcFaceLoss(margin=math.degrees(params["margin"]), scale=params["scale"], **size), True
    raise ValueError(f"no PML loss for check kind {kind!r}.")


def pml_value_and_grads(kind, params, inputs):
    """PML's value and gradients (d/d x, d/d proxies (C, D)) of check kind ``kind`` on ``inputs``."""
    import torch
    class_ids, proxies = inputs["class_ids"], inputs["proxies"]
    loss_fn, transposed = pml_loss(kind, params, len(class_ids), proxies.shape[1])
    dtype = np.float64 if kind == "proxy_nca_positive_removed" else np.float32  # ill-conditioned map
    weights = loss_fn.W if transposed else loss_fn.proxies
    weights.data = torch.from_numpy(np.ascontiguousarray(proxies.T if transposed else proxies, dtype=dtype))
    x = torch.from_numpy(inputs["x"].astype(dtype)).requires_grad_(True)
    labels = torch.from_numpy(np.searchsorted(class_ids, inputs["labels"]))  # id -> index 0 .. C-1
    value = loss_fn(x, labels)
    if kind == "proxy_nca_positive_removed":
        rows = value["loss"]["losses"]
        if rows.shape[0] != x.shape[0]:
            raise ValueError(f"PML dropped {x.shape[0] - rows.shape[0]} rows of zero probability.")
        value = torch.mean(rows + torch.log(-torch.expm1(-rows)))
    value.backward()
    grad_p = weights.grad.numpy()
    return float(value.detach()), x.grad.numpy(), grad_p.T if transposed else grad_p


def compare_case(manifest, case, arrays):
    """Table rows of one case: (check, case, project, PML, |value diff|, max |grad diff|, status)."""
    rows = []
    inputs = {key: arrays[key] for key in ("x", "labels", "class_ids", "proxies")}
    for check, spec in manifest["checks"].items():
        ours = manifest["cases"][case][check]
        theirs, grad_x, grad_p = pml_value_and_grads(spec["pml"], spec["params"], inputs)
        grad_diff = max(float(np.max(np.abs(grad_x - arrays[f"{check}/grad_x"]))),
                        float(np.max(np.abs(grad_p - arrays[f"{check}/grad_p"]))))
        diff = abs(ours - theirs)
        bad = not (diff <= manifest["tolerance"] and grad_diff <= manifest["tolerance"])
        status = ("FAIL" if bad else "ok") if spec["comparable"] else "n/c"
        rows.append((check, case, ours, theirs, diff, grad_diff, status))
    return rows


def compare(folder):
    """Print the table of every case under ``folder``; True when no comparable check fails."""
    import pytorch_metric_learning
    import torch
    torch.set_num_threads(1)
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    print(f"torch {torch.__version__}, pytorch-metric-learning {pytorch_metric_learning.__version__}; "
          f"project dumped with mxnet {manifest['mxnet']}, float32; tolerance {manifest['tolerance']:g}")
    header = ("check", "case", "project", "PML", "abs diff", "max abs grad diff", "status")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    failed = False
    for case in manifest["cases"]:
        with np.load(os.path.join(folder, f"case_{case}.npz")) as arrays:
            for check, name, ours, theirs, diff, grad_diff, status in compare_case(manifest, case, arrays):
                failed = failed or status == "FAIL"
                print(f"| {check} | {name} | {ours:.6f} | {theirs:.6f} | {diff:.2e} | {grad_diff:.2e} | {status} |")
    return not failed


def main(argv=None):
    """``dump --out DIR [--cases ...]`` or ``compare --dir DIR``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="compare_pml", description=__doc__.split("\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    dump_step = steps.add_parser("dump", help="project values and gradients (project venv)")
    dump_step.add_argument("--out", required=True, help="folder to write")
    dump_step.add_argument("--cases", nargs="+", default=sorted(CASES), choices=sorted(CASES))
    compare_step = steps.add_parser("compare", help="PML's values and the table (PML venv)")
    compare_step.add_argument("--dir", required=True, help="a folder written by dump")
    args = parser.parse_args(argv)
    if args.step == "dump":
        manifest = dump(args.out, args.cases)
        print(f"wrote {len(manifest['cases'])} cases x {len(CHECKS)} checks to {args.out}")
        return 0
    if not os.path.isfile(os.path.join(args.dir, "manifest.json")):
        parser.error(f"{args.dir} holds no manifest.json; run the dump step first.")
    return 0 if compare(args.dir) else 1


if __name__ == "__main__":
    sys.exit(main())
