"""The flags that main.py, embed.py and evaluate.py share, each defined once.

Each function adds one flag, or a pair that goes together, to an argument group. The help is one
sentence for every tool; where the tools differ (a default, or what no value means: embed.py and
evaluate.py read a network's configuration from the run that trained it), the function takes that
as a parameter. main.py's parser (``train.options``) calls them beside its own flags; they import
nothing above ``data`` and ``utils``.

    add_gpu_idx_flag(group)                           # every tool
    add_backbone_flag(group, "googlenet")             # main.py; add_backbone_flag(group): from the run
    add_recallk_flag(group, stored_embeddings=True)   # evaluate.py
"""
from data.registry import DATASETS, describe_datasets, describe_default_dirs
from utils.flags import any_metric_list, int_list, metric_list, path_flag, str2bool
from utils.metrics.knn_search import KNN_BACKENDS
from utils.metrics.names import DEFAULT_RECALLK, EVAL_METRICS
from utils.precision import DTYPES

# What no value means for a network's configuration in embed.py and evaluate.py.
FROM_RUN = " (default: from the args.json beside a .params checkpoint)"
FROM_RUN_OR_EXPORT = " (default: from the args.json beside a .params checkpoint, or PREFIX-meta.json)"


def add_gpu_idx_flag(group):
    """--gpu_idx: the devices (``utils.devices.parse_gpu_idx``)."""
    group.add_argument("--gpu_idx", default=None,
                       help="nothing: GPU 0 if visible else CPU; -1: CPU; 0,1: data parallel on GPUs; "
                            "cpu:N: the same data-parallel path on N CPU contexts (tests, debugging)")


def add_checkpoint_flag(group, required=False):
    """--checkpoint: a trained network, as ``inference.trained_network.load_network`` reads one."""
    group.add_argument("--checkpoint", default=None, required=required, type=path_flag,
                       help="parameters saved by main.py (model_last.params, model_best.params, "
                            "checkpoint-*.params), an exported PREFIX-symbol.json, or its PREFIX.onnx "
                            "(ONNX Runtime)")


def add_backbone_flag(group, default=None):
    """--backbone; ``default`` None: the trained run's."""
    group.add_argument("--backbone", default=default, help="backbone network" + ("" if default else FROM_RUN))


def add_embed_dim_flag(group, default=None):
    """--embed_dim; ``default`` None: the trained run's."""
    group.add_argument("--embed_dim", default=default, type=int,
                       help="dimension of the embeddings" + ("" if default else FROM_RUN))


def add_image_size_flag(group, default=None):
    """--image_size; ``default`` None: the trained run's, or an exported network's meta file."""
    group.add_argument("--image_size", default=default, type=int,
                       help="width and height of the input images" + ("" if default else FROM_RUN_OR_EXPORT))


def add_dataset_flags(group, default=None, what="dataset", default_dir_help=None):
    """--data_name (a name of ``data.registry.DATASETS``, listed in the help) and --data_dir.

    ``default`` None: the one in the trained run's args.json. ``default_dir_help`` says what no
    --data_dir means (None: each dataset's own directory, from the registry)."""
    name_default = "; default: the one in args.json" if default is None else ""
    group.add_argument("--data_name", default=default,
                       help="%s: %s%s" % (what, describe_datasets(), name_default))
    group.add_argument("--data_dir", default=None, type=path_flag,
                       help="dataset directory (default: %s)" % (default_dir_help or describe_default_dirs()))


def add_batch_size_flag(group, default, per="iteration"):
    """--batch_size: images per ``per`` (training iteration, or forward pass), over all devices."""
    group.add_argument("--batch_size", default=default, type=int,
                       help="images per %s (over all devices)" % per)


def add_num_workers_flag(group, default):
    """--num_workers: the loader's worker processes."""
    group.add_argument("--num_workers", default=default, type=int,
                       help="data loading worker processes (0 = load and decode in this process)")


def add_progress_flag(group):
    """--progress."""
    group.add_argument("--progress", default=True, type=str2bool, help="show progress bars")


def _recallk_help(stored_embeddings):
    """The ranks of Recall@K when none are given: the datasets' (``DatasetSpec.default_recallk``)."""
    original = ",".join(map(str, DEFAULT_RECALLK))
    cases = ["%s as the original" % original]
    cases += ["%s for %s" % (",".join(map(str, spec.default_recallk)), spec.name)
              for spec in DATASETS.values() if tuple(spec.default_recallk) != tuple(DEFAULT_RECALLK)]
    if stored_embeddings:
        cases.append("%s for stored embeddings without --data_name" % original)
    return "ranks K of Recall@K; default: the dataset's (%s)" % "; ".join(cases)


def add_recallk_flag(group, stored_embeddings=False):
    """--recallk; ``stored_embeddings``: the tool also evaluates embeddings of no named dataset."""
    group.add_argument("--recallk", default=None, type=int_list, help=_recallk_help(stored_embeddings))


def add_eval_metrics_flag(group, recall_required=True):
    """--eval_metrics: a subset of ``EVAL_METRICS``; ``recall_required`` (main.py: R@K picks the best
    epoch) refuses a list without recall."""
    group.add_argument("--eval_metrics", default=list(EVAL_METRICS),
                       type=metric_list if recall_required else any_metric_list,
                       help="comma-separated metrics to compute at evaluation, from %s; leave out nmi,f1 "
                            "to skip clustering (slow on SOP)" % ",".join(EVAL_METRICS))


def add_knn_flag(group):
    """--knn: the exact nearest-neighbour backend (``utils.metrics.knn_search``)."""
    group.add_argument("--knn", default="numpy", choices=list(KNN_BACKENDS),
                       help="exact nearest-neighbour backend (faiss only when installed)")


def add_inference_dtype_flag(group):
    """embed.py's and evaluate.py's --dtype: the precision a trained network embeds in (main.py's
    --dtype, the precision a run trains in, is its own flag, with the same choices)."""
    group.add_argument("--dtype", default="float32", choices=list(DTYPES),
                       help="precision the network embeds in, whatever the run trained in: bfloat16 "
                            "on CPUs with BF16 instructions, float16 "
                            "on GPUs; the embeddings are float32 (utils/precision.py)")
