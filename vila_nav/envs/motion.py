"""The agent's motion model: discrete VLN-CE actions and unicycle motion with wall sliding.

Pure numpy on a CollisionWorld. The agent is a circle of radius r in the X-Z plane. A motion is
swept (sampled every r/2, so a 0.25 m step cannot tunnel through a wall) until the first
contact, found by dense re-sampling to a few micrometres; with sliding on, the rest of the
displacement is projected on the contact's tangent (the component along the wall) and swept
again, up to three times (corners). `collided` means the motion was blocked or shortened, as in
habitat-sim.
"""
from __future__ import annotations

import math

import numpy as np

from vila_nav.envs.pose import forward_vector, wrap_angle
from vila_nav.scenes.collision import CollisionWorld

ACTIONS = ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")
_REFINE, _REFINE_SAMPLES = 3, 31  # contact search: 3 rounds of 31 samples, bracket / 32**3 (< 2 um)
_SLIDES = 3  # contact resolutions per motion (a corner needs two)
_SUBSTEP_M = 0.05  # continuous motion: at most 5 cm ...
_SUBSTEP_RAD = math.radians(5.0)  # ... or 5 deg per integration step


class MotionModel:
    """Moves a circular agent through a CollisionWorld.

    radius: agent radius (m); forward_step: MOVE_FORWARD distance (m); turn_angle: TURN_* angle
    (rad); sliding: slide along walls (True, VLN-CE) or stop at the contact point.
    """

    def __init__(self, world: CollisionWorld, radius: float, forward_step: float, turn_angle: float, sliding: bool = True):
        self.world = world
        self.radius = float(radius)
        self.forward_step = float(forward_step)
        self.turn_angle = float(turn_angle)
        self.sliding = bool(sliding)

    def is_free(self, point: np.ndarray) -> bool:
        """True if the agent fits at `point` (x, z)."""
        return self.world.is_free(point, self.radius)

    def _sweep(self, p: np.ndarray, d: np.ndarray, need: float) -> tuple[float, float]:
        """Largest fraction t of displacement d from p keeping clearance >= need, and the first
        blocked fraction ((1.0, 1.0) if nothing blocks)."""
        length = float(np.hypot(*d))
        n = max(1, math.ceil(length / (self.radius / 2)))
        ts = np.arange(1, n + 1) / n
        ok = self.world.clearance(p[None] + ts[:, None] * d[None]) >= need
        if ok.all():
            return 1.0, 1.0
        k = int(np.argmin(ok))
        lo, hi = (float(ts[k - 1]) if k else 0.0), float(ts[k])
        for _ in range(_REFINE):  # each round samples the bracket densely: 1/32 of it remains
            fr = np.linspace(lo, hi, _REFINE_SAMPLES + 2)[1:-1]
            ok = self.world.clearance(p[None] + fr[:, None] * d[None]) >= need
            j = int(np.argmin(ok)) if not ok.all() else len(fr)
            lo, hi = (float(fr[j - 1]) if j else lo), (float(fr[j]) if j < len(fr) else hi)
        return lo, hi

    def slide(self, position: np.ndarray, displacement: np.ndarray) -> tuple[np.ndarray, bool]:
        """Move from `position` (x, z) by `displacement` (x, z) (m); returns (new position, collided)."""
        start = np.asarray(position, dtype=np.float64).copy()
        target = start + np.asarray(displacement, dtype=np.float64)
        p, rem = start.copy(), target - start
        # An agent already overlapping something (a start rounded into a wall's margin) may move
        # as long as it gets no deeper, instead of being stuck for good.
        need = min(self.radius, float(self.world.clearance(start)[0]) - 1e-9)
        for _ in range(_SLIDES):
            if float(np.hypot(*rem)) < 1e-9:
                break
            t, t_hit = self._sweep(p, rem, need)
            if t >= 1.0:
                p = p + rem
                break
            hit = p + t_hit * rem
            p = p + t * rem
            rem = (1.0 - t) * rem
            if not self.sliding:
                break
            _, surface = self.world.nearest(hit)
            normal = hit - surface[0]
            norm = float(np.hypot(*normal))
            if norm < 1e-12:
                break
            normal /= norm
            rem = rem - min(float(rem @ normal), 0.0) * normal  # drop the part pushing into the wall
        return p, bool(np.hypot(*(p - target)) > 1e-6)

    def step(self, position: np.ndarray, yaw: float, action: str) -> tuple[np.ndarray, float, bool]:
        """Apply one VLN-CE action; returns (position (x, z), yaw (rad), collided). STOP does not move."""
        if action == "MOVE_FORWARD":
            p, collided = self.slide(position, self.forward_step * forward_vector(yaw))
            return p, yaw, collided
        if action == "TURN_LEFT":
            return np.asarray(position, dtype=np.float64).copy(), wrap_angle(yaw + self.turn_angle), False
        if action == "TURN_RIGHT":
            return np.asarray(position, dtype=np.float64).copy(), wrap_angle(yaw - self.turn_angle), False
        if action == "STOP":
            return np.asarray(position, dtype=np.float64).copy(), yaw, False
        raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")

    def move(self, position: np.ndarray, yaw: float, linear_mps: float, angular_radps: float, dt_s: float) -> tuple[np.ndarray, float, bool]:
        """Unicycle motion for dt_s seconds (linear m/s along the heading, angular rad/s, positive =
        left), integrated in steps of at most 5 cm / 5 deg (midpoint heading), sliding on contact.
        Returns (position (x, z), yaw (rad), collided during any sub-step)."""
        for name, v in (("linear_mps", linear_mps), ("angular_radps", angular_radps), ("dt_s", dt_s)):
            if not math.isfinite(v):
                raise ValueError(f"move: {name} must be finite, got {v}")
        if dt_s < 0:
            raise ValueError(f"move: dt_s must be >= 0, got {dt_s}")
        p = np.asarray(position, dtype=np.float64).copy()
        n = max(1, math.ceil(abs(linear_mps * dt_s) / _SUBSTEP_M), math.ceil(abs(angular_radps * dt_s) / _SUBSTEP_RAD))
        h = dt_s / n
        collided = False
        for _ in range(n):
            yaw += angular_radps * h / 2
            if linear_mps != 0.0:
                p, c = self.slide(p, linear_mps * h * forward_vector(yaw))
                collided |= c
            yaw += angular_radps * h / 2
        return p, wrap_angle(yaw), collided
