"""The training loop of a run: epochs, evaluations, checkpoints, and stopping where the state is whole.

The loop's position is a ``train.state.TrainingState`` (epoch, batch, step, the epoch's running
loss, a pending evaluation, results, the run files' sizes), which the loop mutates and every
checkpoint stores (``TrainingState.to_json``); its parts are a ``train.parts.TrainingParts``.

Checkpoints are written after the evaluation before training, after every evaluation, and when
the run is stopped (Ctrl-C, SIGTERM, an image that cannot be decoded); no checkpoint is written of
a state whose loss went non-finite.

A network whose test embeddings are all non-finite (NaN or inf: it diverged, though its loss may
have stayed finite), or all one point (collapsed: whether a huge learning rate leaves NaN or dead
ReLUs depends on the CPU's kernels), is never kept as the best. Under ``--nan_policy=stop`` such an
evaluation after training stops the run as a non-finite loss does (``NonFiniteEmbeddingsError``, exit 1): nothing of
it is written (no model_last/model_best, summary.csv row, results or checkpoint), so the last
checkpoint and model_best.params stay those of good states, to resume from with a lower learning
rate. Under ``--nan_policy=skip_batch``, which tolerates what diverged, it is recorded (its count in
``non_finite``) and the run goes on. Embeddings that are only partly non-finite are counted and
warned about (``inference.batch_embedding.warn_non_finite``) and compete for the best as they are. The
evaluation before training is a baseline, never the best, and is recorded whatever it holds.
"""
import logging
import os
import time

from tqdm import tqdm

from data.transforms import ImageDecodeError
from model import materialize
from train.evaluation import evaluate, share_untrained_parameters
from train.optimizer import broadcast_initial_parameters, device_free_states
from train.schedules import rate_flag
from train.selection import selection_from_args
from train.step import NonFiniteEmbeddingsError, NonFiniteLossError, train_step
from utils.metrics import is_one_point, non_finite_rows
from utils.metrics.names import metric_keys
from utils.precision import loss_scaler_state, use_float32
from utils.run import checkpoint, faults, folder as run_folder, storage
from utils.run.interrupts import RunInterrupted
from utils.summary.grid import log_retrieval_grid, pick_fixed_queries
from utils.summary.projector import log_projector

logger = logging.getLogger("ee_gluon")


def _collapse_description(non_finite, count):
    """What is wrong with ``count`` test embeddings that hold no ranking (``is_one_point``)."""
    if non_finite == count:
        return "all non-finite (%d of %d, NaN or inf)" % (non_finite, count)
    if non_finite == 0:
        return "all one point (%d of %d identical: the network maps every image alike)" % (count, count)
    return "all non-finite or one point (%d of %d non-finite, the other %d identical)" % (
        non_finite, count, count - non_finite)


def _record(values, epoch, non_finite, val_values=None):
    """A results.json entry: the test metrics, their epoch, how many test embeddings were not finite,
    and with a validation split its metrics (``val``)."""
    record = dict(values, epoch=epoch, non_finite=non_finite)
    if val_values is not None:
        record["val"] = dict(val_values)
    return record


class TrainingLoop:
    """Trains ``parts.net`` from ``state`` to ``args.epochs``; see the module docstring.

    ``parts``: ``train.parts.TrainingParts`` (what main.py built); ``state``:
    ``train.state.TrainingState``, mutated as the run goes; ``summary``: ``TrainingSummary``;
    ``interrupts``: ``Interrupts``.
    """

    def __init__(self, args, parts, state, summary, interrupts):
        self.args, self.parts, self.state = args, parts, state
        self.summary, self.interrupts = summary, interrupts
        self.is_chief = parts.is_chief
        self.save_dir = args.save_dir
        self.iters_per_epoch = len(parts.train_loader)
        self.selection = selection_from_args(args)  # the split and metric that pick the best parameters
        self.has_val = parts.data.val_loader is not None  # a validation split is held out
        self._sizes_before_eval = None
        self._broadcast_pending = parts.kvstore is not None  # see _before_first_update
        # summary.csv: one row per epoch; the metrics are empty in epochs without an evaluation.
        self.csv_columns = ["epoch", "step", "loss", "lr"] + metric_keys(args)
        if self.has_val:
            self.csv_columns += ["val/" + key for key in metric_keys(args)]
        # Seed 0, not --seed: the same queries in every run, so that grids compare across runs.
        self.grid_queries = (pick_fixed_queries(parts.data.test_labels, args.grid_queries, seed=0)
                             if args.grid_queries else None)

    # --------------------------------------------------------------------------------- driving

    def run(self, fresh):
        """Train until ``args.epochs``; on a stop, write a checkpoint and re-raise.

        ``fresh``: a new run (not a resume); it gets a checkpoint before its first update, so that
        a run killed in its first epoch can be resumed too.
        """
        if not self.is_chief:
            self.state.pending_eval = None  # only the chief evaluates
        if fresh and self.is_chief:  # before the first checkpoint, so a resume keeps them, once
            self.summary.settings(run_folder.read_args(self.save_dir), self.state.global_step)
        try:
            # (Not distributed: there no checkpoint precedes the first update, see _checkpoint, and
            # an inference pass before the kvstore's initialisation breaks it, see _before_first_update.)
            if fresh and not self.state.pending_eval and self.parts.kvstore is None:
                materialize(self.parts.net, self.parts.ctx, self.args.image_size)
                self._checkpoint()
            while True:
                if self.state.pending_eval:
                    self._evaluate()
                if self.state.epoch >= self.args.epochs:
                    return self.state.results
                self._train_epoch()
        except RunInterrupted as stop:
            stop.checkpoint = self._stop_checkpoint()
            raise
        except ImageDecodeError as error:
            self._stop_checkpoint()
            raise ValueError("%s; replace that file, then resume with: python3 main.py --save_dir=%s "
                             "--resume=auto" % (error, self.save_dir)) from None
        except NonFiniteLossError as error:
            raise NonFiniteLossError("%s; %s, or with --nan_policy=skip_batch to skip such updates" % (
                error, self._lower_rate_advice(self.state.global_step))) from None

    def _lower_rate_advice(self, iteration):
        """How to go on after training diverged at 0-based ``iteration``: resume from the last
        checkpoint (none was written of the diverged state) with a lower learning-rate flag."""
        flag, value = rate_flag(self.args, iteration)
        listed = checkpoint.list_checkpoints(self.save_dir)
        start = ("from its last checkpoint, %s," % os.path.basename(listed[-1][0])[: -len(".json")]
                 if listed else "(from the beginning: it has no checkpoint yet)")
        return "resume %s with a lower --%s: python3 main.py --save_dir=%s --resume=auto --%s=LR (LR " \
               "below this run's %g)" % (start, flag, self.save_dir, flag, value)

    def _stop_checkpoint(self):
        # During an evaluation the state is that of just before it: so are the files it records.
        with self.interrupts.deferred(raise_after=False):
            return self._checkpoint(sizes=self._sizes_before_eval)

    # -------------------------------------------------------------------------------- training

    def _train_epoch(self):
        args, state = self.args, self.state
        epoch, first = state.epoch, state.batch_in_epoch
        self.parts.data.train_sampler.set_epoch(epoch, skip_batches=first)
        start = time.time()
        bar = tqdm(total=(self.iters_per_epoch - first) * args.batch_size, unit="img",
                   disable=not (args.progress and self.is_chief), desc="epoch %d" % (epoch + 1),
                   leave=False, dynamic_ncols=True)
        for i, (images, labels) in enumerate(self.parts.train_loader, start=first):
            with self.interrupts.deferred():
                self._step(epoch, i, images, labels)
            bar.update(images.shape[0])
        bar.close()
        with self.interrupts.deferred():
            self._end_epoch(epoch, time.time() - start)

    def _step(self, epoch, i, images, labels):
        parts, step = self.parts, epoch * self.iters_per_epoch + i + 1
        value = train_step(
            parts.net, parts.loss_fn, parts.trainer, images, labels, parts.ctx,
            parts.scheduler(step - 1), parts.step_options, nan_policy=self.args.nan_policy, step=step,
            where="epoch %d, iteration %d (global step %d)" % (epoch + 1, i + 1, step),
            before_update=self._before_first_update if self._broadcast_pending else None)
        if value is not None:
            self.state.epoch_loss[0] += value
            self.state.epoch_loss[1] += 1
            if step % self.args.summary_step == 0:  # global: steps N, 2N, ... across epochs
                self.summary.step(step, value, parts.trainer.learning_rate)
        self.state.batch_in_epoch, self.state.global_step = i + 1, step
        faults.at("step", step)

    def _before_first_update(self):
        """Distributed: the chief's parameters reach every worker before any gradient is pushed
        (``train.optimizer.broadcast_initial_parameters``). Done after the first backward pass, as
        the Trainer itself would: measured here, an inference-mode forward pass on every worker
        before that broadcast made the server answer a pull of a key before its initialisation."""
        broadcast_initial_parameters(self.parts.trainer, self.parts.kvstore)
        self._broadcast_pending = False

    def _end_epoch(self, epoch, seconds):
        args, state = self.args, self.state
        done, (total, count) = epoch + 1, state.epoch_loss
        mean_loss = total / count if count else float("nan")
        lr = self.parts.trainer.learning_rate
        state.epoch, state.batch_in_epoch, state.global_step = done, 0, done * self.iters_per_epoch
        state.epoch_loss = [0.0, 0]
        state.results["epoch"] = done
        self.summary.epoch(done, mean_loss, lr)
        logger.info("epoch %d/%d: loss %.5f, lr %.2e, %.1f s", done, args.epochs, mean_loss, lr, seconds)
        row = {"epoch": done, "step": done * self.iters_per_epoch, "loss": mean_loss, "lr": lr}
        if self.is_chief and (done % args.eval_epoch_term == 0 or done == args.epochs):
            state.pending_eval, state.pending_row = "epoch", row
        elif self.is_chief:
            self.summary.csv_row(row, self.csv_columns)
        self.summary.flush()

    # ------------------------------------------------------------------------------ evaluation

    def _evaluate(self):
        state, parts, epoch = self.state, self.parts, self.state.epoch
        self.summary.flush()
        self._sizes_before_eval = run_folder.append_only_sizes(self.save_dir)
        # One device, holding what the saved parameters hold (BatchNorm statistics averaged over
        # the devices), so the metrics are what evaluate.py measures on model_last.params.
        share_untrained_parameters(parts.net)
        values, embeddings = self._evaluate_split(parts.test_loader, parts.data.test_labels, epoch)
        non_finite = int(non_finite_rows(embeddings).sum())
        collapsed = state.pending_eval == "epoch" and is_one_point(embeddings)
        if collapsed:
            what = _collapse_description(non_finite, len(embeddings))
            if self.args.nan_policy == "stop":
                raise NonFiniteEmbeddingsError(
                    "the test embeddings after epoch %d are %s: the network diverged and was not kept; %s"
                    % (epoch, what, self._lower_rate_advice(state.global_step - 1)))
            logger.warning("the test embeddings after epoch %d are %s: that network cannot be the best "
                           "(--nan_policy=skip_batch goes on)", epoch, what)
        val_values = (self._evaluate_split(parts.data.val_loader, parts.data.val_labels, epoch)[0]
                      if self.has_val else None)
        with self.interrupts.deferred():
            self._log_evaluation(epoch, values, embeddings, val_values)
            record = _record(values, epoch, non_finite, val_values)
            if state.pending_eval == "initial":
                state.results["initial"] = record
                params = None
            else:
                params = self._record_epoch_results(epoch, record, candidate=not collapsed)
            state.pending_eval, state.pending_row = None, None
            self._sizes_before_eval = None
            self._checkpoint(params=params)
            run_folder.write_results(self.save_dir, state.results)

    def _evaluate_split(self, loader, labels, epoch):
        """``(metrics, unit embeddings)`` of the test or the validation split (same metrics)."""
        return evaluate(self.parts.net, loader, labels, self.parts.ctx[:1], self.args.recallk,
                        progress=self.args.progress, return_embeddings=True, metrics=self.args.eval_metrics,
                        knn=self.args.knn, after_batch=lambda index: self._between_eval_batches(epoch))

    def _between_eval_batches(self, epoch):
        faults.at("eval", epoch)
        self.interrupts.check()

    def _log_evaluation(self, epoch, values, embeddings, val_values=None):
        step = epoch * self.iters_per_epoch
        self.summary.metrics(step, epoch, values)
        if val_values is not None:
            self.summary.metrics(step, epoch, val_values, split="val")
        test_images, test_labels = self.parts.test_loader._dataset, self.parts.data.test_labels
        if self.grid_queries is not None:
            log_retrieval_grid(self.summary.writer, "retrieval/test", embeddings, test_labels,
                               lambda index: test_images[index][0], self.grid_queries, step, k=8)
        every = self.args.projector_every
        if every and (epoch % every == 0 or epoch == self.args.epochs):
            log_projector(self.summary.tensorboard_dir, embeddings, test_labels,
                          lambda index: test_images[index][0], step, max_points=self.args.projector_points)
        shown = "  ".join("%s %.4f" % item for item in values.items())
        if val_values is None:
            logger.info("epoch %d: %s", epoch, shown)
        else:
            logger.info("epoch %d: test %s | val %s | %s selects", epoch, shown,
                        "  ".join("%s %.4f" % item for item in val_values.items()), self.selection.label)

    def _record_epoch_results(self, epoch, record, candidate=True):
        """model_last (and model_best when the selecting metric improved, ``train.selection``, and it
        is a ``candidate``: not a network whose test embeddings are all non-finite or one point), the
        csv row and results; returns the serialised parameters (the checkpoint shares them)."""
        results, selection = self.state.results, self.selection
        params = storage.serialize(self.parts.net.save_parameters)
        last_path = run_folder.path(self.save_dir, run_folder.MODEL_LAST)
        storage.write_bytes(last_path, params, storage.RESUME_FIX)
        results["last"] = record
        if candidate and selection.improves(record, results["best"]):
            results["best"] = dict(record)
            self.summary.best(epoch * self.iters_per_epoch, epoch, selection.metric, selection.value(record),
                              split=selection.split if self.has_val else "test")
            storage.link_or_copy(last_path, run_folder.path(self.save_dir, run_folder.MODEL_BEST),
                                 storage.RESUME_FIX)
        row = {key: value for key, value in record.items() if key in self.csv_columns}
        row.update(("val/" + key, value) for key, value in (record.get("val") or {}).items())
        self.summary.csv_row(dict(self.state.pending_row, **row), self.csv_columns)
        return params

    # ----------------------------------------------------------------------------- checkpoints

    def _checkpoint(self, sizes=None, params=None):
        """Write a checkpoint of the state (chief only). ``sizes``: the append-only files' sizes
        the state corresponds to (default: now); ``params``: the parameters already serialised
        into model_last.params at this state. Distributed runs write none before their first update:
        saving the trainer's states would start the kvstore's collective initialisation on the chief
        alone, which then waits for the others forever."""
        if not self.is_chief or self._broadcast_pending:
            return None
        with self.interrupts.deferred():
            self.summary.flush()
            trainer = self.parts.trainer
            self.state.run_files = sizes or run_folder.append_only_sizes(self.save_dir)
            if loss_scaler_state(trainer) is not None:
                self.state.loss_scaler = loss_scaler_state(trainer)
            source = run_folder.path(self.save_dir, run_folder.MODEL_LAST) if params else None
            path = checkpoint.save_checkpoint(
                self.save_dir, params or storage.serialize(self.parts.net.save_parameters),
                device_free_states(trainer), self.state.to_json(),
                keep=self.args.keep_checkpoints, params_source=source,
                loss_params=checkpoint.loss_parameters(self.parts.loss_fn))
            logger.info("checkpoint %s", os.path.basename(path))
        return path

    # ---------------------------------------------------------------------------------- ending

    def finish(self):
        """After the last epoch: each worker's parameters (distributed), results, export."""
        net = self.parts.net
        self.summary.close()
        if self.parts.num_workers > 1:
            # Each worker's final parameters, so that their agreement can be checked.
            storage.write_bytes(os.path.join(self.save_dir, "model_final_worker%d.params" % self.parts.rank),
                                storage.serialize(net.save_parameters))
        if not self.is_chief:
            return
        results = self.state.results
        run_folder.write_results(self.save_dir, results)
        if self.args.export:
            from model.export import export_network

            if self.args.dtype != "float32":
                use_float32(net)  # the exported graph is float32, for any runtime
            export_network(net, os.path.join(self.save_dir, run_folder.EXPORT, "model"),
                           self.args.image_size)
        best, last, selection = results["best"], results["last"], self.selection
        if best and last and self.has_val:
            logger.info("done: best %s %.4f at epoch %d (test %s %.4f there); last %s %.4f",
                        selection.label, selection.value(best), best["epoch"], selection.metric,
                        best[selection.metric], selection.label, selection.value(last))
        elif best and last:
            logger.info("done: best %s %.4f at epoch %d; last %s %.4f", selection.metric,
                        selection.value(best), best["epoch"], selection.metric, selection.value(last))
        elif last:
            logger.warning("done: no evaluation after training had finite test embeddings, so there "
                           "is no best (no %s)", run_folder.MODEL_BEST)
