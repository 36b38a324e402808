"""Class-balanced batches: ``batch_size / num_instances`` classes, ``num_instances`` images each."""

import logging

import mxnet as mx
import numpy as np

logger = logging.getLogger(__name__)

# Per-sample seeds are drawn in [0, 2**63) so they fit an int64 and a SeedSequence entropy.
_SAMPLE_SEED_HIGH = 2**63 - 1


class ClassBalancedBatchSampler(mx.gluon.data.Sampler):
    """Batch sampler with consecutive same-class groups, as in the Embedding Expansion release.

    One pass ("epoch" in the paper's sense) yields ``num_classes * num_instances`` samples:
    walk a random permutation of all images; for each image whose class is not yet in the
    current batch, emit it followed by ``num_instances - 1`` draws from all images of that
    class (the first image included; without replacement when the class has at least
    ``num_instances - 1`` images, otherwise with replacement). The set of classes in the
    batch is cleared whenever the number of emitted samples reaches a multiple of
    ``batch_size``. The pass stops at ``num_classes * num_instances`` samples and the last
    incomplete batch is dropped (the original's ``last_batch='discard'``).

    So each batch holds ``batch_size / num_instances`` distinct classes, each as
    ``num_instances`` consecutive rows, and with an even ``num_instances`` rows (2i, 2i + 1)
    share a class (the pair layout Embedding Expansion relies on).

    Deliberate difference from the original: when a permutation is used up before the pass
    is full, a new permutation starts *without* clearing the current batch's class set (the
    original cleared it, which could put one class twice into a batch).

    Randomness: the pass for epoch ``e`` uses ``numpy.random.default_rng((seed, e))`` alone,
    so every epoch is reproducible and a resumed run sees the same batches. Each yielded item
    is ``(index, sample_seed)``; the seeds come from the same generator, and
    ``ImageListDataset`` seeds the sample's augmentation with them.

    Parameters
    ----------
    labels : sequence of int
        Class id of every training image.
    batch_size : int
        Samples per batch, a multiple of ``num_instances``.
    num_instances : int
        Images per class in a batch (32 in the paper).
    seed : int, default 0
        Base seed of the per-epoch generators.

    Outputs (per iteration):
        - **batch**: list of ``batch_size`` tuples ``(index, sample_seed)`` of Python ints.
    """

    def __init__(self, labels, batch_size, num_instances, seed=0):
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError("labels must be a non-empty 1-d sequence, got shape {}".format(labels.shape))
        if labels.dtype.kind not in "iu":
            raise ValueError("labels must be integers, got dtype {}".format(labels.dtype))
        for name, value in (("batch_size", batch_size), ("num_instances", num_instances)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError("{} must be a positive integer, got {!r}".format(name, value))
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError("seed must be a non-negative integer, got {!r}".format(seed))
        batch_size, num_instances = int(batch_size), int(num_instances)
        if batch_size % num_instances != 0:
            lower = (batch_size // num_instances) * num_instances
            upper = lower + num_instances
            choices = " or ".join(str(v) for v in (lower, upper) if v > 0)
            raise ValueError(
                "batch_size {} is not a multiple of num_instances {}; pick batch_size {} or "
                "change num_instances".format(batch_size, num_instances, choices)
            )
        classes, image_class = np.unique(labels, return_inverse=True)
        classes_per_batch = batch_size // num_instances
        if len(classes) < classes_per_batch:
            raise ValueError(
                "the training split has {} classes but batch_size {} / num_instances {} needs {} "
                "distinct classes per batch (one epoch = {} x {} = {} samples, shorter than one "
                "batch); lower batch_size or num_instances".format(
                    len(classes),
                    batch_size,
                    num_instances,
                    classes_per_batch,
                    len(classes),
                    num_instances,
                    len(classes) * num_instances,
                )
            )
        self.batch_size = batch_size
        self.num_instances = num_instances
        self.seed = int(seed)
        self.classes = classes
        self.num_classes = len(classes)
        self.samples_per_epoch = self.num_classes * num_instances
        self._image_class_list = image_class.tolist()
        order = np.argsort(image_class, kind="stable")
        bounds = np.cumsum(np.bincount(image_class, minlength=self.num_classes))[:-1]
        self._class_members = np.split(order, bounds)
        self._epoch = 0
        self._skip_batches = 0
        self._num_shards, self._shard_index = 1, 0
        small = sum(len(m) < num_instances - 1 for m in self._class_members)
        if small:
            logger.info(
                "%d of %d classes have fewer than num_instances - 1 = %d images; their extra "
                "samples are drawn with replacement",
                small,
                self.num_classes,
                num_instances - 1,
            )

    @property
    def epoch(self):
        """The epoch the next ``iter()`` will produce."""
        return self._epoch

    def set_epoch(self, epoch, skip_batches=0):
        """Make the next ``iter()`` produce epoch ``epoch`` (call before iterating the loader).

        Without calls, each ``iter()`` advances the epoch by one, starting from 0.
        ``skip_batches`` leaves out the first batches of this worker's share of the epoch, so a
        run interrupted in the middle of an epoch resumes with the batch it had not trained on.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError("epoch must be a non-negative integer, got {!r}".format(epoch))
        if not 0 <= int(skip_batches) <= len(self):
            raise ValueError("skip_batches must be in [0, {}], got {!r}".format(len(self), skip_batches))
        self._epoch = int(epoch)
        self._skip_batches = int(skip_batches)

    def set_shard(self, num_shards, shard_index):
        """Yield only batches ``shard_index, shard_index + num_shards, ...`` of every epoch.

        With one shard per distributed worker, the workers train on disjoint batches of the same
        epoch (each epoch's batches are a pure function of the seed, identical on every worker).
        The epoch's batch count is rounded down to a multiple of ``num_shards`` so that every
        worker makes the same number of steps (synchronous kvstores need that).
        """
        num_shards, shard_index = int(num_shards), int(shard_index)
        if num_shards < 1 or not 0 <= shard_index < num_shards:
            raise ValueError("shard {} of {} does not exist".format(shard_index, num_shards))
        if self.samples_per_epoch // self.batch_size < num_shards:
            raise ValueError(
                "an epoch has {} batches, fewer than the {} workers; lower batch_size".format(
                    self.samples_per_epoch // self.batch_size, num_shards))
        self._num_shards, self._shard_index = num_shards, shard_index

    def __len__(self):
        """Batches this worker trains on per epoch."""
        return (self.samples_per_epoch // self.batch_size) // self._num_shards

    def epoch_batches(self, epoch):
        """The batches of epoch ``epoch``; a pure function of ``(seed, epoch)``.

        Returns
        -------
        list of list of (int, int)
            All batches of the epoch (before sharding) as ``(index, sample_seed)``.
        """
        rng = np.random.default_rng((self.seed, int(epoch)))
        indices = self._walk(rng)
        indices = indices[: (self.samples_per_epoch // self.batch_size) * self.batch_size]
        sample_seeds = rng.integers(0, _SAMPLE_SEED_HIGH, size=len(indices), dtype=np.int64)
        items = list(zip(indices, sample_seeds.tolist()))
        return [items[i : i + self.batch_size] for i in range(0, len(items), self.batch_size)]

    def _walk(self, rng):
        """Image indices of one pass (``samples_per_epoch`` of them), before batching."""
        extra = self.num_instances - 1
        target = self.samples_per_epoch
        image_class = self._image_class_list
        emitted = []
        classes_in_batch = set()
        while len(emitted) < target:
            for first in rng.permutation(len(image_class)).tolist():
                class_index = image_class[first]
                if class_index in classes_in_batch:
                    continue
                classes_in_batch.add(class_index)
                members = self._class_members[class_index]
                emitted.append(first)
                if extra:
                    draws = rng.choice(members, size=extra, replace=len(members) < extra)
                    emitted.extend(draws.tolist())
                if len(emitted) >= target:
                    break
                if len(emitted) % self.batch_size == 0:
                    classes_in_batch.clear()
        return emitted

    def __iter__(self):
        epoch, skip = self._epoch, self._skip_batches
        self._epoch += 1
        self._skip_batches = 0
        batches = self.epoch_batches(epoch)
        usable = len(self) * self._num_shards
        return iter(batches[:usable][self._shard_index::self._num_shards][skip:])

    def __repr__(self):
        return (
            "ClassBalancedBatchSampler({} classes, batch_size={}, num_instances={}, seed={}, "
            "epoch={})".format(self.num_classes, self.batch_size, self.num_instances, self.seed, self._epoch)
        )
