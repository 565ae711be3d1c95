"""Tells a stalled test process from a silent ROS node, safely.

A monitor thread wakes every `period_s`; a wake-up that comes `stall_s` or more late means no
Python thread of this process could run the monitor for that long (a loaded machine, a C call
holding the GIL, the process descheduled). It then records the stall's length and every other
thread's stack as the stall ends, read with the GIL held (sys._current_frames).

Why not faulthandler.dump_traceback_later, which would catch the stacks during the stall: its
watchdog walks the other threads' frames without the GIL. While those threads run (and during a
GIL stall one of them does), that walk can read freed frames and kill the whole process with a
SIGSEGV that prints nothing. It did, once, in CI; with 8 threads starting and ending while it
dumps every 1 ms, CPython 3.11, 3.12 and 3.13 all crash within half a second.
"""
from __future__ import annotations

import sys
import threading
import time
import traceback


def thread_stacks(skip: int | None = None) -> str:
    """Every Python thread's stack but `skip`'s (a thread ident), innermost call last."""
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        if ident != skip:
            stack = "".join(traceback.format_stack(frame))
            parts.append(f"thread {names.get(ident, ident)!s}:\n{stack}")
    return "\n".join(parts)


class StallMonitor:
    """Records stalls of >= stall_s seconds (at most `keep` of them, with their stacks) from
    start() to stop()."""

    def __init__(self, stall_s: float = 1.0, period_s: float = 0.05, keep: int = 5) -> None:
        self.stall_s, self.period_s, self.keep = stall_s, period_s, keep
        self.stalls: list[tuple[float, float, str]] = []  # (seconds into the run, length s, stacks)
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stall-monitor", daemon=True)

    def start(self) -> StallMonitor:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me, last = threading.get_ident(), time.monotonic()
        while not self._stop.wait(self.period_s):
            now = time.monotonic()
            if now - last >= self.stall_s:
                self.count += 1
                if len(self.stalls) < self.keep:
                    self.stalls.append((now - self._t0, now - last, thread_stacks(skip=me)))
            last = now

    def report(self) -> str:
        if not self.count:
            return f"no process stalls of >= {self.stall_s} s"
        lines = [f"{self.count} process stall(s) of >= {self.stall_s} s; the first {len(self.stalls)}, "
                 "with every thread's stack as the stall ended:"]
        for at, length, stacks in self.stalls:
            lines.append(f"--- {length:.1f} s, ending {at:.1f} s into the test\n{stacks}")
        return "\n".join(lines)
