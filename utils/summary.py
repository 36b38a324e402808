"""TensorBoard scalars under the original release's tags, plus a per-epoch CSV.

Tags: ``loss`` and ``lr`` every ``summary_step`` iterations (x = global step); ``loss_epoch`` (the
epoch's mean loss) and ``lr_epoch`` (x = epoch); ``metric/R{k}`` (x = global step),
``metric_epoch/R{k}`` (x = epoch), and the best R@1 so far as ``metric/R{k}/best`` and
``metric_epoch/R{k}/best`` whenever it improves.
"""
import csv
import os

from tensorboardX import SummaryWriter


class _NullWriter:
    """Stands in for the event writer on processes that do not log (distributed workers > 0)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class TrainingSummary:
    """Writes the event file in ``log_dir/tensorboard_log`` and ``log_dir/summary.csv``.

    With ``log_dir=None`` nothing is written (every method is a no-op).
    """

    def __init__(self, log_dir, purge_step=None):
        if log_dir is None:
            self.writer, self.csv_path = _NullWriter(), None
            return
        self.writer = SummaryWriter(os.path.join(log_dir, "tensorboard_log"), purge_step=purge_step)
        self.csv_path = os.path.join(log_dir, "summary.csv")

    def step(self, global_step, loss, lr):
        self.writer.add_scalar("loss", loss, global_step)
        self.writer.add_scalar("lr", lr, global_step)

    def epoch(self, epoch, mean_loss, lr):
        self.writer.add_scalar("loss_epoch", mean_loss, epoch)
        self.writer.add_scalar("lr_epoch", lr, epoch)

    @staticmethod
    def metric_tag(name):
        """'R@1' → 'R1' (the original's tag), 'MAP@R' → 'MAP_R' (TensorBoard tags take no '@');
        'RP', 'NMI', 'F1' stay as they are."""
        return "R" + name[2:] if name.startswith("R@") else name.replace("@", "_")

    def metrics(self, global_step, epoch, metrics):
        """Log ``{'R@1': v, 'MAP@R': v, ...}`` as ``metric/R1``, ``metric_epoch/R1``, ..."""
        for name, value in metrics.items():
            tag = self.metric_tag(name)
            self.writer.add_scalar("metric/%s" % tag, value, global_step)
            self.writer.add_scalar("metric_epoch/%s" % tag, value, epoch)

    def best(self, global_step, epoch, name, value):
        tag = self.metric_tag(name)
        self.writer.add_scalar("metric/%s/best" % tag, value, global_step)
        self.writer.add_scalar("metric_epoch/%s/best" % tag, value, epoch)

    def csv_row(self, row):
        """Append one row (a dict) to summary.csv, writing the header with the first row."""
        if self.csv_path is None:
            return
        new_file = not os.path.exists(self.csv_path)
        with open(self.csv_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new_file:
                writer.writeheader()
            writer.writerow(row)

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()
