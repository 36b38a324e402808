"""The sum of the workers' gradients, in one order fixed by rank, on MXNet's parameter server.

Why: a ``dist_sync`` server adds the workers' pushes of a key in the order they arrive. Float
addition is commutative, so with two workers ``g0 + g1 == g1 + g0`` bit for bit; it is not
associative, so with three or more ``(g0 + g1) + g2`` and ``(g2 + g0) + g1`` differ in the last
bits, and which one a step gets depends on the network's timing. Every worker pulls the same sum,
so they stay equal, but two runs of one job differ; with hardest-negative mining (HPHN, the
release's loss) a last-bit difference can change which negative is hardest, and the runs part by
whole learning-rate steps within a few updates. ``tests/dist_sum_job.py`` shows both the arrival
orders and this fix.

The fix uses only what a server does without an updater (it stores the sum of one push per
worker): each key gets ``ceil(W / 2)`` slots; workers ``2j`` and ``2j + 1`` push their gradient into
slot ``j`` and zeros into the others. Adding zero is exact and adding two numbers commutes, so every
slot holds ``g_2j + g_2j+1`` whatever the arrival order. Each worker then pulls the slots and adds
them left to right::

    sum = ((g0 + g1) + (g2 + g3)) + (g4 + g5) + ...

(for three workers, ``(g0 + g1) + g2``: what one process gets by accumulating the three gradients
in rank order). With one or two workers there is one slot and this is the plain push-pull. The
price: each worker pushes and pulls ``ceil(W / 2)`` times the gradient's size per step.
"""
import mxnet as mx


class OrderedWorkerSum:
    """Replaces gradients by their sum over workers, in the order of the module docstring.

    Parameters
    ----------
    kvstore : mxnet.kvstore.KVStore
        A ``dist_sync``/``dist_device_sync`` kvstore with no updater on its servers.
    num_keys : int
        The keys ``0 .. num_keys - 1`` are the Trainer's; slot ``j >= 1`` of key ``k`` is the key
        ``j * num_keys + k`` (slot 0 is the key itself).
    """

    def __init__(self, kvstore, num_keys):
        self.kvstore = kvstore
        self.num_keys = num_keys
        self.num_slots = (kvstore.num_workers + 1) // 2
        self.my_slot = kvstore.rank // 2
        self._buffers = {}

    def slot_key(self, key, slot):
        return key if slot == 0 else slot * self.num_keys + key

    def init_slots(self, keys, like):
        """Create the extra slots of ``keys`` (``like[i]`` gives key i's shape, dtype and devices).

        Every worker must call this at the same time: the kvstore's init ends in a barrier.
        """
        if self.num_slots == 1:
            return
        for key, arrays in zip(keys, like):
            self._buffers[key] = [None if slot == self.my_slot else
                                  [mx.nd.zeros(a.shape, ctx=a.context, dtype=a.dtype) for a in arrays]
                                  for slot in range(self.num_slots)]
        self.kvstore.init([self.slot_key(key, slot) for slot in range(1, self.num_slots) for key in keys],
                          [mx.nd.zeros_like(arrays[0]) for _ in range(1, self.num_slots) for arrays in like])

    def sum(self, key, grads):
        """Overwrite ``grads`` (this worker's per-device arrays of ``key``) with the sum over workers."""
        if self.num_slots == 1:
            self.kvstore.pushpull(key, grads, priority=-key)
            return
        # On a CPU the kvstore keeps the pushed array itself as the key's buffer and pulls into it,
        # so each slot pushes and pulls its own arrays: this worker's slot its gradients, the others
        # a buffer set to zero before every push.
        parts = [grads if slot == self.my_slot else self._buffers[key][slot] for slot in range(self.num_slots)]
        for slot, arrays in enumerate(parts):
            if slot != self.my_slot:
                for array in arrays:
                    array[:] = 0
            self.kvstore.push(self.slot_key(key, slot), arrays, priority=-key)
        # A pull of a key waits for this worker's push of it (they share the key's buffer), and the
        # server answers that push only once every worker's push of the key is summed.
        for slot, arrays in enumerate(parts):
            self.kvstore.pull(self.slot_key(key, slot), out=arrays, priority=-key)
        for device, grad in enumerate(grads):
            total = parts[0][device]
            for arrays in parts[1:]:
                total = total + arrays[device]
            grad[:] = total


class OrderedSumTrainer(mx.gluon.Trainer):
    """A Gluon Trainer whose distributed gradient sum is :class:`OrderedWorkerSum`'s.

    Only for ``update_on_kvstore=False`` with dense gradients (what ``build_trainer`` makes for
    ``dist_*`` kvstores): the workers apply the updates, the servers only add. It overrides the
    Trainer's private ``_allreduce_grads``; MXNet 1.9 is the last release, so it will not move.
    """

    _ordered_sum = None

    def _allreduce_grads(self):
        if not self._kvstore:
            return
        trained = [(i, p) for i, p in enumerate(self._params) if p.grad_req != "null"]
        if self._ordered_sum is None:
            self._ordered_sum = OrderedWorkerSum(self._kvstore, len(self._params))
            self._ordered_sum.init_slots([i for i, _ in trained], [p.list_grad() for _, p in trained])
        for i, param in trained:
            self._ordered_sum.sum(i, param.list_grad())
