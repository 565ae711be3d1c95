"""EpisodeMonitor: when does a continuous-motion episode end, and with which VLN-CE metrics.

The sim bridge drives a robot with cmd_vel instead of discrete actions, so "the agent called
STOP" has to be observed. Rules, checked on every physics tick (times in simulated s):

1. The node said so. Once vila_nav_node's status has been heard, the episode follows the
   instruction the node is running (its `generation`, picked up from the first thinking /
   executing status after the episode starts, or a newer one after a preemption). When that
   instruction finishes, the episode ends: state "done" (the model said stop) counts as the
   agent's STOP; "stopped" / "error" (e-stop, timeout, unparseable ...) end it without a stop.
2. Without any node status (another driver on cmd_vel): after the robot has moved, zero
   velocity for `idle_stop_s` counts as the agent's STOP.
3. Time: `max_time_s` of simulated time ends the episode without a STOP.

The trajectory is recorded as positions (Habitat world, m) with their geodesic distance to the
goal whenever the robot has moved >= `min_step_m` since the last record (the bridge uses the
simulator's forward step, 0.25 m, so the nDTW query has VLN-CE's density: one point per forward
primitive; turning in place adds none) plus the final position, and the metrics come
from `vila_nav.metrics.episode_metrics` (NE, OS, SR, SPL, nDTW, SDTW, TL); "steps" is the number
of model decisions when the node reported them, else the number of recorded positions - 1.
Pure: no rclpy, no simulator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vila_nav.metrics import SUCCESS_DISTANCE, episode_metrics
from vila_nav.ros.status import Status

_MOVING_MPS = 1e-3  # m/s (or rad/s) above which the robot counts as moving


@dataclass(frozen=True)
class EpisodeEnd:
    """Why the episode ended and whether that counts as the agent's STOP."""

    reason: str
    stop_called: bool
    time_s: float


class EpisodeMonitor:
    """Records one episode's trajectory and decides when it ends (see the module docstring)."""

    def __init__(
        self,
        start_time: float,
        start_position: Sequence[float],
        start_distance: float,
        reference: Sequence[Sequence[float]],
        *,
        max_time_s: float,
        idle_stop_s: float,
        success_distance: float = SUCCESS_DISTANCE,
        min_step_m: float = 0.25,
    ) -> None:
        self.t0 = float(start_time)
        self.max_time_s = float(max_time_s)
        self.idle_stop_s = float(idle_stop_s)
        self.success_distance = float(success_distance)
        self.min_step_m = float(min_step_m)
        self.reference = [tuple(map(float, p)) for p in reference]
        self.positions: list[tuple[float, float, float]] = [tuple(map(float, start_position))]  # type: ignore[misc]
        self.distances: list[float] = [float(start_distance)]
        self.end: EpisodeEnd | None = None
        self._heard_status = False
        self._generation: int | None = None
        self._queries = 0
        self._moved = False
        self._still_since: float | None = None
        self._finished_status: Status | None = None

    # --- inputs ------------------------------------------------------------------------------
    def on_status(self, status: Status, now: float) -> None:
        """A status report from vila_nav_node."""
        if self.end is not None:
            return
        self._heard_status = True
        active = status.state in ("thinking", "executing")
        if active and (self._generation is None or status.generation > self._generation):
            self._generation = status.generation  # the instruction this episode follows
        if self._generation is None or status.generation != self._generation:
            return  # an older instruction's report (e.g. the latched one from before the episode)
        self._queries = max(self._queries, int(status.queries))
        if status.finished:
            self._finished_status = status

    def on_motion(self, position: Sequence[float], distance: float, linear: float, angular: float, now: float) -> None:
        """One physics tick: the robot's position (m), its geodesic to the goal (m), and the
        velocity it is executing (m/s, rad/s)."""
        if self.end is not None:
            return
        p = tuple(map(float, position))
        if math.dist(p, self.positions[-1]) >= self.min_step_m:
            self.positions.append(p)  # type: ignore[arg-type]
            self.distances.append(float(distance))
        if abs(linear) > _MOVING_MPS or abs(angular) > _MOVING_MPS:
            self._moved, self._still_since = True, None
        elif self._still_since is None:
            self._still_since = now

    # --- decision ----------------------------------------------------------------------------
    def check(self, now: float, position: Sequence[float], distance: float) -> EpisodeEnd | None:
        """The episode's end if it ends at `now` (the final position is recorded then)."""
        if self.end is not None:
            return self.end
        end = None
        st = self._finished_status
        if st is not None:
            stop = st.state == "done"
            end = EpisodeEnd(("the node finished: " + st.state + (f" ({st.reason})" if st.reason else "")), stop, now)
        elif (not self._heard_status and self._moved and self._still_since is not None
              and now - self._still_since >= self.idle_stop_s):
            end = EpisodeEnd(f"no motion for {self.idle_stop_s:g} s after moving (taken as STOP)", True, now)
        elif now - self.t0 >= self.max_time_s:
            end = EpisodeEnd(f"time limit ({self.max_time_s:g} s)", False, now)
        if end is not None:
            p = tuple(map(float, position))
            if p != self.positions[-1]:
                self.positions.append(p)  # type: ignore[arg-type]
                self.distances.append(float(distance))
            self.end = end
        return end

    # --- result ------------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return self._queries if self._queries else len(self.positions) - 1

    def metrics(self) -> dict[str, float]:
        """VLN-CE metrics of the recorded trajectory (call after the end)."""
        if self.end is None:
            raise RuntimeError("the episode has not ended")
        reference = self.reference or [self.positions[0]]
        return episode_metrics(self.positions, self.distances, self.end.stop_called, self.steps, reference,
                               self.success_distance)

    def result(self, episode_id: str, instruction: str) -> dict:
        """The JSON-ready episode report: ids, end reason, duration and metrics."""
        m = self.metrics()
        return {
            "episode_id": episode_id,
            "instruction": instruction,
            "end_reason": self.end.reason,  # type: ignore[union-attr]
            "stop_called": self.end.stop_called,  # type: ignore[union-attr]
            "duration_s": round(self.end.time_s - self.t0, 3),  # type: ignore[union-attr]
            "final_position": list(self.positions[-1]),
            "metrics": {k: (float(v) if np.isfinite(v) else None) for k, v in m.items()},
        }
