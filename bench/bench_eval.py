"""Evaluation benchmark (issue 4): blocked exact kNN metrics and k-means NMI at SOP / CARS size.

    .venv/bin/python bench/bench_eval.py [--quick] [--part sop,cars,nmi]

Prints figures, asserts nothing. (a) SOP size (60,502 x 512, 11,316 classes of 2-12 images):
R@1/10/100/1000 + MAP@R + RP vs the bare blocked N x N x 512 matrix product in the same process;
run in a subprocess so that peak RSS is ru_maxrss of RUSAGE_CHILDREN. (b) CARS196 size
(8,131 x 512, 98 classes): all metrics vs a naive full N x N distance matrix + argsort. (c) NMI /
F1 at SOP size with the chosen k-means (--cluster-backend: auto = sklearn, or faiss).

The machine may be shared: the load average is printed first; compare ratios measured in the
same run rather than absolute times.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils import metrics as M  # noqa: E402
from utils.metrics import knn_search  # noqa: E402
from utils.metrics.clustering import CLUSTER_BACKENDS  # noqa: E402
from utils.metrics.knn_search import KNN_BACKENDS  # noqa: E402
from utils.metrics.names import DEFAULT_RECALLK  # noqa: E402


def sop_like_labels(num, rng):
    """SOP-like labels: round(num * 11316 / 60502) classes (11,316 at full size) of 2-12 images,
    skewed towards small classes like SOP (mean 5.35)."""
    n_classes = int(round(num * 11316 / 60502))
    sizes = np.clip(1 + rng.geometric(1.0 / (num / n_classes - 1.0), size=n_classes), 2, 12)
    while sizes.sum() != num:  # fix the total within [2, 12]
        i = int(rng.integers(n_classes))
        if sizes.sum() < num and sizes[i] < 12:
            sizes[i] += 1
        elif sizes.sum() > num and sizes[i] > 2:
            sizes[i] -= 1
    return np.repeat(np.arange(n_classes), sizes)


def unit_vectors(num, dim, rng, labels=None, signal=0.0):
    x = rng.standard_normal((num, dim), dtype=np.float32)
    if labels is not None and signal:
        x += signal * rng.standard_normal((labels.max() + 1, dim), dtype=np.float32)[labels]
    return M.l2_normalize(x)


def bare_matmul(x, block_size):
    buf = np.empty((min(block_size, len(x)), len(x)), dtype=np.float32)
    t = time.perf_counter()
    for start in range(0, len(x), block_size):
        stop = min(start + block_size, len(x))
        np.matmul(x[start:stop], x.T, out=buf[: stop - start])
    return time.perf_counter() - t


def sop_child(num, dim, knn):
    rng = np.random.default_rng(0)
    labels = sop_like_labels(num, rng)
    x = unit_vectors(num, dim, rng, labels, signal=0.5)
    block = knn_search._auto_block_size(num, None)
    t_mm = bare_matmul(x, block)
    ks = [k for k in (1, 10, 100, 1000) if k < num]
    t = time.perf_counter()
    res = M.retrieval_metrics(x, labels, ks, knn=knn)
    t_eval = time.perf_counter() - t
    print(json.dumps({"n": num, "classes": int(labels.max() + 1), "block": block, "t_matmul": t_mm,
                      "t_eval": t_eval, "metrics": res}))


def run_sop(args):
    cmd = [sys.executable, os.path.abspath(__file__), "--sop-child", str(args.sop_n), "--knn", args.knn]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    info = json.loads(out.strip().splitlines()[-1])
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB
    print("(a) SOP size %d x 512, %d classes, knn=%s, block=%d" % (info["n"], info["classes"], args.knn, info["block"]))
    print("    bare blocked matmul N x N x 512 : %.2f s" % info["t_matmul"])
    print("    retrieval_metrics (R@1/10/100/1000, MAP@R, RP): %.2f s   ratio %.2fx (goal <= 2x)"
          % (info["t_eval"], info["t_eval"] / info["t_matmul"]))
    print("    peak RSS of the child process: %.2f GiB (goal < 3 GiB)" % rss)
    print("    metrics: %s" % {k: round(v, 4) for k, v in info["metrics"].items()})


def naive_eval(x, labels, ks):
    """Original-evaluator style: full N x N distance matrix, argsort of every row."""
    sq = np.sum(x * x, axis=1)
    d = sq[:, None] + sq[None, :] - 2 * x @ x.T
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1)
    rel = labels[order] == labels[:, None]
    out = {"R@%d" % k: float(rel[:, :k].any(axis=1).mean()) for k in ks}
    r = np.bincount(labels)[labels] - 1
    aps = []
    for i in range(len(x)):
        if r[i]:
            ri = rel[i, : r[i]]
            aps.append(np.sum(np.cumsum(ri) / np.arange(1, r[i] + 1) * ri) / r[i])
    out["MAP@R"] = float(np.mean(aps))
    return out


def run_cars(args):
    rng = np.random.default_rng(1)
    num = args.cars_n
    labels = np.sort(rng.integers(0, 98, size=num))
    labels = np.unique(labels, return_inverse=True)[1]
    x = unit_vectors(num, 512, rng, labels, signal=0.3)
    ks = DEFAULT_RECALLK
    t = time.perf_counter()
    naive = naive_eval(x, labels, ks)
    t_naive = time.perf_counter() - t
    t = time.perf_counter()
    ret = M.retrieval_metrics(x, labels, ks, knn=args.knn)
    t_ret = time.perf_counter() - t
    t = time.perf_counter()
    full = M.evaluate_embeddings(x, labels, ks, knn=args.knn, cluster_backend=args.cluster_backend)
    t_all = time.perf_counter() - t
    print("(b) CARS size %d x 512, %d classes, knn=%s" % (num, labels.max() + 1, args.knn))
    print("    naive N x N matrix + argsort (R@k, MAP@R): %.2f s" % t_naive)
    print("    retrieval_metrics (R@k, MAP@R, RP): %.2f s   ratio naive/new %.2fx" % (t_ret, t_naive / t_ret))
    print("    evaluate_embeddings (all metrics, cluster_backend=%s): %.2f s" % (args.cluster_backend, t_all))
    print("    naive: %s" % {k: round(v, 4) for k, v in naive.items()})
    print("    new  : %s" % {k: round(v, 4) for k, v in full.items()})


def run_nmi(args):
    rng = np.random.default_rng(2)
    labels = sop_like_labels(args.sop_n, rng)
    x = unit_vectors(args.sop_n, 512, rng, labels, signal=0.5)
    k = int(labels.max() + 1)
    backend = "sklearn" if args.cluster_backend == "auto" else args.cluster_backend
    t = time.perf_counter()
    ids = M.cluster(x, k, backend=backend, niter=args.niter)
    t_km = time.perf_counter() - t
    t = time.perf_counter()
    v_nmi, v_f1 = M.nmi(ids, labels), M.pairwise_f1(ids, labels)
    t_m = time.perf_counter() - t
    print("(c) k-means at SOP size %d x 512 -> %d clusters, backend=%s, niter=%d: %.1f s; NMI+F1 %.3f s"
          % (args.sop_n, k, backend, args.niter, t_km, t_m))
    print("    NMI %.4f  F1 %.4f" % (v_nmi, v_f1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    p.add_argument("--part", default="sop,cars,nmi")
    p.add_argument("--knn", default="numpy", choices=KNN_BACKENDS)
    p.add_argument("--cluster-backend", default="auto", choices=CLUSTER_BACKENDS)
    p.add_argument("--niter", type=int, default=10)
    p.add_argument("--sop-child", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sop_child:
        return sop_child(args.sop_child, 512, args.knn)
    args.sop_n, args.cars_n = (6000, 1500) if args.quick else (60502, 8131)
    t_start = time.perf_counter()
    print("OMP_NUM_THREADS=%s, faiss installed: %s, load average %s"
          % (os.environ.get("OMP_NUM_THREADS", "<unset>"), knn_search._faiss(required=False) is not None,
             " ".join("%.2f" % v for v in os.getloadavg())))
    parts = args.part.split(",")
    if "sop" in parts:
        run_sop(args)
    if "cars" in parts:
        run_cars(args)
    if "nmi" in parts:
        run_nmi(args)
    print("total bench time %.0f s" % (time.perf_counter() - t_start))


if __name__ == "__main__":
    main()
