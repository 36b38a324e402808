"""Command-line flags, the one module that defines and checks them: the original release's names
and defaults, grouped, each one honoured; the losses' own flags, the Symm training recipe and the
learning-rate schedule (``add_loss_arguments``); and one validation pass (``validate_args``) in
which every rule is written once.

    parser = build_full_parser()          # main.py's flags: the core ones and the losses'
    args = validate_args(parser.parse_args(argv))
"""
import argparse
import math

from .errors import OneLineParser


def str2bool(value):
    """'true'/'false'/'1'/'0' (any case) → bool; anything else is an error, not False. The
    original passes True/False; scripts pass 1/0 (README, Flags, says the same)."""
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError("expected True or False (or 1 or 0, in any letter case), got %r" % value)


def path_flag(value):
    """The value of a flag that names a file or folder, refused when empty: ``--save_dir=`` (an
    unset shell variable, say) names nothing, and would fail only at the first write."""
    if not str(value).strip():
        raise argparse.ArgumentTypeError("an empty path names no file or folder (an unset shell "
                                         "variable?); give a path")
    return value


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


# Help sentences of the original's flags that it parsed and never used.
COMPAT_FLAG_HELP = {
    "alpha": "kept for compatibility with the original, which ignored it; unused "
             "(multi_similarity uses --ms_alpha, angular losses --angular_alpha)",
    "beta": "kept for compatibility with the original, which ignored it; unused "
            "(multi_similarity uses --ms_beta)",
    "sigma": "kept for compatibility with the original, which ignored it; unused",
}
LR_SCHEDULES = ("multifactor", "step")

# The kvstores a run trains with: MXNet 1.9.1's names (mx.kv.create; its C++ side reads "dist",
# "device" and "nccl" in the name, so dist_sync_device is dist_device_sync). Single machine: local
# and device sum a batch's gradients over the devices, nccl over GPUs; several machines: the
# parameter server, synchronously.
KVSTORES = ("local", "device", "nccl", "dist_sync", "dist_device_sync", "dist_sync_device")
# Names MXNet documents that no run here can train with, and why. MXNet 1.9.1 makes a plain local
# kvstore of any name it does not know, horovod and byteps included, and would train on silently.
REFUSED_KVSTORES = {
    "dist_async": "dist_async makes asynchronous updates, and every worker here applies the same "
                  "summed gradient itself (utils/ordered_sum.py); use dist_sync",
    "horovod": "MXNet 1.9.1 has no horovod kvstore (Horovod is a package of its own, not installed "
               "here); use dist_sync under a launcher",
    "byteps": "MXNet 1.9.1 has no byteps kvstore (BytePS is a package of its own, not installed "
              "here); use dist_sync under a launcher",
}

DEFAULT_RECALLK = (1, 2, 4, 8)  # the original's --recallk, when no dataset says otherwise
EVAL_METRICS = ("recall", "map_at_r", "r_precision", "nmi", "f1")
# Names of the values each metric adds to results.json and TensorBoard (R@k for each k).
METRIC_KEYS = {"map_at_r": "MAP@R", "r_precision": "RP", "nmi": "NMI", "f1": "F1"}


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


def any_metric_list(value):
    """'recall,nmi' → ['recall', 'nmi'], checked against EVAL_METRICS (any subset, no repeats)."""
    items = [part.strip().lower() for part in str(value).split(",") if part.strip()]
    unknown = [item for item in items if item not in EVAL_METRICS]
    if unknown or not items:
        raise argparse.ArgumentTypeError(
            "unknown metric %r; choose from %s" % (unknown[0] if unknown else value, ",".join(EVAL_METRICS)))
    return list(dict.fromkeys(items))


def metric_list(value):
    """'recall,nmi' → ['recall', 'nmi'], checked against EVAL_METRICS; recall must be among them."""
    items = any_metric_list(value)
    if "recall" not in items:
        raise argparse.ArgumentTypeError("recall must be among the metrics: R@K picks the best epoch")
    return items


def metric_keys(args):
    """The result keys an evaluation produces, in a fixed order (the summary.csv columns)."""
    keys = ["R@%d" % k for k in args.recallk]
    return keys + [METRIC_KEYS[m] for m in EVAL_METRICS[1:] if m in args.eval_metrics]


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
    _add_loss_flags(parser.add_argument_group("loss"))
    _add_optimiser_flags(parser.add_argument_group("optimiser"))
    _add_evaluation_flags(parser.add_argument_group("evaluation and logging"))
    _add_run_flags(parser.add_argument_group("checkpoints and faults"))
    return parser


def _add_data_flags(data):
    """The data flags."""
    data.add_argument("--data_name", default="car196",
                      help="dataset: cars196 (alias car196, the original's default), cub200, sop, "
                           "demo, or folder (your own DIR/train/<class>/*.jpg and DIR/test/<class>/*.jpg)")
    data.add_argument("--data_dir", default=None, type=path_flag,
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
    data.add_argument("--seen_classes", default=False, type=str2bool,
                      help="allow test classes that are also training classes (the seen-class "
                           "protocol: named in the log and in results.json); False refuses them, the "
                           "zero-shot protocol (a folder dataset's classes are its folder names)")


def _add_model_flags(model):
    """The model flags."""
    model.add_argument("--backbone", default="googlenet", help="backbone network")
    model.add_argument("--embed_dim", default=512, type=int, help="dimension of the embeddings")
    model.add_argument("--pretrained", default="imagenet", type=path_flag,
                       help="backbone weights: imagenet (GluonCV model store), a .params path, or none")
    model.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                       help="precision of the network's convolutions and dense layers (MXNet AMP): "
                            "bfloat16 on CPUs with BF16 instructions, float16 on GPUs; the first "
                            "convolution, the embedding head, loss and metrics stay float32 "
                            "(utils/precision.py)")


def add_inference_dtype_flag(group):
    """embed.py's and evaluate.py's --dtype: the precision a trained network embeds in."""
    group.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                       help="precision the network embeds in, whatever the run trained in: bfloat16 "
                            "on CPUs with BF16 instructions, float16 "
                            "on GPUs; the embeddings are float32 (utils/precision.py)")


def _add_loss_flags(loss):
    """The loss flags."""
    loss.add_argument("--loss", default="hphn-triplet", help="loss name (hphn_triplet = hphn-triplet); see README for all")
    loss.add_argument("--margin", default=1e-5, type=float, help="triplet margin of HPHN-triplet")
    loss.add_argument("--soft_margin", default=False, type=str2bool,
                      help="HPHN-triplet with log(1 + exp(d_ap - d_an)) instead of the hinge")
    loss.add_argument("--n_inner_pts", default=2, type=int,
                      help="synthetic points per pair for Embedding Expansion; 0 disables EE")
    loss.add_argument("--ee_l2norm", default=True, type=str2bool,
                      help="L2-normalise the synthetic points of EE")
    # The original parsed these and never used them; their defaults match no paper's parameter,
    # so every loss has its own named flags (add_loss_arguments) instead.
    for name, default in (("alpha", 10), ("beta", 1.2), ("sigma", 0.5)):
        loss.add_argument("--" + name, default=default, type=float, help=COMPAT_FLAG_HELP[name])


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
                            "dist_sync_device; README)")
    optim.add_argument("--gpu_idx", default=None,
                       help="nothing: GPU 0 if visible else CPU; -1: CPU; 0,1: data parallel on GPUs; "
                            "cpu:N: the same data-parallel path on N CPU contexts (tests, debugging)")


def _add_evaluation_flags(evaluation):
    """The evaluation and logging flags."""
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
    evaluation.add_argument("--progress", default=True, type=str2bool, help="show progress bars")


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
                     help="on a non-finite loss, or test embeddings all non-finite: stop (keeping "
                          "the last good checkpoint) or skip that batch's update and go on past that "
                          "evaluation (never the best)")


def add_loss_arguments(parser):
    """Add the per-loss flags, the Symm training-recipe flags and the schedule flags.

    ``parser`` is an ``argparse.ArgumentParser`` (a group named "loss options" is added) or an
    argument group (the flags go into it). The flags of :func:`build_parser` (--loss, --margin,
    --soft_margin, --n_inner_pts, --ee_l2norm, --alpha, --beta, --sigma, --num_instances) are not
    redefined. Returns the group the flags went into.
    """
    group = parser.add_argument_group("loss options") if isinstance(parser, argparse.ArgumentParser) else parser
    add = group.add_argument
    add("--hphn_distinct_points", default=False, type=str2bool,
        help="hphn_triplet: mine the hardest negatives over the distinct EE points, each extreme "
             "picked once, so the gradient is the loss's derivative; False: the release's form, whose "
             "twin synthetic points tie and both take the gradient (docs/losses.md)")
    add("--triplet_margin", default=0.2, type=float,
        help="margin of triplet and symm_triplet (FaceNet: 0.2)")
    add("--triplet_squared", default=True, type=str2bool,
        help="triplet and symm_triplet on squared Euclidean distances (FaceNet, TensorFlow), "
             "else on Euclidean distances")
    add("--lifted_margin", default=1.0, type=float,
        help="margin alpha of lifted and symm_lifted (Oh Song et al.: 1.0)")
    add("--npair_reg", default=0.002, type=float,
        help="lambda of the 0.25 * lambda * (mean |A|^2 + mean |P|^2) regulariser of npair, angular, "
             "symm_npair and symm_angular (Sohn; TensorFlow npairs_loss: 0.002)")
    add("--ms_alpha", default=2.0, type=float, help="positive scale alpha of multi_similarity")
    add("--ms_beta", default=50.0, type=float, help="negative scale beta of multi_similarity")
    add("--ms_base", default=0.5, type=float, help="similarity margin lambda of multi_similarity")
    add("--ms_epsilon", default=0.1, type=float, help="pair-mining margin epsilon of multi_similarity")
    add("--angular_alpha", default=45.0, type=float,
        help="angle bound alpha in degrees of angular and symm_angular (Wang et al.: 45)")
    add("--angular_weight", default=2.0, type=float,
        help="weight of the angular loss in the total (Symm release: 2.0)")
    add("--symm_angular_weight", default=1.0, type=float,
        help="weight of the symm_angular loss in the total (Symm release: 1.0)")
    add("--symm_ratio", default=2.0, type=float,
        help="Symmetrical Synthesis: Q = symm_norm_ratio * (symm_ratio * R - P); 2 mirrors P")
    add("--symm_norm_ratio", default=1.0, type=float, help="Symmetrical Synthesis: scale of Q")
    add("--symm_norm", default=False, type=str2bool,
        help="Symmetrical Synthesis: rescale each synthetic point to the norm of its basis")
    add_recipe_arguments(group)
    return group


def add_recipe_arguments(group):
    """The learning-rate schedule and the Symm release's regularisation (not loss parameters)."""
    add = group.add_argument
    add("--lr_schedule", default="multifactor", choices=LR_SCHEDULES,
        help="multifactor: x --lr_decay_factor at each of --lr_decay_epochs; step: x 0.5 every "
             "--lr_step_iters iterations, then --lr_fixed from --lr_fix_after_iters (Symm)")
    add("--lr_step_iters", default=5000, type=int,
        help="step schedule: halve the learning rate every N iterations")
    add("--lr_fix_after_iters", default=15000, type=int,
        help="step schedule: use --lr_fixed from this iteration on")
    add("--lr_fixed", default=1e-5, type=float, help="step schedule: the final, fixed learning rate")
    add("--l2_reg", default=0.0, type=float,
        help="add l2_reg * sum of |w|^2 / 2 over the non-BatchNorm parameters to the loss "
             "(Symm: 5e-3, with --wd=0)")
    add("--embed_grad_mult", default=1.0, type=float,
        help="multiply the embedding layer's gradients by this before the update (Symm: 10)")


def build_full_parser():
    """main.py's parser: the core flags and the losses' own flags."""
    parser = build_parser()
    add_loss_arguments(parser)
    return parser


def check_minimums(args, minimums, message="--%(name)s must be at least %(low)d, got %(value)d"):
    """One-line ValueError for the first flag of ``minimums`` ({name: lowest}) below its lowest;
    a flag the namespace does not hold, or that is None (not given), is passed over."""
    for name, low in minimums.items():
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise ValueError(message % dict(name=name, low=low, value=value))


def check_positive_sizes(args, names):
    """``--NAME must be a positive integer``: the sizes given (None = not given) must be >= 1."""
    check_minimums(args, dict.fromkeys(names, 1), "--%(name)s must be a positive integer, got %(value)d")


def check_recallk(recallk):
    if recallk is not None and min(recallk) < 1:
        raise ValueError("--recallk must list positive ranks, got %s" % ",".join(map(str, recallk)))


# Ranges of the loss and recipe flags (add_loss_arguments): (flag, test, what it must be).
_LOSS_FLAG_RULES = (
    ("ms_alpha", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("ms_beta", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("embed_grad_mult", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("lr_fixed", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("triplet_margin", lambda v: math.isfinite(v) and v >= 0, "0 or more"),
    ("l2_reg", lambda v: math.isfinite(v) and v >= 0, "0 or more"),
    ("ms_epsilon", lambda v: math.isfinite(v) and v >= 0, "0 or more"),
)


# Ranges of the core flags of build_parser: (flag, test, what it must be). A negative learning rate
# would train by gradient ascent; a negative margin asks for nothing.
_CORE_FLAG_RULES = (
    ("lr", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("margin", lambda v: math.isfinite(v) and v >= 0, "0 or more"),
    ("wd", lambda v: math.isfinite(v) and v >= 0, "0 or more"),
    ("momentum", lambda v: math.isfinite(v) and 0 <= v < 1, "in [0, 1)"),
    ("base_lr_mult", lambda v: math.isfinite(v) and v >= 0, "0 (frozen backbone) or more"),
    ("lr_decay_factor", lambda v: math.isfinite(v) and 0 < v <= 1, "in (0, 1]"),
)


def _check_rules(args, rules):
    for flag, ok, what in rules:
        value = getattr(args, flag)
        if not ok(value):
            raise ValueError(f"--{flag} must be {what}, got {value}.")


def validate_loss_flags(args):
    """The ranges of --n_inner_pts and of the flags of :func:`add_loss_arguments` (a namespace of
    :func:`build_parser` alone has only the first). Part of :func:`validate_args`; also the first
    step of ``loss.factory.check_loss_args``."""
    if args.n_inner_pts < 0:
        raise ValueError("--n_inner_pts must be 0 (no EE) or more, got %d." % args.n_inner_pts)
    if not hasattr(args, "lr_schedule"):
        return
    _check_rules(args, _LOSS_FLAG_RULES)
    if not 0 < args.angular_alpha < 90:
        raise ValueError(f"--angular_alpha is in degrees, strictly between 0 and 90, got {args.angular_alpha}.")
    if args.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"--lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {args.lr_schedule!r}.")
    if args.lr_step_iters < 1:
        raise ValueError(f"--lr_step_iters must be a positive number of iterations, got {args.lr_step_iters}.")
    if args.lr_fix_after_iters < 0:
        raise ValueError(f"--lr_fix_after_iters must be 0 or more, got {args.lr_fix_after_iters}.")


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
    _check_rules(args, _CORE_FLAG_RULES)
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
    if kvstore_problem(args.kvstore):  # a resumed run's args.json has not been through argparse
        raise ValueError("--kvstore=%s: %s" % (args.kvstore, kvstore_problem(args.kvstore)))
    return args
