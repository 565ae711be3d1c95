"""CommandTimeline: which cmd_vel was in force at a given time, for a simulator that steps late.

The sim bridge's ROS callbacks receive cmd_vel on executor threads while the simulator thread
integrates motion in ticks. When that thread runs late (a render, a loaded CPU) it catches up in
sub-steps, and each sub-step must use the command that was in force at *its* time, not the newest
one: integrating the newest command back over the gap would drive the ramp-down of an action at
zero (the robot covers less than it was told) or its ramp-up at full speed (more). So every
command is kept with the time it came into force (steady clock, s) until the simulator has passed
it: its send time where the middleware gives one (`send_time`), else its receive time. Send times
also cover the other stall: the callbacks' executor starved, so commands wait in its queue and
arrive in a burst; each still comes into force when the node sent it, unless the simulator has
already integrated past that time, which `late_max_s` reports.

Pure stdlib: no rclpy, no simulator.
"""
from __future__ import annotations

import math
import threading
from collections import deque
from typing import NamedTuple


class Heard(NamedTuple):
    """One cmd_vel: linear m/s, angular rad/s, steady time it came into force (s)."""

    linear: float
    angular: float
    t: float


NOTHING = Heard(0.0, 0.0, -math.inf)  # before any cmd_vel: zero, never heard
MAX_DELIVERY_DELAY_S = 2.0  # s; a longer apparent delay is another machine's clock, not a delay


def send_time(received: float, source_ns: int, now_ns: int) -> float:
    """Steady time (s) at which a message was sent: `received` (steady s, at receipt) minus its
    delivery delay, from the middleware's source timestamp `source_ns` and the system clock
    `now_ns` at receipt (both ns since the epoch). Without a timestamp (0), or with a delay that
    is negative or over MAX_DELIVERY_DELAY_S (clocks of different machines), it is `received`."""
    delay = (now_ns - source_ns) * 1e-9
    return received - delay if source_ns > 0 and 0.0 < delay <= MAX_DELIVERY_DELAY_S else received


class CommandTimeline:
    """Commands in arrival order; `at(t)` gives the one in force at steady time t.

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
        self._passed = -math.inf  # the latest time `at` was asked for
        self.late_max_s = 0.0  # s: the most a command came into force before the simulator heard of it

    def push(self, linear: float, angular: float, t: float) -> None:
        """A cmd_vel in force from steady time t (s): its send time, else its receive time."""
        with self._lock:
            if t < self._passed:  # the simulator already integrated past t with the older command
                self.late_max_s = max(self.late_max_s, self._passed - t)
            if self._pending and t < self._pending[-1].t:
                t = self._pending[-1].t  # keep arrival order (two publishers, clock jitter)
            if len(self._pending) >= self._max_pending:
                self._current = self._pending.popleft()
            self._pending.append(Heard(float(linear), float(angular), float(t)))

    def at(self, t: float) -> Heard:
        """The newest command in force at or before t (NOTHING if none since the last reset)."""
        with self._lock:
            self._passed = max(self._passed, t)
            while self._pending and self._pending[0].t <= t:
                self._current = self._pending.popleft()
            return self._current

    def reset(self) -> None:
        """Forget every command (a new episode starts from rest)."""
        with self._lock:
            self._pending.clear()
            self._current = NOTHING
            self._passed = -math.inf
            self.late_max_s = 0.0
