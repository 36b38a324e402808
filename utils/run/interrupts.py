"""Ctrl-C (SIGINT) and SIGTERM end a run only where its state is whole.

Until the run folder is opened nothing is written, and a signal raises :class:`RunInterrupted` at
once. From then on (:meth:`Interrupts.defer_all`) a signal is only noted, and the run stops at the
next safe point: after the current training step (forward, which updates BatchNorm's running
statistics, backward and the update: cut inside it, the parameters would hold the statistics of a
batch whose update never happened), between two batches of an evaluation (:meth:`check`), or
after a checkpoint or results file is written (:meth:`deferred`). An exception raised by a signal
handler at an arbitrary point could also land inside the data loader's locks and hang the exit.

The handlers are installed before the data loaders fork their workers, which inherit them; in a
worker they do nothing, so a Ctrl-C sent to the whole process group ends the run in the trainer
and never kills a worker in the middle of a batch. For the same reason the loaders end their
workers by closing their pools, not by SIGTERM (``data.closing_loader``).
"""
import contextlib
import os
import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM reached the run."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupts:
    """Installs the handlers; ``with interrupts.deferred():`` marks a part that must not be cut."""

    def __init__(self):
        self.requested = None
        self.immediate = True
        self._depth = 0
        self._pid = os.getpid()
        self._previous = {}

    def install(self):
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def uninstall(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        if os.getpid() != self._pid:
            return  # a forked data-loading worker: the trainer decides
        self.requested = signum
        if self.immediate and self._depth == 0:
            raise RunInterrupted(signum)

    def defer_all(self):
        """From now on, signals stop the run only at :meth:`check` and after :meth:`deferred`."""
        self.immediate = False

    @contextlib.contextmanager
    def deferred(self, raise_after=True):
        """Run the body whole; then raise :class:`RunInterrupted` if a signal has come (unless
        ``raise_after`` is False: the checkpoint written on the way out of a stopped run)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if raise_after and self._depth == 0 and self.requested is not None:
            raise RunInterrupted(self.requested)

    def check(self):
        """A safe point: raise :class:`RunInterrupted` if a signal has come (outside deferred parts)."""
        if self._depth == 0 and self.requested is not None:
            raise RunInterrupted(self.requested)
