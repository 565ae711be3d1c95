"""A scene ready for navigation without rendering: spec, collision world, motion model,
free-space grids and the expert. Pure numpy/scipy/scikit-fmm; the MiniWorld backend adds a
renderer on top, the episode generator uses it directly (no OpenGL)."""
from __future__ import annotations

import math

import numpy as np

from vila_nav.envs.config import SimConfig
from vila_nav.envs.follower import ShortestPathFollower
from vila_nav.envs.motion import MotionModel
from vila_nav.envs.navgrid import NavGrid
from vila_nav.scenes.collision import CollisionWorld, wall_segments
from vila_nav.scenes.spec import SceneSpec


class NavScene:
    """Everything about one scene that does not need a camera.

    grid: free space for the agent's radius (geodesic distances, metrics);
    plan_grid: free space with the expert's extra margin (shortest paths keep off walls).
    """

    def __init__(self, spec: SceneSpec, cfg: SimConfig):
        self.spec = spec
        self.cfg = cfg
        self.world = CollisionWorld.from_scene(spec)
        self.walls = wall_segments(spec)  # (S, 2, 2) m, doorways open: sight lines (visibility.py)
        self.motion = MotionModel(self.world, cfg.agent_radius_m, cfg.forward_step_m, math.radians(cfg.turn_angle_deg), cfg.allow_sliding)
        self.grid = NavGrid.from_world(self.world, spec.bounds, cfg.grid_resolution_m, cfg.agent_radius_m)
        self.plan_grid = self.grid.with_radius(cfg.agent_radius_m + cfg.expert_margin_m)

    def geodesic(self, a: np.ndarray, b: np.ndarray) -> float:
        """Geodesic distance (m) between two (x, z) or (x, y, z) points; inf if unreachable."""
        return self.grid.geodesic(xz_of(a), xz_of(b))

    def follower(self) -> ShortestPathFollower:
        """A fresh expert for one agent."""
        return ShortestPathFollower(self.plan_grid, self.grid, self.cfg.turn_angle_deg, self.cfg.expert_lookahead_m,
                                    forward_step_m=self.cfg.forward_step_m)

    def room_at(self, point: np.ndarray) -> str | None:
        """Room id at (x, z) / (x, y, z), or None."""
        x, z = xz_of(point)
        room = self.spec.room_at(float(x), float(z))
        return room.room_id if room else None


def xz_of(p: np.ndarray) -> np.ndarray:
    """(x, z) from an (x, z) or (x, y, z) point."""
    a = np.asarray(p, dtype=np.float64).ravel()
    if a.shape == (3,):
        return a[[0, 2]]
    if a.shape == (2,):
        return a
    raise ValueError(f"expected an (x, z) or (x, y, z) point, got shape {a.shape}")
