"""A run's settings as TensorBoard shows them: written once, when the run starts.

- TEXT tab, tag ``args``: every flag of ``args.json`` as a table, with the command that started
  the run (a resume's changes stay in ``args.json``'s history);
- HPARAMS tab: the main hyperparameters (:data:`HPARAMS`) as the hparams plugin's session start
  of this run. No experiment summary is written: TensorBoard then gathers the hyperparameters of
  every run under ``--logdir``, and takes as metrics the last value of each scalar tag of those
  runs (``metric/R1`` is the last R@1, ``metric/R1/best`` the best one), so runs with different
  ranks or metrics compare in one table.

Not tensorboardX's ``add_hparams``: it writes into a new sub-folder named by the time (a second
run, ``NAME/<time>``, holding copies of the metrics) and an experiment summary per call, of which
TensorBoard reads only the first run's.
"""
from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionStartInfo
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboardX.summary import text as text_summary

TEXT_TAG = "args"
TEXT_DESCRIPTION = ("Every flag of the run's args.json when it started; what a resume changed "
                    "(--epochs, ...) is in the history of args.json.")
HPARAMS_PLUGIN = "hparams"
SESSION_START_TAG = "_hparams_/session_start_info"  # the tag TensorBoard's hparams plugin reads

# What is trained and how: the columns of the HPARAMS table. Every other flag is in the text table.
# The protocol's flags (docs/protocol.md) are None, so left out, in a run without a validation split.
HPARAMS = ("data_name", "backbone", "pretrained", "embed_dim", "image_size", "loss", "n_inner_pts",
           "ee_l2norm", "margin", "soft_margin", "batch_size", "num_instances", "optim", "lr", "wd",
           "lr_schedule", "lr_decay_factor", "lr_decay_epochs", "l2_reg", "embed_grad_mult",
           "epochs", "seed", "val_classes", "folds", "fold", "select_on", "select_metric")


def _show(value):
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return "none" if value is None else str(value)


def args_markdown(saved):
    """``args.json`` (a dict, ``history`` included) as a Markdown table, flags sorted by name,
    under the command of the run's first start."""
    history = saved.get("history") or [{}]
    command = " ".join(history[0].get("command", []))
    lines = ["started %s: `python3 %s`" % (history[0].get("time", "?"), command), "",
             "| flag | value |", "|---|---|"]
    for name in sorted(saved):
        if name != "history":
            lines.append("| %s | %s |" % (name, _show(saved[name]).replace("|", "\\|")))
    return "\n".join(lines)


def hparams_of(saved):
    """``{name: str | bool | float}`` of the :data:`HPARAMS` that ``saved`` holds (lists joined
    by commas; unset flags left out)."""
    values = {}
    for name in HPARAMS:
        value = saved.get(name)
        if value is None:
            continue
        if isinstance(value, list):
            value = _show(value)
        values[name] = value if isinstance(value, (str, bool)) else float(value)
    return values


def session_start_summary(hparams):
    """The hparams plugin's session start (a ``Summary``) holding ``hparams``."""
    info = SessionStartInfo()
    for name, value in hparams.items():
        if isinstance(value, str):
            info.hparams[name].string_value = value
        elif isinstance(value, bool):
            info.hparams[name].bool_value = value
        else:
            info.hparams[name].number_value = value
    content = HParamsPluginData(session_start_info=info, version=0).SerializeToString()
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=HPARAMS_PLUGIN,
                                                                      content=content))
    return Summary(value=[Summary.Value(tag=SESSION_START_TAG, metadata=metadata)])


def write_settings(writer, saved, step):
    """Write the text table and the hparams session start of ``saved`` (the run's ``args.json``)
    at ``step`` through ``writer`` (a tensorboardX ``SummaryWriter``); once per run."""
    table = text_summary(TEXT_TAG, args_markdown(saved))
    table.value[0].tag = TEXT_TAG  # tensorboardX appends "/text_summary" to it
    table.value[0].metadata.summary_description = TEXT_DESCRIPTION
    writer._get_file_writer().add_summary(table, step)
    writer._get_file_writer().add_summary(session_start_summary(hparams_of(saved)), step)
