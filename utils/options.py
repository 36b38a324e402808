"""Command-line flags: the original release's names and defaults, grouped, each one honoured."""
import argparse


def str2bool(value):
    """'true'/'false'/'1'/'0' (any case) → bool; anything else is an error, not False."""
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError("expected True or False, got %r" % value)


def int_list(value):
    """'400,800' → [400, 800]."""
    try:
        items = [int(part) for part in str(value).split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected comma-separated integers such as 1,2,4,8, got %r" % value
        ) from None
    if not items:
        raise argparse.ArgumentTypeError("expected at least one integer, got %r" % value)
    return items


EVAL_METRICS = ("recall", "map_at_r", "r_precision", "nmi", "f1")
# Names of the values each metric adds to results.json and TensorBoard (R@k for each k).
METRIC_KEYS = {"map_at_r": "MAP@R", "r_precision": "RP", "nmi": "NMI", "f1": "F1"}


def metric_list(value):
    """'recall,nmi' → ['recall', 'nmi'], checked against EVAL_METRICS."""
    items = [part.strip().lower() for part in str(value).split(",") if part.strip()]
    unknown = [item for item in items if item not in EVAL_METRICS]
    if unknown or not items:
        raise argparse.ArgumentTypeError(
            "unknown metric %r; choose from %s" % (unknown[0] if unknown else value, ",".join(EVAL_METRICS)))
    if "recall" not in items:
        raise argparse.ArgumentTypeError("recall must be among the metrics: R@K picks the best epoch")
    return items


def metric_keys(args):
    """The result keys an evaluation produces, in a fixed order (the summary.csv columns)."""
    keys = ["R@%d" % k for k in args.recallk]
    return keys + [METRIC_KEYS[m] for m in EVAL_METRICS[1:] if m in args.eval_metrics]


def build_parser():
    parser = argparse.ArgumentParser(
        description="Embedding Expansion (CVPR 2020) deep metric learning in MXNet Gluon.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data_name", default="car196",
                      help="dataset: cars196 (alias car196, the original's default), cub200, sop, "
                           "demo, or folder (your own DIR/train/<class>/*.jpg and DIR/test/<class>/*.jpg)")
    data.add_argument("--data_dir", default=None,
                      help="dataset directory (default: ./data/CARS_196, ./data/CUB_200_2011, "
                           "./data/Stanford_Online_Products, ./data/demo; required for folder)")
    data.add_argument("--image_size", default=227, type=int, help="width and height of the input images")
    data.add_argument("--batch_size", default=128, type=int, help="images per iteration (over all devices)")
    data.add_argument("--num_instances", default=32, type=int,
                      help="images per class in a batch (even when EE is used)")
    data.add_argument("--num_workers", default=10, type=int, help="data loading worker processes")
    data.add_argument("--prefetch", default=None, type=int,
                      help="batches each loader prepares ahead (default: 2 x num_workers); each holds "
                           "batch_size x image_size^2 x 3 bytes of shared memory (/dev/shm)")
    data.add_argument("--skip_bad_images", default=False, type=str2bool,
                      help="decode every image first and leave out (and list) those that cannot be "
                           "decoded, instead of stopping at the first")

    model = parser.add_argument_group("model")
    model.add_argument("--backbone", default="googlenet", help="backbone network")
    model.add_argument("--embed_dim", default=512, type=int, help="dimension of the embeddings")
    model.add_argument("--pretrained", default="imagenet",
                       help="backbone weights: imagenet (GluonCV model store), a .params path, or none")
    model.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                       help="precision of the network's convolutions and dense layers (MXNet AMP): "
                            "bfloat16 on CPUs with BF16 instructions, float16 on GPUs; the embedding "
                            "head, loss and metrics stay float32 (utils/precision.py)")

    loss = parser.add_argument_group("loss")
    loss.add_argument("--loss", default="hphn-triplet", help="loss name (hphn_triplet = hphn-triplet); see README for all")
    loss.add_argument("--margin", default=1e-5, type=float, help="triplet margin of HPHN-triplet")
    loss.add_argument("--soft_margin", default=False, type=str2bool,
                      help="HPHN-triplet with log(1 + exp(d_ap - d_an)) instead of the hinge")
    loss.add_argument("--n_inner_pts", default=2, type=int,
                      help="synthetic points per pair for Embedding Expansion; 0 disables EE")
    loss.add_argument("--ee_l2norm", default=True, type=str2bool,
                      help="L2-normalise the synthetic points of EE")
    # The original parsed these and never used them; their defaults match no paper's parameter,
    # so every loss has its own named flags (loss/factory.py) instead.
    loss.add_argument("--alpha", default=10, type=float,
                      help="kept for compatibility with the original, which ignored it; unused "
                           "(multi_similarity uses --ms_alpha, angular losses --angular_alpha)")
    loss.add_argument("--beta", default=1.2, type=float,
                      help="kept for compatibility with the original, which ignored it; unused "
                           "(multi_similarity uses --ms_beta)")
    loss.add_argument("--sigma", default=0.5, type=float,
                      help="kept for compatibility with the original, which ignored it; unused")

    optim = parser.add_argument_group("optimiser")
    optim.add_argument("--optim", default="adam", choices=["adam", "sgd"], help="optimiser")
    optim.add_argument("--lr", default=0.0001, type=float, help="base learning rate")
    optim.add_argument("--wd", default=0.0005, type=float, help="weight decay")
    optim.add_argument("--momentum", default=0.9, type=float, help="momentum of SGD")
    optim.add_argument("--base_lr_mult", default=1.0, type=float,
                       help="learning-rate multiplier of the backbone's parameters")
    optim.add_argument("--lr_decay_factor", default=0.5, type=float,
                       help="learning rate multiplier at each epoch of --lr_decay_epochs")
    optim.add_argument("--lr_decay_epochs", default=[10, 20, 40, 80], type=int_list,
                       help="comma-separated epochs at which the learning rate decays")
    optim.add_argument("--epochs", default=5000, type=int,
                       help="training epochs; an epoch is num_train_classes x num_instances images")
    optim.add_argument("--start_epoch", default=0, type=int,
                       help="epoch to start counting from (learning-rate schedule and logs)")
    optim.add_argument("--seed", default=0, type=int, help="random seed")
    optim.add_argument("--kvstore", default="device", help="MXNet kvstore type")
    optim.add_argument("--gpu_idx", default=None,
                       help="nothing: GPU 0 if visible else CPU; -1: CPU; 0,1: data parallel on GPUs; "
                            "cpu:N: the same data-parallel path on N CPU contexts (tests, debugging)")

    evaluation = parser.add_argument_group("evaluation and logging")
    evaluation.add_argument("--eval_epoch_term", default=50, type=int, help="evaluate every N epochs")
    evaluation.add_argument("--eval_at_start", default=True, type=str2bool,
                            help="evaluate once before training, as a baseline")
    evaluation.add_argument("--recallk", default=None, type=int_list,
                            help="ranks K of Recall@K; default: the dataset's (1,2,4,8 as the "
                                 "original; 1,10,100,1000 for SOP)")
    evaluation.add_argument("--eval_metrics", default=list(EVAL_METRICS), type=metric_list,
                            help="comma-separated metrics to compute at evaluation, from %s; "
                                 "leave out nmi,f1 to skip clustering (slow on SOP)"
                                 % ",".join(EVAL_METRICS))
    evaluation.add_argument("--knn", default="numpy", choices=["numpy", "faiss"],
                            help="exact nearest-neighbour backend (faiss only when installed)")
    evaluation.add_argument("--summary_step", default=10, type=int,
                            help="log loss and lr every N iterations")
    evaluation.add_argument("--save_dir", default="./log/will/be/saved/here",
                            help="directory for logs, parameters and results")
    evaluation.add_argument("--grid_queries", default=8, type=int,
                            help="fixed test queries shown with their 8 nearest neighbours in "
                                 "TensorBoard (IMAGES tab) at every evaluation; 0 disables")
    evaluation.add_argument("--projector_every", default=0, type=int,
                            help="write test embeddings, labels and thumbnails for TensorBoard's "
                                 "projector at evaluations of epochs that are multiples of N, and "
                                 "the last; 0 disables")
    evaluation.add_argument("--projector_points", default=1000, type=int,
                            help="at most this many test embeddings in the projector")
    evaluation.add_argument("--export", default=False, type=str2bool,
                            help="after training, export the network as symbol + params "
                                 "(save_dir/export) for SymbolBlock.imports, and as model.onnx; with "
                                 "--resume=auto on "
                                 "a finished run, export it without training")
    evaluation.add_argument("--progress", default=True, type=str2bool, help="show progress bars")

    run = parser.add_argument_group("checkpoints and faults")
    run.add_argument("--resume", default=None,
                     help="continue a run with the flags of its args.json: auto (the newest intact "
                          "checkpoint in --save_dir), a checkpoint file, or a run folder; only flags "
                          "of duration and observation may be given with it")
    run.add_argument("--overwrite", default=False, type=str2bool,
                     help="start a new run in a --save_dir that holds one; the old run is moved "
                          "into save_dir/previous-TIME (nothing is deleted)")
    run.add_argument("--keep_checkpoints", default=2, type=int,
                     help="how many of the newest checkpoints to keep (model_best.params and "
                          "model_last.params are kept apart from them)")
    run.add_argument("--nan_policy", default="stop", choices=["stop", "skip_batch"],
                     help="on a non-finite loss: stop (keeping the last good checkpoint) or skip "
                          "that batch's update")
    return parser


def validate_args(args):
    """Cross-flag checks that argparse cannot express; one-line ValueErrors."""
    positive = ("image_size", "batch_size", "num_instances", "embed_dim", "epochs",
                "eval_epoch_term", "summary_step")
    for name in positive:
        if getattr(args, name) < 1:
            raise ValueError("--%s must be a positive integer, got %d" % (name, getattr(args, name)))
    for name in ("grid_queries", "projector_every"):
        if getattr(args, name) < 0:
            raise ValueError("--%s must be 0 (off) or more, got %d" % (name, getattr(args, name)))
    if args.projector_points < 1:
        raise ValueError("--projector_points must be at least 1, got %d" % args.projector_points)
    if args.keep_checkpoints < 1:
        raise ValueError("--keep_checkpoints must be at least 1, got %d" % args.keep_checkpoints)
    if args.num_workers < 0:
        raise ValueError("--num_workers must be 0 or more, got %d" % args.num_workers)
    if args.prefetch is not None and args.prefetch < 1:
        raise ValueError("--prefetch must be 1 or more (or left out), got %d" % args.prefetch)
    if args.n_inner_pts < 0:
        raise ValueError("--n_inner_pts must be 0 (no EE) or more, got %d" % args.n_inner_pts)
    if args.batch_size % args.num_instances:
        raise ValueError(
            "--batch_size %d is not a multiple of --num_instances %d; choose e.g. --batch_size=%d"
            % (args.batch_size, args.num_instances, max(1, args.batch_size // args.num_instances)
               * args.num_instances)
        )
    if not 0 <= args.start_epoch < args.epochs:
        raise ValueError("--start_epoch must be in [0, --epochs), got %d" % args.start_epoch)
    if sorted(set(args.lr_decay_epochs)) != list(args.lr_decay_epochs) or min(args.lr_decay_epochs) < 1:
        raise ValueError(
            "--lr_decay_epochs must be strictly increasing positive epochs, got %s"
            % ",".join(map(str, args.lr_decay_epochs))
        )
    if args.recallk is not None and min(args.recallk) < 1:
        raise ValueError("--recallk must list positive ranks, got %s" % ",".join(map(str, args.recallk)))
    return args
