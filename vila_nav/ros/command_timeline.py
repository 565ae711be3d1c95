"""CommandTimeline: which cmd_vel was in force at a given time, for a simulator that steps late.

The sim bridge's ROS callbacks receive cmd_vel on executor threads while the simulator thread
integrates motion in ticks. When that thread runs late (a render, a loaded CPU) it catches up in
sub-steps, and each sub-step must use the command that was in force at *its* time, not the newest
one: integrating the newest command back over the gap would drive the ramp-down of an action at
zero (the robot covers less than it was told) or its ramp-up at full speed (more). So every
command is kept with its receive time (steady clock, s) until the simulator has passed it.

Pure stdlib: no rclpy, no simulator.
"""
from __future__ import annotations

import math
import threading
from collections import deque
from typing import NamedTuple


class Heard(NamedTuple):
    """One cmd_vel as received: linear m/s, angular rad/s, steady time received (s)."""

    linear: float
    angular: float
    t: float


NOTHING = Heard(0.0, 0.0, -math.inf)  # before any cmd_vel: zero, never heard


class CommandTimeline:
    """Commands in receive order; `at(t)` gives the one in force at steady time t.

    `push` may be called from any thread. `at` must be called with non-decreasing t (the
    simulator's sub-step times): commands it has passed are dropped, so memory stays bounded by
    the commands received during one catch-up gap (`max_pending` guards a simulator that stopped
    stepping: the oldest pending ones are applied at once).
    """

    def __init__(self, max_pending: int = 1024) -> None:
        self._lock = threading.Lock()
        self._pending: deque[Heard] = deque()
        self._current = NOTHING
        self._max_pending = max_pending

    def push(self, linear: float, angular: float, t: float) -> None:
        """A cmd_vel received at steady time t (s)."""
        with self._lock:
            if len(self._pending) >= self._max_pending:
                self._current = self._pending.popleft()
            self._pending.append(Heard(float(linear), float(angular), float(t)))

    def at(self, t: float) -> Heard:
        """The newest command received at or before t (NOTHING if none since the last reset)."""
        with self._lock:
            while self._pending and self._pending[0].t <= t:
                self._current = self._pending.popleft()
            return self._current

    def reset(self) -> None:
        """Forget every command (a new episode starts from rest)."""
        with self._lock:
            self._pending.clear()
            self._current = NOTHING
