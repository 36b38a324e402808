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

from utils.environment import check_numpy_version, prefer_passive_openmp

check_numpy_version()
prefer_passive_openmp()  # before MXNet loads OpenMP: threads sleep, not spin, on busy cores

import argparse  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import data  # noqa: E402
from inference.batch_embedding import warn_non_finite  # noqa: E402
from inference.evaluation import default_out, embed_test_split, load_stored, write_report  # noqa: E402
from inference.flags import (add_backbone_flag, add_batch_size_flag, add_checkpoint_flag,  # noqa: E402
                             add_dataset_flags, add_embed_dim_flag, add_eval_metrics_flag, add_gpu_idx_flag,
                             add_image_size_flag, add_inference_dtype_flag, add_knn_flag,
                             add_num_workers_flag, add_progress_flag, add_recallk_flag)
from inference.image_embeddings import save_embeddings, sidecar  # noqa: E402
from inference.trained_network import check_dtype_applies  # noqa: E402
from utils.devices import resolve_contexts  # noqa: E402
from utils.errors import OneLineParser, run_command  # noqa: E402
from utils.flags import check_minimums, check_positive_sizes, check_recallk, path_flag  # noqa: E402
from utils.metrics import FAISS_MISSING, evaluate_embeddings  # noqa: E402
from utils.metrics.clustering import CLUSTER_BACKENDS  # noqa: E402
from utils.metrics.names import DEFAULT_RECALLK  # noqa: E402

logger = logging.getLogger("ee_gluon.evaluate")


def build_parser():
    parser = OneLineParser(
        prog="evaluate.py",
        description="Evaluate a trained ee-gluon network (or stored embeddings) on a test split: "
                    "Recall@K, MAP@R, R-precision, NMI, F1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    source = parser.add_argument_group("what to evaluate")
    add_checkpoint_flag(source)
    source.add_argument("--embeddings", default=None, type=path_flag,
                        help="instead of a network: an (N, D) .npy of embeddings, with --labels")
    source.add_argument("--labels", default=None, type=path_flag,
                        help="the (N,) .npy of labels of --embeddings (default: the E.labels.npy that "
                             "embed.py and --save_embeddings write beside E.npy)")

    net = parser.add_argument_group("network (default: the args.json beside --checkpoint)")
    add_backbone_flag(net)
    add_embed_dim_flag(net)
    add_image_size_flag(net)
    add_gpu_idx_flag(net)
    add_inference_dtype_flag(net)

    dataset = parser.add_argument_group("data")
    add_dataset_flags(dataset, what="dataset whose test split is evaluated",
                      default_dir_help="the one in args.json when --data_name is that run's, else the "
                                       "dataset's default")
    add_batch_size_flag(dataset, 64, per="forward pass")
    add_num_workers_flag(dataset, 2)

    evaluation = parser.add_argument_group("evaluation")
    add_recallk_flag(evaluation, stored_embeddings=True)
    add_eval_metrics_flag(evaluation, recall_required=False)
    add_knn_flag(evaluation)
    evaluation.add_argument("--cluster_backend", default="auto", choices=list(CLUSTER_BACKENDS),
                            help="k-means of nmi and f1: auto and sklearn use scikit-learn, faiss needs faiss-cpu")

    output = parser.add_argument_group("output")
    output.add_argument("--out", default=None, type=path_flag,
                        help="metrics JSON (default: <checkpoint or embeddings stem>_metrics.json "
                             "beside it)")
    output.add_argument("--save_embeddings", default=None, type=path_flag,
                        help="also store the L2-normalised test embeddings in this .npy, with the "
                             "labels in <stem>.labels.npy and the image paths in <stem>.paths.txt "
                             "(reusable by --embeddings and by embed.py --gallery_embeddings)")
    add_progress_flag(output)
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
        if args.embeddings is None:
            raise ValueError("--labels goes with --embeddings: pass the embeddings .npy too")
        if args.save_embeddings is not None:
            raise ValueError("--save_embeddings stores the embeddings of a --checkpoint; stored "
                             "embeddings are already in %s" % args.embeddings)
        for name in ("backbone", "embed_dim", "image_size", "gpu_idx"):
            if getattr(args, name) is not None:
                raise ValueError("--%s applies to --checkpoint only, not to stored embeddings" % name)
        if args.dtype != "float32":
            raise ValueError("--dtype applies to --checkpoint only, not to stored embeddings")
        if not os.path.isfile(args.embeddings):  # before its labels are looked for beside it
            raise ValueError("--embeddings %s does not exist" % args.embeddings)
        if args.labels is None:
            # embed.py (and --save_embeddings) write the labels beside the embeddings when known.
            args.labels = sidecar(args.embeddings, "labels") if args.embeddings.endswith(".npy") else ""
            if not os.path.isfile(args.labels):
                raise ValueError("--embeddings %s has no labels beside it (%s); pass --labels L.npy, or "
                                 "embed a split file or class folders with embed.py, which writes them"
                                 % (args.embeddings, args.labels))
    check_dtype_applies(args.checkpoint, args.dtype)
    if args.save_embeddings is not None and not args.save_embeddings.endswith(".npy"):
        raise ValueError("--save_embeddings must name a .npy file, got %s" % args.save_embeddings)
    check_minimums(args, {"batch_size": 1, "num_workers": 0})
    check_positive_sizes(args, ("embed_dim", "image_size"))
    check_recallk(args.recallk)
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


def format_metrics(values):
    """Lines ``R@1      0.7450`` in the order of ``values``."""
    width = max(len(key) for key in values)
    return ["%-*s  %.4f" % (width, key, value) for key, value in values.items()]


# ------------------------------------------------------------------------------------------- run

def _checkpoint_embeddings(args):
    """``(embeddings, labels, paths, spec, source, out)`` of the test split through --checkpoint."""
    network = {name: getattr(args, name) for name in ("backbone", "embed_dim", "image_size", "dtype")}
    embeddings, labels, paths, spec, description = embed_test_split(
        args.checkpoint, resolve_contexts(args.gpu_idx), network, args.data_name, args.data_dir,
        args.batch_size, args.num_workers, args.progress)
    source = {"checkpoint": os.path.abspath(args.checkpoint), "dtype": args.dtype, **description}
    return embeddings, labels, paths, spec, source, args.out or default_out(args.checkpoint)


def _stored_embeddings(args):
    """``(embeddings, labels, None, spec, source, out)`` of --embeddings and --labels."""
    embeddings, labels = load_stored(args.embeddings, args.labels)
    spec = data.resolve_dataset(args.data_name) if args.data_name else None
    source = {"embeddings": os.path.abspath(args.embeddings), "labels": os.path.abspath(args.labels),
              "data_name": spec.name if spec else None}
    return embeddings, labels, None, spec, source, args.out or default_out(args.embeddings)


def run(args):
    """Evaluate as the flags say; returns ``(metrics dict, path of the JSON written)``."""
    validate_args(args)
    started = time.time()
    if args.checkpoint is not None and not os.path.isfile(args.checkpoint):
        raise ValueError("--checkpoint %s does not exist" % args.checkpoint)
    inputs = _checkpoint_embeddings if args.checkpoint is not None else _stored_embeddings
    embeddings, labels, paths, spec, source, out = inputs(args)
    ks = list(args.recallk or (spec.default_recallk if spec else DEFAULT_RECALLK))
    data.eval_k_cap(ks, embeddings.shape[0])
    num_classes = int(len(np.unique(labels)))
    non_finite = warn_non_finite(embeddings, "embeddings of %s" % (args.checkpoint or args.embeddings))
    values = evaluate_embeddings(embeddings, labels, ks, metrics=args.eval_metrics, knn=args.knn,
                                 cluster_backend=args.cluster_backend)
    if args.save_embeddings is not None:
        save_embeddings(args.save_embeddings, embeddings, paths, [], labels=labels)
        logger.info("labels in %s", sidecar(args.save_embeddings, "labels"))
    report = dict(source, metrics=values, num_images=int(embeddings.shape[0]), non_finite=non_finite,
                  num_classes=num_classes,
                  embed_dim=int(embeddings.shape[1]), recallk=ks if "recall" in args.eval_metrics else [],
                  eval_metrics=list(args.eval_metrics), knn=args.knn, seconds=round(time.time() - started, 2))
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
    return run_command(build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
