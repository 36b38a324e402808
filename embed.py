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
Euclidean distance, and a query never retrieves its own file.
"""
import sys

from utils.environment import check_numpy_version

check_numpy_version()

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import warnings  # noqa: E402

import cv2  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from data import SPLIT_HEADER, ImageListDataset, TestTransform, read_split  # noqa: E402
from utils import run_folder  # noqa: E402
from utils.errors import one_line  # noqa: E402
from utils.devices import resolve_contexts  # noqa: E402
from utils.options import str2bool  # noqa: E402

logger = logging.getLogger("ee_gluon.embed")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
SYMBOL_SUFFIX = "-symbol.json"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python3 embed.py",
        description="Embed images with a trained ee-gluon network, or search a gallery with a query.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    net = parser.add_argument_group("network")
    net.add_argument("--checkpoint", required=True,
                     help="trained parameters (model_last.params, model_best.params, "
                          "checkpoint-*.params) or an exported PREFIX-symbol.json")
    net.add_argument("--backbone", default=None,
                     help="backbone of a .params checkpoint (default: from args.json beside it)")
    net.add_argument("--embed_dim", default=None, type=int,
                     help="embedding size of a .params checkpoint (default: from args.json)")
    net.add_argument("--image_size", default=None, type=int,
                     help="side the images are resized to (default: args.json or PREFIX-meta.json)")
    net.add_argument("--gpu_idx", default=None,
                     help="nothing: GPU 0 if visible else CPU; -1: CPU; 0,1: split batches over GPUs")

    inputs = parser.add_argument_group("images")
    inputs.add_argument("--images", default=None,
                        help="embed mode: a directory (searched recursively for .jpg .jpeg .png "
                             ".bmp), a text file with one image path per line (relative paths are "
                             "relative to the file), or a split file (image_id class_id view_id path)")
    inputs.add_argument("--out", default=None,
                        help="embeddings file (.npy, rows in the order of the sidecar "
                             "OUT.paths.txt); required with --images, optional with --query "
                             "(then it receives the gallery's embeddings)")
    inputs.add_argument("--batch_size", default=64, type=int, help="images per forward pass")
    inputs.add_argument("--num_workers", default=2, type=int,
                        help="image decoding worker processes (0 = decode in this process)")
    inputs.add_argument("--skip_bad_images", default=False, type=str2bool, nargs="?", const=True,
                        help="skip images that cannot be read (listed, and written to "
                             "OUT.skipped.txt) instead of stopping")
    inputs.add_argument("--normalize", default=True, type=str2bool,
                        help="L2-normalise the embeddings (as evaluation does)")
    inputs.add_argument("--progress", default=True, type=str2bool, help="show a progress bar")

    search = parser.add_argument_group("search")
    search.add_argument("--query", default=None, nargs="+",
                        help="search mode: query image(s); each gives one row of the picture")
    search.add_argument("--gallery", default=None,
                        help="images searched, given as for --images")
    search.add_argument("--gallery_embeddings", default=None,
                        help="cache of the gallery's embeddings (.npy + .paths.txt): reused when it "
                             "lists the same images as --gallery (or when --gallery is not given), "
                             "written otherwise")
    search.add_argument("--topk", default=10, type=int, help="results shown per query")
    search.add_argument("--picture", default=None,
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
    for name, low in (("batch_size", 1), ("topk", 1), ("thumb", 16), ("num_workers", 0)):
        if getattr(args, name) < low:
            raise ValueError("--%s must be at least %d, got %d" % (name, low, getattr(args, name)))
    for name in ("embed_dim", "image_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError("--%s must be a positive integer, got %d" % (name, getattr(args, name)))
    return args


# ---------------------------------------------------------------------------------------- images

def list_images(source, what="--images"):
    """Image paths (absolute) of a directory walked recursively, a list file or a split file."""
    if os.path.isdir(source):
        found = []
        for folder, subfolders, files in os.walk(source):
            subfolders.sort()
            found.extend(os.path.join(folder, name) for name in sorted(files)
                         if name.lower().endswith(IMAGE_EXTENSIONS))
        if not found:
            raise ValueError("no %s images under %s (%s)" % ("/".join(IMAGE_EXTENSIONS), source, what))
        return [os.path.abspath(path) for path in found]
    if not os.path.isfile(source):
        raise ValueError("%s %s is neither a directory nor a file" % (what, source))
    base = os.path.dirname(os.path.abspath(source))
    try:
        with open(source, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle]
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError("cannot read the image list %s: %s" % (source, error)) from None
    lines = [line for line in lines if line and not line.startswith("#")]
    if lines and lines[0] == SPLIT_HEADER:
        paths, _ = read_split(source, base)
    else:
        paths = [line if os.path.isabs(line) else os.path.join(base, line) for line in lines]
    if not paths:
        raise ValueError("the image list %s (%s) lists no images" % (source, what))
    return [os.path.abspath(path) for path in paths]


class _TolerantImages(mx.gluon.data.Dataset):
    """Wraps ``ImageListDataset``: an unreadable image becomes a black one flagged 0 (kept: 1)."""

    def __init__(self, images, image_size):
        self.images = images
        self.blank = np.zeros((image_size, image_size, 3), dtype=np.uint8)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        try:
            image, _ = self.images[index]
        except ValueError:
            return self.blank, np.int32(0)
        return image, np.int32(1)


def embed_paths(net, paths, image_size, ctx, batch_size=64, num_workers=0, skip_bad=False,
                progress=True, desc="embedding"):
    """Embed image files in order.

    Returns
    -------
    embeddings : float32 ndarray (M, D)
        The network's outputs for the images read.
    kept : list of str
        The M paths embedded, in order.
    skipped : list of str
        Unreadable images (only with ``skip_bad``; otherwise the first one raises ValueError).
    """
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing and not skip_bad:
        raise ValueError("cannot decode image %s: no such file (%d of %d images missing); pass "
                         "--skip_bad_images to skip them" % (missing[0], len(missing), len(paths)))
    missing_set = set(missing)
    readable = [path for path in paths if path not in missing_set]
    dataset = ImageListDataset(readable, np.ones(len(readable), dtype=np.int32), TestTransform(image_size))
    if skip_bad:
        dataset = _TolerantImages(dataset, image_size)
    loader = mx.gluon.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, last_batch="keep",
                                      num_workers=num_workers)
    chunks, flags = [], []
    with tqdm(total=len(readable), disable=not progress, desc=desc, unit="img", leave=False,
              dynamic_ncols=True) as bar:
        for images, ok in loader:
            devices = ctx[: min(len(ctx), images.shape[0])]
            parts = mx.gluon.utils.split_and_load(images, devices, even_split=False)
            chunks.extend(net(part).asnumpy() for part in parts)
            flags.append(ok.asnumpy())
            bar.update(images.shape[0])
    keep = np.concatenate(flags).astype(bool) if flags else np.zeros(0, dtype=bool)
    embeddings = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else None
    if embeddings is None or not keep.any():
        raise ValueError("none of the %d images could be read (first: %s)" % (len(paths), paths[0]))
    kept = [path for path, good in zip(readable, keep) if good]
    skipped = missing + [path for path, good in zip(readable, keep) if not good]
    return embeddings[keep], kept, skipped


def unit_rows(embeddings):
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.maximum(norms, 1e-12)


def sidecar(npy_path, kind):
    """``emb.npy`` → ``emb.paths.txt`` (kind='paths') or ``emb.skipped.txt``."""
    return npy_path[: -len(".npy")] + ".%s.txt" % kind


def save_embeddings(npy_path, embeddings, paths, skipped):
    folder = os.path.dirname(os.path.abspath(npy_path))
    try:
        os.makedirs(folder, exist_ok=True)
        np.save(npy_path, embeddings)
        with open(sidecar(npy_path, "paths"), "w", encoding="utf-8") as handle:
            handle.write("".join(path + "\n" for path in paths))
        skipped_file = sidecar(npy_path, "skipped")
        if skipped:
            with open(skipped_file, "w", encoding="utf-8") as handle:
                handle.write("".join(path + "\n" for path in skipped))
        elif os.path.exists(skipped_file):
            os.remove(skipped_file)  # from an earlier run; nothing was skipped this time
    except OSError as error:
        raise ValueError("cannot write %s: %s" % (npy_path, error.strerror or error)) from None
    logger.info("wrote %d embeddings of dimension %d to %s (image order in %s)", len(paths),
                embeddings.shape[1], npy_path, sidecar(npy_path, "paths"))


def load_embeddings(npy_path):
    """``(embeddings, paths, skipped)`` of a file written by ``save_embeddings``."""
    paths_file = sidecar(npy_path, "paths")
    if not os.path.isfile(paths_file):
        raise ValueError("%s has no image list %s beside it; delete it to re-embed the gallery"
                         % (npy_path, paths_file))
    try:
        embeddings = np.load(npy_path)
    except (OSError, ValueError) as error:
        raise ValueError("cannot read embeddings %s: %s" % (npy_path, error)) from None
    with open(paths_file, encoding="utf-8") as handle:
        paths = [line.rstrip("\n") for line in handle if line.strip()]
    skipped_file = sidecar(npy_path, "skipped")
    skipped = []
    if os.path.isfile(skipped_file):
        with open(skipped_file, encoding="utf-8") as handle:
            skipped = [line.rstrip("\n") for line in handle if line.strip()]
    if embeddings.ndim != 2 or embeddings.shape[0] != len(paths):
        raise ValueError("%s holds %s embeddings but %s lists %d images; delete both to re-embed"
                         % (npy_path, embeddings.shape, paths_file, len(paths)))
    return embeddings.astype(np.float32, copy=False), paths, skipped


# --------------------------------------------------------------------------------------- network

def _read_json(path, what):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError("cannot read %s %s: %s" % (what, path, error)) from None


def load_symbol_network(symbol_file, args, ctx):
    """An exported network through ``SymbolBlock.imports``; returns (net, image_size)."""
    prefix = symbol_file[: -len(SYMBOL_SUFFIX)]
    params_file = prefix + "-0000.params"
    if not os.path.isfile(params_file):
        candidates = sorted(glob.glob(glob.escape(prefix) + "-[0-9][0-9][0-9][0-9].params"))
        if len(candidates) != 1:
            raise ValueError("no parameters %s beside the exported symbol %s" % (params_file, symbol_file))
        params_file = candidates[0]
    meta_file = prefix + "-meta.json"
    meta = _read_json(meta_file, "export metadata") if os.path.isfile(meta_file) else {}
    image_size = args.image_size or meta.get("image_size")
    if not image_size:
        raise ValueError("%s is missing; pass --image_size, the side the network was trained at" % meta_file)
    for name in ("backbone", "embed_dim"):
        if getattr(args, name) is not None:
            logger.warning("--%s is ignored for an exported network (its graph fixes it)", name)
    try:
        with warnings.catch_warnings():
            # The imported input has no dtype until the first batch arrives; MXNet warns about it.
            warnings.filterwarnings("ignore", message="Cannot decide type")
            net = mx.gluon.SymbolBlock.imports(symbol_file, ["data"], params_file, ctx=ctx)
    except (mx.base.MXNetError, AssertionError, ValueError, OSError) as error:
        raise ValueError("cannot load the exported network %s with %s: %s"
                         % (symbol_file, params_file, one_line(error))) from None
    net.hybridize(static_alloc=True)
    logger.info("exported network %s (%s), image size %d", symbol_file, params_file, image_size)
    return net, int(image_size)


def load_params_network(params_file, args, ctx):
    """A ``.params`` checkpoint into the network args.json (or the flags) describe."""
    import model  # GluonCV is imported only for this kind of checkpoint

    args_file, saved = run_folder.args_beside(params_file)
    config = {name: getattr(args, name) if getattr(args, name) is not None else saved.get(name)
              for name in ("backbone", "embed_dim", "image_size")}
    missing = [name for name, value in config.items() if value is None]
    if missing:
        raise ValueError("%s has no %s; pass %s" % (
            args_file if saved else "no args.json beside " + params_file + " and it",
            ", ".join(missing), " ".join("--%s" % name for name in missing)))
    net = model.build_network(config["backbone"], int(config["embed_dim"]))
    try:
        net.load_parameters(params_file, ctx=ctx)
    except (mx.base.MXNetError, AssertionError, ValueError, OSError) as error:
        raise ValueError("cannot load %s into a %s network with embed_dim %s: %s; check --backbone "
                         "and --embed_dim" % (params_file, config["backbone"], config["embed_dim"],
                                              one_line(error))) from None
    net.hybridize(static_alloc=True)
    logger.info("checkpoint %s: %s, embed_dim %s, image size %s%s", params_file, config["backbone"],
                config["embed_dim"], config["image_size"], " (from %s)" % args_file if saved else "")
    return net, int(config["image_size"])


def load_network(args, ctx):
    """``(net, image_size)`` of ``--checkpoint``: a .params file or an exported symbol."""
    checkpoint = args.checkpoint
    if not os.path.isfile(checkpoint):
        raise ValueError("--checkpoint %s does not exist" % checkpoint)
    if checkpoint.endswith(SYMBOL_SUFFIX):
        return load_symbol_network(checkpoint, args, ctx)
    if checkpoint.endswith(".params"):
        return load_params_network(checkpoint, args, ctx)
    raise ValueError("--checkpoint must be a .params file saved by main.py or an exported "
                     "PREFIX%s, got %s" % (SYMBOL_SUFFIX, checkpoint))


# ---------------------------------------------------------------------------------------- search

def _report_skipped(skipped, where):
    if skipped:
        logger.warning("skipped %d unreadable image(s)%s:\n%s", len(skipped), where,
                       "\n".join("  " + path for path in skipped))


def gallery_embeddings(net, image_size, ctx, args):
    """The gallery's (embeddings, paths): from the cache when it matches, else embedded."""
    listing = list_images(args.gallery, "--gallery") if args.gallery is not None else None
    cache = args.gallery_embeddings
    if cache is not None and os.path.isfile(cache):
        embeddings, paths, skipped = load_embeddings(cache)
        if listing is None or sorted(listing) == sorted(paths + skipped):
            logger.info("reusing the gallery embeddings of %s (%d images)", cache, len(paths))
            return embeddings, paths
        logger.info("%s lists other images than --gallery %s; embedding the gallery again", cache,
                    args.gallery)
    if listing is None:
        raise ValueError("--gallery_embeddings %s does not exist; pass --gallery to create it" % cache)
    embeddings, paths, skipped = embed_paths(
        net, listing, image_size, ctx, args.batch_size, args.num_workers, args.skip_bad_images,
        args.progress, desc="gallery")
    _report_skipped(skipped, " of the gallery")
    if args.normalize:
        embeddings = unit_rows(embeddings)
    for target in {cache, args.out} - {None}:
        save_embeddings(target, embeddings, paths, skipped)
    return embeddings, paths


def search(query_embeddings, query_paths, gallery, gallery_paths, topk):
    """Per query: ``[(gallery index, distance), ...]`` of its ``topk`` nearest gallery images.

    Rows are L2-normalised, distances Euclidean; a gallery entry that is the query's own file is
    excluded; ties go to the smaller gallery index.
    """
    gallery = unit_rows(gallery)
    queries = unit_rows(query_embeddings)
    real_gallery = [os.path.realpath(path) for path in gallery_paths]
    results = []
    for query, path in zip(queries, query_paths):
        dist = np.sqrt(np.maximum(2.0 - 2.0 * (gallery @ query), 0.0))
        own = os.path.realpath(path)
        allowed = np.array([g != own for g in real_gallery], dtype=bool)
        candidates = np.flatnonzero(allowed)
        order = candidates[np.argsort(dist[candidates], kind="stable")][:topk]
        results.append([(int(i), float(dist[i])) for i in order])
    return results


def draw_results(query_paths, gallery_paths, results, thumb, picture):
    from data import decode_image
    from utils.visualize import retrieval_grid

    k = max(len(row) for row in results)
    blank = np.full((thumb, thumb, 3), 32, dtype=np.uint8)
    queries, rows, captions = [], [], []
    for path, row in zip(query_paths, results):
        queries.append(decode_image(path))
        images = [decode_image(gallery_paths[i]) for i, _ in row]
        rows.append(images + [blank] * (k - len(images)))
        captions.append(["query"] + ["%d: %.3f" % (rank, d) for rank, (_, d) in enumerate(row, 1)]
                        + [""] * (k - len(row)))
    grid = retrieval_grid(queries, rows, None, thumb=thumb, border=3, captions=captions)
    folder = os.path.dirname(os.path.abspath(picture))
    os.makedirs(folder, exist_ok=True)
    try:
        ok = cv2.imwrite(picture, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError("cannot write the picture %s (is the extension .jpg or .png, the folder "
                         "writable?)" % picture)
    return grid


def run_search(net, image_size, ctx, args):
    query_paths = [os.path.abspath(path) for path in args.query]
    gallery, gallery_paths = gallery_embeddings(net, image_size, ctx, args)
    queries, _, _ = embed_paths(net, query_paths, image_size, ctx, args.batch_size, 0, False,
                                progress=False, desc="queries")
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError("the gallery embeddings have dimension %d but the network gives %d; delete "
                         "%s or pass another --gallery_embeddings" % (gallery.shape[1], queries.shape[1],
                                                                       args.gallery_embeddings))
    results = search(queries, query_paths, gallery, gallery_paths, args.topk)
    if any(len(row) == 0 for row in results):
        raise ValueError("the gallery holds no image other than the query")
    if any(len(row) < args.topk for row in results):
        logger.info("the gallery holds fewer than --topk %d other images", args.topk)
    for path, row in zip(query_paths, results):
        print("query %s" % path)
        print("  rank  distance  image")
        for rank, (index, distance) in enumerate(row, start=1):
            print("  %4d  %8.4f  %s" % (rank, distance, gallery_paths[index]))
    picture = args.picture or os.path.join(os.path.dirname(args.out) if args.out else "",
                                           "query_results.jpg")
    draw_results(query_paths, gallery_paths, results, args.thumb, picture)
    print("picture: %s" % picture)
    return results


def run_embed(net, image_size, ctx, args):
    paths = list_images(args.images)
    embeddings, kept, skipped = embed_paths(
        net, paths, image_size, ctx, args.batch_size, args.num_workers, args.skip_bad_images,
        args.progress)
    _report_skipped(skipped, "")
    if args.normalize:
        embeddings = unit_rows(embeddings)
    save_embeddings(args.out, embeddings, kept, skipped)
    return embeddings, kept


def run(args):
    validate_args(args)
    ctx = resolve_contexts(args.gpu_idx)
    net, image_size = load_network(args, ctx)
    if args.images is not None:
        return run_embed(net, image_size, ctx, args)
    return run_search(net, image_size, ctx, args)


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stdout)
    try:
        run(args)
    except ValueError as error:
        sys.stderr.write("error: %s\n" % error)
        return 2
    return 0


if __name__ == "__main__":
    # GluonCV's deep blocks exceed Python's default recursion limit when hybridizing.
    sys.setrecursionlimit(2000)
    sys.exit(main())
