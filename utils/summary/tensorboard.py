"""TensorBoard scalars under the original release's tags, plus a per-epoch CSV.

Tags: ``loss`` and ``lr`` every ``summary_step`` iterations (x = global step); ``loss_epoch`` (the
epoch's mean loss) and ``lr_epoch`` (x = epoch); ``metric/R{k}`` (x = global step),
``metric_epoch/R{k}`` (x = epoch), and the best R@1 so far as ``metric/R{k}/best`` and
``metric_epoch/R{k}/best`` whenever it improves. With a validation split of the training classes
(``--val_classes``, ``--folds``) its metrics go beside the test split's as ``metric/val/R{k}`` and
``metric_epoch/val/R{k}``, and when it selects, the best is ``metric/val/<name>/best``. The metric
tags carry a description (the ⓘ of their card). The event files lie in the run folder itself (``utils.run.folder.tensorboard_dir``),
so ``tensorboard --logdir=results`` lists each run by its folder's name; the run's settings are
written once at its start (``utils.summary.settings``).
"""
import csv
import io
import os

from tensorboardX import FileWriter, SummaryWriter
from tensorboardX.event_file_writer import EventsWriter

from utils.run import storage
from utils.run.folder import SUMMARY_CSV, tensorboard_dir
from utils.summary import described
from utils.summary.settings import write_settings


class _NullWriter:
    """Stands in for the event writer on processes that do not log (distributed workers > 0)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class _EventsNow:
    """Writes each event when it is added. tensorboardX's own writer queues events for a thread,
    so after its flush nobody knows which events are on the disk; a checkpoint must (it records the
    event file's size, and a resume cuts the file back to it)."""

    def __init__(self, logdir):
        storage.make_dirs(logdir, storage.RESUME_FIX)
        self._logdir = logdir
        # The pid keeps a resumed process (started within the same second) off its parent's file.
        try:
            self._events = EventsWriter(os.path.join(logdir, "events"), ".%d" % os.getpid())
        except OSError as error:
            raise storage.storage_error(error, logdir, storage.RESUME_FIX) from None

    def get_logdir(self):
        return self._logdir

    def add_event(self, event):
        self._events.write_event(event)

    def flush(self):
        self._events.flush()

    def close(self):
        self._events.close()

    def reopen(self):
        pass


class _FileWriterNow(FileWriter):
    def __init__(self, logdir, **unused):
        self.event_writer = _EventsNow(logdir)


class _SummaryWriterNow(SummaryWriter):
    def _get_file_writer(self):
        if self.all_writers is None or self.file_writer is None:
            self.file_writer = _FileWriterNow(self.logdir)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
        return self.file_writer


METRIC_DESCRIPTION = (
    "%s of the test split (query = gallery, self excluded) at each evaluation; the point at "
    "step 0 is the untrained network, the baseline. Read it with smoothing 0.")
VAL_METRIC_DESCRIPTION = (
    "%s of the validation split (the training images of the held-out training classes, query = "
    "gallery, self excluded) at each evaluation; the point at step 0 is the untrained network.")
BEST_DESCRIPTION = (
    "Best %s so far over the evaluations after training (the parameters kept as "
    "model_best.params), written when it improves. It starts at the first evaluation after "
    "training, so it may start below the untrained value at step 0 of the metric's own tag.")


class TrainingSummary:
    """Writes the event file into ``run_folder.tensorboard_dir(log_dir)`` and
    ``log_dir/summary.csv``; every event and row is on the disk after :meth:`flush`.

    With ``log_dir=None`` nothing is written (every method is a no-op; ``tensorboard_dir`` is None).
    """

    def __init__(self, log_dir):
        if log_dir is None:
            self.writer, self.csv_path, self.tensorboard_dir = _NullWriter(), None, None
            return
        self.tensorboard_dir = tensorboard_dir(log_dir)
        self.writer = _SummaryWriterNow(self.tensorboard_dir)
        self.csv_path = os.path.join(log_dir, SUMMARY_CSV)

    def settings(self, saved, global_step):
        """The run's flags (``args.json``'s content) as text and hparams; once, when it starts."""
        if self.csv_path is not None:
            write_settings(self.writer, saved, global_step)

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

    @classmethod
    def split_tag(cls, name, split="test"):
        """The tag of metric ``name`` of a split: ``R1`` (test), ``val/R1`` (validation)."""
        return cls.metric_tag(name) if split == "test" else "%s/%s" % (split, cls.metric_tag(name))

    def metrics(self, global_step, epoch, metrics, split="test"):
        """Log ``{'R@1': v, 'MAP@R': v, ...}`` as ``metric/R1``, ``metric_epoch/R1``, ... (the
        validation split's as ``metric/val/R1``, ...)."""
        description = METRIC_DESCRIPTION if split == "test" else VAL_METRIC_DESCRIPTION
        for name, value in metrics.items():
            tag, about = self.split_tag(name, split), description % name
            self._described("metric/%s" % tag, value, global_step, about)
            self._described("metric_epoch/%s" % tag, value, epoch, about)

    def best(self, global_step, epoch, name, value, split="test"):
        """The best value so far of the selecting metric ``name`` of ``split``."""
        tag = self.split_tag(name, split)
        about = BEST_DESCRIPTION % (name if split == "test" else "%s %s" % (split, name))
        self._described("metric/%s/best" % tag, value, global_step, about)
        self._described("metric_epoch/%s/best" % tag, value, epoch, about)

    def _described(self, tag, value, step, description):
        if self.csv_path is not None:
            self.writer._get_file_writer().add_summary(described.scalar(tag, value, description), step)

    def csv_row(self, row, columns):
        """Append one row (a dict) to summary.csv with ``columns`` in that order, writing the header
        with the first row."""
        if self.csv_path is None:
            return
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(columns))
        if not os.path.exists(self.csv_path) or os.path.getsize(self.csv_path) == 0:
            writer.writeheader()
        writer.writerow(row)
        storage.append_text(self.csv_path, text.getvalue(), storage.RESUME_FIX)

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()
