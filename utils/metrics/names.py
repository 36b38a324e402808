"""The names of the evaluation metrics: what ``--eval_metrics`` takes, the keys each adds to
results.json, summary.csv and TensorBoard, and the default Recall@K ranks.
"""

DEFAULT_RECALLK = (1, 2, 4, 8)  # the original's --recallk, when no dataset says otherwise
EVAL_METRICS = ("recall", "map_at_r", "r_precision", "nmi", "f1")
# Names of the values each metric adds to results.json and TensorBoard (R@k for each k).
METRIC_KEYS = {"map_at_r": "MAP@R", "r_precision": "RP", "nmi": "NMI", "f1": "F1"}


def metric_keys(args):
    """The result keys an evaluation produces, in a fixed order (the summary.csv columns)."""
    keys = ["R@%d" % k for k in args.recallk]
    return keys + [METRIC_KEYS[m] for m in EVAL_METRICS[1:] if m in args.eval_metrics]
