"""main.py's command-line flags: the original release's names and defaults, grouped, each one
honoured, with the losses' own flags (``loss.flags``); and one validation pass (``validate_args``)
in which every rule is written once.

    parser = build_full_parser()          # main.py's flags: the core ones and the losses'
    args = validate_args(parser.parse_args(argv))
"""
import argparse
import math

from inference.flags import (add_backbone_flag, add_batch_size_flag, add_dataset_flags, add_embed_dim_flag,
                             add_eval_metrics_flag, add_gpu_idx_flag, add_image_size_flag, add_knn_flag,
                             add_num_workers_flag, add_progress_flag, add_recallk_flag)
from loss.flags import add_core_loss_flags, add_loss_arguments, validate_loss_flags
from utils.errors import OneLineParser
from utils.flags import (check_minimums, check_positive_sizes, check_recallk, check_rules, int_list, path_flag,
                         str2bool)
from utils.precision import DTYPES

from .selection import check_select_metric, has_validation_split

# The kvstores a run trains with: MXNet 1.9.1's names (mx.kv.create; its C++ side reads "dist",
# "device" and "nccl" in the name, so dist_sync_device is dist_device_sync). Single machine: local
# and device sum a batch's gradients over the devices, nccl over GPUs; several machines: the
# parameter server, synchronously.
KVSTORES = ("local", "device", "nccl", "dist_sync", "dist_device_sync", "dist_sync_device")


# Names MXNet documents that no run here can train with, and why. MXNet 1.9.1 makes a plain local
# kvstore of any name it does not know, horovod and byteps included, and would train on silently.
REFUSED_KVSTORES = {
    "dist_async": "dist_async makes asynchronous updates, and every worker here applies the same "
                  "summed gradient itself (train/ordered_sum.py); use dist_sync",
    "horovod": "MXNet 1.9.1 has no horovod kvstore (Horovod is a package of its own, not installed "
               "here); use dist_sync under a launcher",
    "byteps": "MXNet 1.9.1 has no byteps kvstore (BytePS is a package of its own, not installed "
              "here); use dist_sync under a launcher",
}


def kvstore_problem(name):
    """Why ``--kvstore=name`` cannot train here (one sentence), or None when it can."""
    if name in KVSTORES:
        return None
    if name in REFUSED_KVSTORES:
        return REFUSED_KVSTORES[name]
    return "unknown kvstore %r; choose from %s" % (name, ", ".join(KVSTORES))


def kvstore_name(value):
    """--kvstore: one of KVSTORES, else an error saying why not."""
    problem = kvstore_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def build_parser():
    """The core flags of main.py, in groups (data, model, loss, optimiser, evaluation and logging,
    checkpoints and faults); :func:`build_full_parser` adds the losses' own."""
    parser = OneLineParser(
        prog="main.py",
        description="Embedding Expansion (CVPR 2020) deep metric learning in MXNet Gluon.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_data_flags(parser.add_argument_group("data"))
    _add_model_flags(parser.add_argument_group("model"))
    add_core_loss_flags(parser.add_argument_group("loss"))
    _add_optimiser_flags(parser.add_argument_group("optimiser"))
    _add_evaluation_flags(parser.add_argument_group("evaluation and logging"))
    _add_protocol_flags(parser.add_argument_group("validation split and model selection (docs/protocol.md)"))
    _add_run_flags(parser.add_argument_group("checkpoints and faults"))
    return parser


def _add_data_flags(data):
    """The data flags."""
    add_dataset_flags(data, "car196",
                      what="dataset (the default, car196, is the original's name of cars196)")
    add_image_size_flag(data, 227)
    add_batch_size_flag(data, 128, per="iteration")
    data.add_argument("--num_instances", default=32, type=int,
                      help="images per class in a batch (even when EE is used; any number, 1 included, "
                           "for a proxy loss, whose negatives are the other classes' proxies)")
    add_num_workers_flag(data, 10)
    data.add_argument("--prefetch", default=None, type=int,
                      help="batches each loader prepares ahead (default: 2 x num_workers); each holds "
                           "batch_size x image_size^2 x 3 bytes of shared memory (/dev/shm)")
    data.add_argument("--skip_bad_images", default=False, type=str2bool,
                      help="decode every image first and leave out (and list) those that cannot be "
                           "decoded, instead of stopping at the first")
    data.add_argument("--seen_classes", default=False, type=str2bool,
                      help="allow test classes that are also training classes (the seen-class "
                           "protocol: named in the log and in results.json); False refuses them, the "
                           "zero-shot protocol (a folder dataset's classes are its folder names)")


def _add_model_flags(model):
    """The model flags."""
    add_backbone_flag(model, "googlenet")
    add_embed_dim_flag(model, 512)
    model.add_argument("--pretrained", default="imagenet", type=path_flag,
                       help="backbone weights: imagenet (GluonCV model store), a .params path, or none")
    model.add_argument("--dtype", default="float32", choices=list(DTYPES),
                       help="precision of the network's convolutions and dense layers (MXNet AMP): "
                            "bfloat16 on CPUs with BF16 instructions, float16 on GPUs; the first "
                            "convolution, the embedding head, loss and metrics stay float32 "
                            "(utils/precision.py)")


def _add_optimiser_flags(optim):
    """The optimiser flags."""
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
    optim.add_argument("--kvstore", default="device", type=kvstore_name, choices=KVSTORES,
                       help="how gradients are summed: over the devices of one machine (local, "
                            "device; nccl: GPUs, an MXNet built with NCCL), or over machines with "
                            "the parameter server under a launcher (dist_sync, dist_device_sync = "
                            "dist_sync_device; docs/distributed.md)")
    add_gpu_idx_flag(optim)


def _add_evaluation_flags(evaluation):
    """The evaluation and logging flags."""
    evaluation.add_argument("--eval_epoch_term", default=50, type=int, help="evaluate every N epochs")
    evaluation.add_argument("--eval_at_start", default=True, type=str2bool,
                            help="evaluate once before training, as a baseline")
    add_recallk_flag(evaluation)
    add_eval_metrics_flag(evaluation, recall_required=True)
    add_knn_flag(evaluation)
    evaluation.add_argument("--summary_step", default=10, type=int,
                            help="log loss and lr every N iterations (global steps N, 2N, ... "
                                 "counted across epochs)")
    evaluation.add_argument("--save_dir", default="./log/will/be/saved/here", type=path_flag,
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
    add_progress_flag(evaluation)


def val_classes_value(text):
    """--val_classes: a whole number of classes (1 or more, kept an int) or a fraction in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of classes or a fraction, got %r" % text) from None
    if not math.isfinite(value) or value <= 0 or (value >= 1 and value != int(value)):
        raise argparse.ArgumentTypeError("expected a whole number of classes (1 or more) or a fraction in "
                                         "(0, 1), got %r" % text)
    return int(value) if value >= 1 else value


def _add_protocol_flags(protocol):
    """The flags of the fair protocol: a class-disjoint validation split of the training classes,
    and which split and metric select model_best.params."""
    protocol.add_argument("--val_classes", default=None, type=val_classes_value,
                          help="hold out this many training classes (a number K >= 1, or a fraction in "
                               "(0, 1)) as a validation split: their training images are not trained on "
                               "and are evaluated beside the test split; default: no validation split")
    protocol.add_argument("--folds", default=None, type=int,
                          help="k-fold: cut the training classes into K folds; fold --fold validates, "
                               "the others train")
    protocol.add_argument("--fold", default=None, type=int, help="the fold (0 .. --folds - 1) that validates")
    protocol.add_argument("--split_seed", default=0, type=int,
                          help="seed of the permutation of the training classes that makes the "
                               "validation split (independent of --seed: runs of several seeds share it)")
    protocol.add_argument("--select_on", default=None, choices=["val", "test"],
                          help="the split whose metric picks model_best.params and results.json's "
                               "best: test (the release's) when no validation split is held out, val "
                               "when one is")
    protocol.add_argument("--select_metric", default=None,
                          help="the metric that picks model_best.params, a key the evaluation computes "
                               "(R@1, MAP@R, ...); default: R@K of the first --recallk rank (R@1), as "
                               "the release")


def _check_protocol_flags(args):
    """The rules of the validation-split flags that need no data (``data.class_split`` checks the
    rest against the number of training classes)."""
    folds, fold = getattr(args, "folds", None), getattr(args, "fold", None)
    if getattr(args, "val_classes", None) is not None and folds is not None:
        raise ValueError("--val_classes and --folds both ask for a validation split; use one of them")
    if fold is not None and folds is None:
        raise ValueError("--fold=%d names a fold of no k-fold split; add --folds=K (K > %d)" % (fold, fold))
    if folds is not None and folds < 2:
        raise ValueError("--folds must be 2 or more, got %d" % folds)
    if folds is not None and (fold is None or not 0 <= fold < folds):
        raise ValueError("--fold must be in 0 .. %d for --folds=%d, got %s" % (folds - 1, folds, fold))
    if not 0 <= getattr(args, "split_seed", 0) < 2 ** 32:
        raise ValueError("--split_seed must be in 0 .. 2^32 - 1, got %d" % args.split_seed)
    if getattr(args, "select_on", None) == "val" and not has_validation_split(args):
        raise ValueError("--select_on=val needs a validation split: add --val_classes=K or --folds=K --fold=I")
    check_select_metric(args)


def _add_run_flags(run):
    """The checkpoints and faults flags."""
    run.add_argument("--resume", default=None, type=path_flag,
                     help="continue a run with the flags of its args.json: auto (the newest intact "
                          "checkpoint in --save_dir; a run stopped before its first checkpoint starts "
                          "again), a checkpoint file, or a run folder; only flags of duration and "
                          "observation, and --lr and --lr_fixed, may be given with it")
    run.add_argument("--overwrite", default=False, type=str2bool,
                     help="start a new run in a --save_dir that holds one; the old run is moved "
                          "into save_dir/previous-TIME (nothing is deleted)")
    run.add_argument("--keep_checkpoints", default=2, type=int,
                     help="how many of the newest checkpoints to keep (model_best.params and "
                          "model_last.params are kept apart from them)")
    run.add_argument("--nan_policy", default="stop", choices=["stop", "skip_batch"],
                     help="on a non-finite loss, or test embeddings all non-finite or one point: stop (keeping "
                          "the last good checkpoint) or skip that batch's update and go on past that "
                          "evaluation (never the best)")


def build_full_parser():
    """main.py's parser: the core flags and the losses' own flags."""
    parser = build_parser()
    add_loss_arguments(parser)
    return parser


# Ranges of the core flags of build_parser: (flag, test, what it must be). A negative learning rate
# would train by gradient ascent. (The loss flags' ranges, --margin's among them, are loss.flags'.)
_CORE_FLAG_RULES = (
    ("lr", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("wd", lambda v: math.isfinite(v) and v >= 0, "0 or more"),
    ("momentum", lambda v: math.isfinite(v) and 0 <= v < 1, "in [0, 1)"),
    ("base_lr_mult", lambda v: math.isfinite(v) and v >= 0, "0 (frozen backbone) or more"),
    ("lr_decay_factor", lambda v: math.isfinite(v) and 0 < v <= 1, "in (0, 1]"),
)


def validate_args(args):
    """Every check of main.py's flags that argparse cannot express, each rule written once; one-line
    ValueErrors. The loss flags' ranges are checked when the namespace holds them (the full
    parser); which loss combines with which layout is the loss's own word (``loss.factory``)."""
    check_positive_sizes(args, ("image_size", "batch_size", "num_instances", "embed_dim", "epochs",
                                "eval_epoch_term", "summary_step"))
    check_minimums(args, {"grid_queries": 0, "projector_every": 0},
                   "--%(name)s must be 0 (off) or more, got %(value)d")
    check_minimums(args, {"projector_points": 1, "keep_checkpoints": 1})
    check_minimums(args, {"num_workers": 0}, "--%(name)s must be 0 or more, got %(value)d")
    check_minimums(args, {"prefetch": 1}, "--%(name)s must be 1 or more (or left out), got %(value)d")
    check_rules(args, _CORE_FLAG_RULES)
    validate_loss_flags(args)
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
    check_recallk(args.recallk)
    _check_protocol_flags(args)
    if kvstore_problem(args.kvstore):  # a resumed run's args.json has not been through argparse
        raise ValueError("--kvstore=%s: %s" % (args.kvstore, kvstore_problem(args.kvstore)))
    return args
