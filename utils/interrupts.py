"""Ctrl-C (SIGINT) and SIGTERM end a run only where its state is whole.

A training step is forward (which updates BatchNorm's running statistics), backward and the update.
Stopped inside it, the parameters would hold the statistics of a batch whose update never happened,
and the run resumed from them would differ from one never interrupted. So during a step, and while
a checkpoint or results file is written, a signal is only noted, and :meth:`Interrupts.deferred`
raises :class:`RunInterrupted` once the step is whole. Anywhere else (an evaluation, loading data
between steps) it raises at once: those change nothing that a checkpoint holds.

The handlers are installed before the data loaders fork their workers, which inherit them; in a
worker they do nothing, so a Ctrl-C sent to the whole process group ends the run in the trainer
and never kills a worker in the middle of a batch.
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
        if self._depth == 0:
            raise RunInterrupted(signum)

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
        """Raise :class:`RunInterrupted` if a signal is pending (outside deferred parts)."""
        if self._depth == 0 and self.requested is not None:
            raise RunInterrupted(self.requested)
