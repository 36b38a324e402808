"""Use a trained network: embed any images, or find the nearest gallery images of a query.

    # embeddings of every image under a directory (or listed in a text file), in emb.npy,
    # with the image order in emb.paths.txt
    python3 embed.py --checkpoint results/demo/model_last.params --images data/demo/images --out emb.npy

    # the 10 nearest gallery images of a query, printed and drawn in query_results.jpg
    python3 embed.py --checkpoint results/demo/model_last.params --query q.jpg \\
        --gallery data/demo/images --gallery_embeddings gallery.npy --topk 10

The network configuration (backbone, embed_dim, image_size) of a ``.params`` checkpoint is read
from the ``args.json`` main.py wrote beside it; flags override it. An exported network
(``--checkpoint PREFIX-symbol.json``, see ``main.py --export``) needs no configuration: its graph
and ``PREFIX-meta.json`` hold it.

Embeddings are L2-normalised (``--normalize``), as in evaluation; search ranks the gallery by
Euclidean distance, and a query never retrieves its own file. The network is loaded by
``inference.trained_network``, the images listed by ``data.image_list``, embedded and stored by
``inference.image_embeddings`` and searched by ``inference.gallery_search``; this script parses and prints.
"""
import sys

from utils.environment import check_numpy_version, prefer_passive_openmp

check_numpy_version()
prefer_passive_openmp()  # before MXNet loads OpenMP: threads sleep, not spin, on busy cores

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402

from data.image_list import list_labeled_images  # noqa: E402
from inference.flags import (add_backbone_flag, add_batch_size_flag, add_checkpoint_flag,  # noqa: E402
                             add_embed_dim_flag, add_gpu_idx_flag, add_image_size_flag,
                             add_inference_dtype_flag, add_num_workers_flag, add_progress_flag)
from inference.gallery_search import draw_results, gallery_embeddings, query_labels, search  # noqa: E402
from inference.image_embeddings import embed_paths, report_skipped, save_embeddings  # noqa: E402
from inference.trained_network import check_dtype_applies, load_network  # noqa: E402
from utils.devices import resolve_contexts  # noqa: E402
from utils.errors import OneLineParser, run_command  # noqa: E402
from utils.flags import check_minimums, check_positive_sizes, path_flag, str2bool  # noqa: E402
from utils.metrics import l2_normalize  # noqa: E402

logger = logging.getLogger("ee_gluon.embed")


def build_parser():
    parser = OneLineParser(
        prog="embed.py",
        description="Embed images with a trained ee-gluon network, or search a gallery with a query.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    net = parser.add_argument_group("network")
    add_checkpoint_flag(net, required=True)
    add_backbone_flag(net)
    add_embed_dim_flag(net)
    add_image_size_flag(net)
    add_gpu_idx_flag(net)
    add_inference_dtype_flag(net)

    inputs = parser.add_argument_group("images")
    inputs.add_argument("--images", default=None, type=path_flag,
                        help="embed mode: a directory (searched recursively for .jpg .jpeg .png "
                             ".bmp), a text file with one image path per line (relative paths are "
                             "relative to the file), or a split file (image_id class_id view_id path)")
    inputs.add_argument("--out", default=None, type=path_flag,
                        help="embeddings file (.npy, rows in the order of the sidecar "
                             "OUT.paths.txt); required with --images, optional with --query "
                             "(then it receives the gallery's embeddings)")
    add_batch_size_flag(inputs, 64, per="forward pass")
    add_num_workers_flag(inputs, 2)
    inputs.add_argument("--skip_bad_images", default=False, type=str2bool, nargs="?", const=True,
                        help="skip images that cannot be read (listed, and written to "
                             "OUT.skipped.txt) instead of stopping")
    inputs.add_argument("--normalize", default=True, type=str2bool,
                        help="L2-normalise the embeddings (as evaluation does)")
    add_progress_flag(inputs)

    search = parser.add_argument_group("search")
    search.add_argument("--query", default=None, nargs="+", type=path_flag,
                        help="search mode: query image(s); each gives one row of the picture")
    search.add_argument("--gallery", default=None, type=path_flag,
                        help="images searched, given as for --images")
    search.add_argument("--gallery_embeddings", default=None, type=path_flag,
                        help="cache of the gallery's embeddings (.npy + .paths.txt): reused when it "
                             "lists the same images as --gallery (or when --gallery is not given), "
                             "written otherwise")
    search.add_argument("--topk", default=10, type=int, help="results shown per query")
    search.add_argument("--picture", default=None, type=path_flag,
                        help="picture of the queries and their results (default: query_results.jpg "
                             "beside --out, or in the current directory)")
    search.add_argument("--thumb", default=128, type=int, help="thumbnail side in the picture, in pixels")
    return parser


def validate_args(args):
    if (args.images is None) == (args.query is None):
        raise ValueError("pass either --images (embed) or --query with --gallery (search)")
    if args.images is not None and args.out is None:
        raise ValueError("--images needs --out, the .npy file that receives the embeddings")
    if args.query is not None and args.gallery is None and args.gallery_embeddings is None:
        raise ValueError("--query needs --gallery (images) or --gallery_embeddings (a cache .npy)")
    for name in ("out", "gallery_embeddings"):
        value = getattr(args, name)
        if value is not None and not value.endswith(".npy"):
            raise ValueError("--%s must name a .npy file, got %s" % (name, value))
    check_dtype_applies(args.checkpoint, args.dtype)
    check_minimums(args, {"batch_size": 1, "topk": 1, "thumb": 16, "num_workers": 0})
    check_positive_sizes(args, ("embed_dim", "image_size"))
    return args


def _embedder(net, image_size, ctx, args, num_workers=None, skip_bad=None, progress=None):
    """``embed(paths, desc)`` with the network and the flags."""
    return lambda paths, desc="embedding": embed_paths(
        net, paths, image_size, ctx, args.batch_size,
        args.num_workers if num_workers is None else num_workers,
        args.skip_bad_images if skip_bad is None else skip_bad,
        args.progress if progress is None else progress, desc=desc)


def print_results(query_paths, gallery_paths, results, gallery_labels=None):
    own = query_labels(query_paths, gallery_paths, gallery_labels)
    for path, row, label in zip(query_paths, results, own):
        print("query %s%s" % (path, "" if label is None else "  (class %s)" % label))
        if gallery_labels is None:
            print("  rank  distance  image")
            for rank, (index, distance) in enumerate(row, start=1):
                print("  %4d  %8.4f  %s" % (rank, distance, gallery_paths[index]))
            continue
        print("  rank  distance  class  image")
        for rank, (index, distance) in enumerate(row, start=1):
            print("  %4d  %8.4f  %5s  %s" % (rank, distance, gallery_labels[index], gallery_paths[index]))
        if label is not None:
            same = sum(str(gallery_labels[index]) == label for index, _ in row)
            print("  -> %d of %d of the query's class" % (same, len(row)))


def run_search(net, image_size, ctx, args):
    query_paths = [os.path.abspath(path) for path in args.query]
    gallery, gallery_paths, gallery_labels = gallery_embeddings(
        _embedder(net, image_size, ctx, args), args.gallery, args.gallery_embeddings, args.normalize, args.out)
    embed_queries = _embedder(net, image_size, ctx, args, num_workers=0, skip_bad=False, progress=False)
    queries, _, _ = embed_queries(query_paths, "queries")
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError("the gallery embeddings have dimension %d but the network gives %d; delete "
                         "%s or pass another --gallery_embeddings" % (gallery.shape[1], queries.shape[1],
                                                                       args.gallery_embeddings))
    results = search(queries, query_paths, gallery, gallery_paths, args.topk)
    if any(len(row) == 0 for row in results):
        raise ValueError("the gallery holds no image other than the query")
    if any(len(row) < args.topk for row in results):
        logger.info("the gallery holds fewer than --topk %d other images", args.topk)
    print_results(query_paths, gallery_paths, results, gallery_labels)
    picture = args.picture or os.path.join(os.path.dirname(args.out) if args.out else "",
                                           "query_results.jpg")
    draw_results(query_paths, gallery_paths, results, args.thumb, picture, gallery_labels)
    print("picture: %s" % picture)
    return results


def run_embed(net, image_size, ctx, args):
    paths, labels = list_labeled_images(args.images)
    embeddings, kept, skipped = _embedder(net, image_size, ctx, args)(paths)
    report_skipped(skipped)
    if args.normalize:
        embeddings = l2_normalize(embeddings)
    if labels is not None:  # the classes of a split file or of class folders, for evaluate.py
        label_of = dict(zip(paths, labels))
        labels = np.array([label_of[path] for path in kept])
    labels_file = save_embeddings(args.out, embeddings, kept, skipped, labels=labels)
    if labels_file is not None:
        print("labels: %s (evaluate.py --embeddings %s reads them)" % (labels_file, args.out))
    return embeddings, kept


def run(args):
    validate_args(args)
    ctx = resolve_contexts(args.gpu_idx)
    net, image_size = load_network(args.checkpoint, ctx, args.backbone, args.embed_dim, args.image_size,
                                   args.dtype)
    if args.images is not None:
        return run_embed(net, image_size, ctx, args)
    return run_search(net, image_size, ctx, args)


def main(argv=None):
    """Command line entry; returns the exit code (0 ok, 2 on bad input)."""
    return run_command(build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
