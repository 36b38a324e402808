"""Evaluate a trained network, or stored embeddings, on the test split of a dataset.

    # parameters saved by main.py; backbone, embed_dim and image_size come from the args.json
    # beside them, the dataset too unless --data_name / --data_dir are given
    python3 evaluate.py --checkpoint results/demo/model_last.params --data_name demo --gpu_idx=-1

    # embeddings stored earlier (--save_embeddings, or any (N, D) .npy with (N,) labels)
    python3 evaluate.py --embeddings emb.npy --labels emb.labels.npy --recallk 1,10,100,1000

The whole test split is both query set and gallery, and a query never retrieves itself
(``utils.metrics``); embeddings are L2-normalised first, as during training. Every metric is
printed and written to JSON: ``--out``, or ``<checkpoint stem>_metrics.json`` beside the
checkpoint (``<embeddings stem>_metrics.json`` beside stored embeddings). Bad input gives one
line ``error: ...`` on stderr and exit code 2.
"""
import sys

from utils.environment import check_numpy_version

check_numpy_version()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import data  # noqa: E402
from utils import run_folder  # noqa: E402
from utils.errors import one_line  # noqa: E402
from utils.devices import resolve_contexts  # noqa: E402
from utils.engine import embed_dataset, warn_non_finite  # noqa: E402
from utils.metrics import FAISS_MISSING, evaluate_embeddings, l2_normalize  # noqa: E402
from utils.options import EVAL_METRICS, int_list, str2bool  # noqa: E402

logger = logging.getLogger("ee_gluon.evaluate")

DEFAULT_RECALLK = (1, 2, 4, 8)  # the original's --recallk, when no dataset says otherwise
SYMBOL_SUFFIX = "-symbol.json"


class _OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one ``error: ...`` line (no usage block), exit code 2."""

    def error(self, message):
        self.exit(2, "error: %s (see python3 evaluate.py --help)\n" % message)


def eval_metric_list(value):
    """'recall,nmi' → ['recall', 'nmi'], checked against ``EVAL_METRICS`` (any subset)."""
    items = [part.strip().lower() for part in str(value).split(",") if part.strip()]
    unknown = [item for item in items if item not in EVAL_METRICS]
    if unknown or not items:
        raise argparse.ArgumentTypeError(
            "unknown metric %r; choose from %s" % (unknown[0] if unknown else value, ",".join(EVAL_METRICS))
        )
    return list(dict.fromkeys(items))


def build_parser():
    parser = _OneLineParser(
        prog="python3 evaluate.py",
        description="Evaluate a trained ee-gluon network (or stored embeddings) on a test split: "
                    "Recall@K, MAP@R, R-precision, NMI, F1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    source = parser.add_argument_group("what to evaluate")
    source.add_argument("--checkpoint", default=None,
                        help="parameters saved by main.py (model_last.params, model_best.params, "
                             "checkpoint-*.params) or an exported PREFIX-symbol.json")
    source.add_argument("--embeddings", default=None,
                        help="instead of a network: an (N, D) .npy of embeddings, with --labels")
    source.add_argument("--labels", default=None, help="the (N,) .npy of labels of --embeddings")

    net = parser.add_argument_group("network (default: the args.json beside --checkpoint)")
    net.add_argument("--backbone", default=None, help="backbone the checkpoint was trained with")
    net.add_argument("--embed_dim", default=None, type=int, help="embedding size of the checkpoint")
    net.add_argument("--image_size", default=None, type=int, help="side the test images are resized to")
    net.add_argument("--gpu_idx", default=None,
                     help="nothing: GPU 0 if visible else CPU; -1: CPU; 0,1: split batches over GPUs")

    dataset = parser.add_argument_group("data")
    dataset.add_argument("--data_name", default=None,
                         help="dataset whose test split is evaluated (%s; default: the one in "
                              "args.json)" % ", ".join(sorted(data.DATASETS)))
    dataset.add_argument("--data_dir", default=None,
                         help="dataset directory (default: the one in args.json when --data_name "
                              "is that run's, else the dataset's default)")
    dataset.add_argument("--batch_size", default=64, type=int, help="images per forward pass")
    dataset.add_argument("--num_workers", default=2, type=int,
                         help="image decoding worker processes (0 = decode in this process)")

    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--recallk", default=None, type=int_list,
                            help="ranks K of Recall@K (default: the dataset's, 1,2,4,8 or "
                                 "1,10,100,1000 for SOP; 1,2,4,8 for stored embeddings without "
                                 "--data_name)")
    evaluation.add_argument("--eval_metrics", default=list(EVAL_METRICS), type=eval_metric_list,
                            help="comma-separated metrics from %s; nmi and f1 run k-means (slow on "
                                 "SOP)" % ",".join(EVAL_METRICS))
    evaluation.add_argument("--knn", default="numpy", choices=["numpy", "faiss"],
                            help="exact nearest-neighbour backend (faiss only when installed)")
    evaluation.add_argument("--cluster_backend", default="auto", choices=["auto", "sklearn", "faiss"],
                            help="k-means of nmi and f1: auto and sklearn use scikit-learn, faiss needs faiss-cpu")

    output = parser.add_argument_group("output")
    output.add_argument("--out", default=None,
                        help="metrics JSON (default: <checkpoint or embeddings stem>_metrics.json "
                             "beside it)")
    output.add_argument("--save_embeddings", default=None,
                        help="also store the L2-normalised test embeddings in this .npy, with the "
                             "labels in <stem>.labels.npy and the image paths in <stem>.paths.txt "
                             "(reusable by --embeddings and by embed.py --gallery_embeddings)")
    output.add_argument("--progress", default=True, type=str2bool, help="show a progress bar")
    return parser


def validate_args(args):
    """Cross-flag checks; one-line ValueErrors."""
    if args.checkpoint is not None and (args.embeddings is not None or args.labels is not None):
        raise ValueError("pass either --checkpoint (evaluate a network) or --embeddings with --labels, "
                         "not both")
    if args.checkpoint is None:
        if args.embeddings is None and args.labels is None:
            raise ValueError("nothing to evaluate: pass --checkpoint PATH, or --embeddings E.npy "
                             "--labels L.npy")
        if args.embeddings is None or args.labels is None:
            raise ValueError("--embeddings and --labels go together: pass both .npy files")
        if args.save_embeddings is not None:
            raise ValueError("--save_embeddings stores the embeddings of a --checkpoint; stored "
                             "embeddings are already in %s" % args.embeddings)
        for name in ("backbone", "embed_dim", "image_size", "gpu_idx"):
            if getattr(args, name) is not None:
                raise ValueError("--%s applies to --checkpoint only, not to stored embeddings" % name)
    if args.save_embeddings is not None and not args.save_embeddings.endswith(".npy"):
        raise ValueError("--save_embeddings must name a .npy file, got %s" % args.save_embeddings)
    for name, low in (("batch_size", 1), ("num_workers", 0)):
        if getattr(args, name) < low:
            raise ValueError("--%s must be at least %d, got %d" % (name, low, getattr(args, name)))
    for name in ("embed_dim", "image_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError("--%s must be a positive integer, got %d" % (name, getattr(args, name)))
    if args.recallk is not None and min(args.recallk) < 1:
        raise ValueError("--recallk must list positive ranks, got %s" % ",".join(map(str, args.recallk)))
    if args.data_name is not None:
        data.resolve_dataset(args.data_name)
    wants_faiss = args.knn == "faiss" or (
        args.cluster_backend == "faiss" and {"nmi", "f1"} & set(args.eval_metrics))
    if wants_faiss:
        try:
            importlib.import_module("faiss")
        except ImportError:
            raise ValueError(FAISS_MISSING) from None
    return args


# ---------------------------------------------------------------------------------------- inputs

def _run_arguments(checkpoint):
    """The args.json main.py wrote beside ``checkpoint`` ({} when there is none)."""
    return run_folder.args_beside(checkpoint)[1]


def _dataset_of_run(args, saved):
    """``(data_name, data_dir)``: the flags, else the run's (its data_dir only for its dataset)."""
    data_name = args.data_name or saved.get("data_name")
    if data_name is None:
        raise ValueError("which test split? pass --data_name (%s); no args.json beside %s names one"
                         % (", ".join(sorted(data.DATASETS)), args.checkpoint))
    data_dir = args.data_dir
    if data_dir is None and saved.get("data_name") and saved.get("data_dir"):
        same = data.resolve_dataset(data_name) is data.resolve_dataset(saved["data_name"])
        if same and os.path.isdir(saved["data_dir"]):
            data_dir = saved["data_dir"]
    return data_name, data_dir


def _load_array(path, flag):
    if not os.path.isfile(path):
        raise ValueError("%s %s does not exist" % (flag, path))
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError("cannot read %s %s as a .npy array: %s" % (flag, path, error)) from None


def load_stored(embeddings_path, labels_path):
    """``(embeddings float32 (N, D), labels (N,))`` from two .npy files, shapes checked."""
    embeddings = _load_array(embeddings_path, "--embeddings")
    labels = _load_array(labels_path, "--labels")
    if embeddings.ndim != 2 or embeddings.dtype.kind not in "fiu":
        raise ValueError("--embeddings %s must hold an (N, D) numeric array, found %s of shape %s"
                         % (embeddings_path, embeddings.dtype, embeddings.shape))
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError("--labels %s must hold an (N,) array, found shape %s" % (labels_path, labels.shape))
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError("--embeddings %s has %d rows but --labels %s has %d labels; they must "
                         "describe the same images in the same order"
                         % (embeddings_path, embeddings.shape[0], labels_path, labels.shape[0]))
    return embeddings.astype(np.float32, copy=False), labels


def check_params_file(path):
    """One-line ValueError unless ``path`` is an MXNet parameter file (``net.save_parameters``)."""
    import mxnet as mx

    try:
        params = mx.nd.load(path)
    except mx.base.MXNetError as error:
        raise ValueError("%s is not a parameter file saved by main.py (%s)"
                         % (path, one_line(error))) from None
    if not isinstance(params, dict) or not params:
        raise ValueError("%s holds no named parameters; it was not saved by net.save_parameters" % path)


def embed_test_split(args, saved):
    """``(unit embeddings, labels, paths, spec, description)`` of a test split through the network."""
    import embed  # the checkpoint loader of embed.py (.params + args.json, or an exported symbol)

    data_name, data_dir = _dataset_of_run(args, saved)
    ctx = resolve_contexts(args.gpu_idx)
    if args.checkpoint.endswith(".params"):
        check_params_file(args.checkpoint)
    net, image_size = embed.load_network(args, ctx)
    loader, info = data.build_test_loader(data_name, data_dir, image_size, args.batch_size,
                                          args.num_workers)
    start = time.time()
    embeddings = embed_dataset(net, loader, ctx, progress=args.progress,
                               desc="embedding %s test" % info["dataset"].name)
    logger.info("embedded %d test images in %.1f s on %s", len(embeddings), time.time() - start,
                ", ".join(str(c) for c in ctx))
    if embeddings.shape[0] != info["num_test_images"]:  # pragma: no cover - a loader bug
        raise ValueError("embedded %d images but the test split has %d"
                         % (embeddings.shape[0], info["num_test_images"]))
    description = {"data_name": info["dataset"].name, "data_dir": os.path.abspath(info["data_dir"]),
                   "image_size": image_size}
    return l2_normalize(embeddings), info["test_labels"], info["test_paths"], info["dataset"], description


# --------------------------------------------------------------------------------------- outputs

def default_out(source):
    """``run/model_last.params`` → ``run/model_last_metrics.json`` (PREFIX-symbol.json → PREFIX_...)."""
    folder, name = os.path.split(os.path.abspath(source))
    stem = name[: -len(SYMBOL_SUFFIX)] if name.endswith(SYMBOL_SUFFIX) else os.path.splitext(name)[0]
    return os.path.join(folder, stem + "_metrics.json")


def _json_value(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_report(path, report):
    """Write ``report`` as JSON atomically (NaN written as null)."""
    payload = dict(report, metrics={k: _json_value(v) for k, v in report["metrics"].items()})
    folder = os.path.dirname(os.path.abspath(path))
    tmp_path = "%s.tmp%d" % (path, os.getpid())
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp_path, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp_path, path)
    except OSError as error:
        raise ValueError("cannot write %s: %s" % (path, error.strerror or error)) from None


def save_test_embeddings(npy_path, embeddings, labels, paths):
    """``emb.npy`` (+ ``emb.paths.txt`` as embed.py writes it) and ``emb.labels.npy``."""
    import embed

    embed.save_embeddings(npy_path, embeddings, paths, [])
    labels_path = npy_path[: -len(".npy")] + ".labels.npy"
    try:
        np.save(labels_path, np.asarray(labels))
    except OSError as error:
        raise ValueError("cannot write %s: %s" % (labels_path, error.strerror or error)) from None
    return labels_path


def format_metrics(values):
    """Lines ``R@1      0.7450`` in the order of ``values``."""
    width = max(len(key) for key in values)
    return ["%-*s  %.4f" % (width, key, value) for key, value in values.items()]


# ------------------------------------------------------------------------------------------- run

def run(args):
    """Evaluate as the flags say; returns ``(metrics dict, path of the JSON written)``."""
    validate_args(args)
    started = time.time()
    if args.checkpoint is not None:
        if not os.path.isfile(args.checkpoint):
            raise ValueError("--checkpoint %s does not exist" % args.checkpoint)
        saved = _run_arguments(args.checkpoint)
        embeddings, labels, paths, spec, description = embed_test_split(args, saved)
        source = {"checkpoint": os.path.abspath(args.checkpoint), **description}
        out = args.out or default_out(args.checkpoint)
    else:
        embeddings, labels = load_stored(args.embeddings, args.labels)
        paths = None
        spec = data.resolve_dataset(args.data_name) if args.data_name else None
        source = {"embeddings": os.path.abspath(args.embeddings), "labels": os.path.abspath(args.labels),
                  "data_name": spec.name if spec else None}
        out = args.out or default_out(args.embeddings)
    ks = list(args.recallk or (spec.default_recallk if spec else DEFAULT_RECALLK))
    data.eval_k_cap(ks, embeddings.shape[0])
    num_classes = int(len(np.unique(labels)))
    ks_used = ks if "recall" in args.eval_metrics else []
    non_finite = warn_non_finite(embeddings, "embeddings of %s" % (args.checkpoint or args.embeddings))
    values = evaluate_embeddings(embeddings, labels, ks, metrics=args.eval_metrics, knn=args.knn,
                                 cluster_backend=args.cluster_backend)
    if args.save_embeddings is not None:
        labels_path = save_test_embeddings(args.save_embeddings, embeddings, labels, paths)
        logger.info("labels in %s", labels_path)
    report = dict(source, metrics=values, num_images=int(embeddings.shape[0]), non_finite=non_finite,
                  num_classes=num_classes,
                  embed_dim=int(embeddings.shape[1]), recallk=ks_used, eval_metrics=list(args.eval_metrics),
                  knn=args.knn, seconds=round(time.time() - started, 2))
    write_report(out, report)
    title = source.get("data_name") or os.path.basename(args.embeddings)
    print("%s: %d images of %d classes, embeddings of dimension %d"
          % (title, embeddings.shape[0], num_classes, embeddings.shape[1]))
    if non_finite:
        print("%d embeddings are not finite: left out of the gallery, misses as queries" % non_finite)
    for line in format_metrics(values):
        print(line)
    print("metrics written to %s" % out)
    return values, out


def main(argv=None):
    """Command line entry; returns the exit code (0 ok, 2 on bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stdout)
    # GluonCV's deep blocks exceed Python's default recursion limit when hybridizing.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 2000))
    try:
        run(args)
    except ValueError as error:
        sys.stderr.write("error: %s\n" % error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
