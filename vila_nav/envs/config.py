"""SimConfig: one typed configuration for every simulator backend (R2R-CE defaults)."""
from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("miniworld", "habitat")


@dataclass
class SimConfig:
    """Simulator settings. Defaults are VLN-CE's R2R-CE task: 224 x 224 RGB, HFOV 90 deg, camera
    1.25 m above the floor, agent radius 0.1 m / height 1.5 m, MOVE_FORWARD 0.25 m, turns 15 deg,
    at most 500 steps, success within 3.0 m (geodesic), sliding along walls."""

    backend: str = "miniworld"  # "miniworld" (embedded, default) or "habitat" (habitat-sim >= 0.2)
    width: int = 224  # px
    height: int = 224  # px
    hfov_deg: float = 90.0  # horizontal field of view (deg)
    camera_height_m: float = 1.25
    agent_radius_m: float = 0.1
    agent_height_m: float = 1.5
    forward_step_m: float = 0.25
    turn_angle_deg: float = 15.0
    max_steps: int = 500  # episode budget; the evaluator enforces it (env.steps counts actions)
    success_distance_m: float = 3.0
    allow_sliding: bool = True  # slide along walls (VLN-CE) instead of stopping at contact
    # Where scene_id resolves: miniworld: folder of scene specs ("" = shipped sim/scenes/);
    # habitat: root that episode scene_ids (e.g. "mp3d/X/X.glb") are relative to.
    scenes_dir: str = ""
    # miniworld backend: free-space grid and expert follower.
    grid_resolution_m: float = 0.05  # free-space grid cell (m)
    expert_margin_m: float = 0.1  # extra wall clearance the expert plans with (m)
    expert_lookahead_m: float = 8.0  # how far along the shortest path (m) the expert looks for its aim point
    max_cached_scenes: int = 16  # built scenes (render lists + grids) kept in memory
    # habitat backend only.
    habitat_scene_dataset: str = ""  # scene_dataset_config_file ("" = habitat's default)
    habitat_gpu_device_id: int = 0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"SimConfig.backend must be one of {BACKENDS}, got {self.backend!r}")
        for name in ("width", "height", "max_steps", "max_cached_scenes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SimConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if not 1.0 <= self.hfov_deg < 179.0:
            raise ValueError(f"SimConfig.hfov_deg must be in [1, 179), got {self.hfov_deg}")
        positive = ("camera_height_m", "agent_radius_m", "agent_height_m", "forward_step_m", "turn_angle_deg",
                    "success_distance_m", "grid_resolution_m", "expert_lookahead_m")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"SimConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.expert_margin_m < 0:
            raise ValueError(f"SimConfig.expert_margin_m must be >= 0, got {self.expert_margin_m}")
        if self.grid_resolution_m > self.agent_radius_m:
            raise ValueError(
                f"SimConfig.grid_resolution_m ({self.grid_resolution_m}) must not exceed agent_radius_m "
                f"({self.agent_radius_m}): walls would leak through the free-space grid"
            )

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view (deg) giving hfov_deg at width x height (square: equal)."""
        import math

        return math.degrees(2 * math.atan(math.tan(math.radians(self.hfov_deg) / 2) * self.height / self.width))
