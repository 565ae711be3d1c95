"""SimConfig: one typed configuration for every simulator backend (R2R-CE defaults)."""
from __future__ import annotations

from dataclasses import dataclass, field

BACKENDS = ("miniworld", "habitat")


@dataclass
class SimConfig:
    """Simulator settings. Defaults are VLN-CE's R2R-CE task: 224 x 224 RGB, HFOV 90 deg, camera
    1.25 m above the floor, agent radius 0.1 m / height 1.5 m, MOVE_FORWARD 0.25 m, turns 15 deg,
    at most 500 steps, success within 3.0 m (geodesic), sliding along walls."""

    # The `doc` texts are what `ros2 param describe` shows for the sim bridge's sim.* parameters.
    backend: str = field(default="miniworld", metadata={
        "doc": "miniworld (embedded, default) | habitat (habitat-sim >= 0.2)"})
    width: int = field(default=224, metadata={"doc": "camera image width, px"})
    height: int = field(default=224, metadata={"doc": "camera image height, px"})
    hfov_deg: float = field(default=90.0, metadata={"doc": "horizontal field of view, deg"})
    camera_height_m: float = field(default=1.25, metadata={"doc": "camera height above the floor, m"})
    agent_radius_m: float = field(default=0.1, metadata={"doc": "agent's collision radius, m"})
    agent_height_m: float = field(default=1.5, metadata={"doc": "agent's height, m"})
    forward_step_m: float = field(default=0.25, metadata={"doc": "MOVE_FORWARD primitive, m"})
    turn_angle_deg: float = field(default=15.0, metadata={"doc": "TURN_LEFT / TURN_RIGHT primitive, deg"})
    max_steps: int = field(default=500, metadata={
        "doc": "episode budget in primitives; the evaluator enforces it (env.steps counts actions)"})
    success_distance_m: float = field(default=3.0, metadata={"doc": "success radius around the goal (geodesic), m"})
    allow_sliding: bool = field(default=True, metadata={
        "doc": "slide along walls (VLN-CE) instead of stopping at contact"})
    scenes_dir: str = field(default="", metadata={
        "doc": "where scene_id resolves. miniworld: folder of scene specs (\"\" = the shipped sim/scenes/); "
               "habitat: root that episode scene_ids (e.g. mp3d/X/X.glb) are relative to"})
    grid_resolution_m: float = field(default=0.05, metadata={"doc": "miniworld: free-space grid cell, m"})
    expert_margin_m: float = field(default=0.1, metadata={
        "doc": "miniworld: extra wall clearance the expert plans with, m"})
    expert_lookahead_m: float = field(default=8.0, metadata={
        "doc": "miniworld: how far along the shortest path the expert looks for its aim point, m"})
    max_cached_scenes: int = field(default=16, metadata={
        "doc": "miniworld: built scenes (render lists + grids) kept in memory"})
    habitat_scene_dataset: str = field(default="", metadata={
        "doc": "habitat: scene_dataset_config_file (\"\" = habitat's default)"})
    habitat_gpu_device_id: int = field(default=0, metadata={"doc": "habitat: GPU for rendering"})

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
