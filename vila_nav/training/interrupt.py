"""Stop requests for a training run: SIGTERM and Ctrl-C end the run at a step boundary, with a
checkpoint, instead of losing everything since the last periodic one.

Cluster schedulers (SLURM, Kubernetes), torchrun and `timeout` send SIGTERM before they kill; a
user presses Ctrl-C. Inside `with StopRequest() as stop:` either signal only records itself
(`stop.received`, e.g. "SIGTERM"); the training loop checks it after each optimizer step, saves a
checkpoint and returns. The first signal also puts the previous handlers back, so a second one
acts at once (Ctrl-C raises KeyboardInterrupt, SIGTERM kills) for a user who will not wait for
the save.

A signal the process ignores stays ignored: a job started with `&` from a script ignores Ctrl-C
by POSIX rule, and catching it there would let a terminal's Ctrl-C stop a job that was meant to
survive it. Handlers can only be set from the main thread; elsewhere (train() called from a
worker thread) nothing is installed and `received` stays None.
"""
from __future__ import annotations

import signal
import threading


class StopRequest:
    """Context manager: records the first SIGTERM / SIGINT as a stop request."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)
    NAMES = tuple(sig.name for sig in SIGNALS)  # what `received` (and TrainResult.stopped) can be

    def __init__(self) -> None:
        self.received: str | None = None  # the signal's name ("SIGTERM", "SIGINT") once one came
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _record(self, signum: int, _frame) -> None:
        self.received = signal.Signals(signum).name
        self._restore()  # a second signal takes the usual way out

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
