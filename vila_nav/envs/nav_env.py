"""NavEnv: the simulator interface every backend implements (VLN-CE conventions).

Poses follow Habitat: positions (x, y, z) in metres with Y up, rotations [x, y, z, w] with the
agent facing -Z at identity. Actions are "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT", "STOP"
(VLN-CE ids 1, 2, 3, 0 are accepted too); STOP moves nothing and sets `stopped`. `steps` counts
actions since reset (STOP included); max_steps is enforced by the caller (the evaluator), not
here. Observations are (H, W, 3) uint8 RGB arrays the caller owns.
"""
from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np

from vila_nav.envs.config import SimConfig
from vila_nav.envs.top_down import TopDownMap
from vila_nav.episodes import Episode

ACTION_NAMES = ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")  # index = VLN-CE action id


def action_name(action: str | int) -> str:
    """Normalise an action given as a name or a VLN-CE id (0 STOP, 1 FWD, 2 LEFT, 3 RIGHT)."""
    if isinstance(action, (int, np.integer)) and not isinstance(action, bool):
        if 0 <= int(action) < len(ACTION_NAMES):
            return ACTION_NAMES[int(action)]
    elif isinstance(action, str) and action in ACTION_NAMES:
        return action
    raise ValueError(f"unknown action {action!r}; expected one of {ACTION_NAMES} or a VLN-CE id 0..3")


class NavEnv(abc.ABC):
    """A simulator an agent navigates in. Use as a context manager or call close()."""

    cfg: SimConfig

    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.episode: Episode | None = None
        self.steps = 0  # actions since reset, STOP included
        self.stopped = False  # STOP was called in this episode
        self.collided = False  # the last motion was blocked or shortened by a collision

    # ---- episode and motion -----------------------------------------------------------------
    @abc.abstractmethod
    def reset(self, episode: Episode) -> np.ndarray:
        """Load the episode's scene (cached), put the agent at its start pose; returns the first view."""

    @abc.abstractmethod
    def step(self, action: str | int) -> np.ndarray:
        """Apply one discrete action (sizes from cfg); returns the new view."""

    @abc.abstractmethod
    def move(self, linear_mps: float, angular_radps: float, dt_s: float) -> None:
        """Continuous motion for the ROS bridge: drive at linear (m/s, forward +) and angular
        (rad/s, left +) velocity for dt_s seconds, sliding along walls. Call observe() for a view."""

    @abc.abstractmethod
    def observe(self) -> np.ndarray:
        """The current view, (H, W, 3) uint8 RGB."""

    @abc.abstractmethod
    def set_pose(self, position: np.ndarray, rotation: np.ndarray) -> None:
        """Teleport the agent to position (x, y, z) (m) and rotation [x, y, z, w]."""

    def save_state(self) -> Any:
        """An opaque snapshot of the episode state: pose, step and stop counters, collision flag
        and the expert's memory (restore_state puts it back). Lets a caller try primitives ahead,
        e.g. to label a state with the expert's next action, without changing the episode."""
        raise NotImplementedError(f"{type(self).__name__} cannot save and restore its episode state "
                                  "(needed to label a learner's own decisions; the MiniWorld simulator can)")

    def restore_state(self, state: Any) -> None:
        """Return to a save_state() snapshot taken in the current episode."""
        raise NotImplementedError(f"{type(self).__name__} cannot save and restore its episode state")

    # ---- state ------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def position(self) -> np.ndarray:
        """Agent position (3,) [x, y, z] (m), y on the floor."""

    @property
    @abc.abstractmethod
    def rotation(self) -> np.ndarray:
        """Agent rotation (4,) quaternion [x, y, z, w]."""

    @property
    def heading(self) -> float:
        """Yaw about +Y (rad); 0 faces -Z, positive is to the left."""
        from vila_nav.envs.pose import quat_to_yaw

        return quat_to_yaw(self.rotation)

    # ---- geometry and expert ----------------------------------------------------------------
    @abc.abstractmethod
    def geodesic_distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Shortest walkable distance (m) between points a and b (x, y, z) in the current scene;
        math.inf if b cannot be reached from a."""

    @abc.abstractmethod
    def expert_action(self, goal_position: np.ndarray | None = None, goal_radius: float | None = None) -> str:
        """The shortest-path follower's next action towards goal_position (default: the episode
        goal) that stops once the geodesic distance is below goal_radius (default: the success
        distance, cfg.success_distance_m)."""

    def distance_to_goal(self) -> float:
        """Geodesic distance (m) from the agent to the episode's goal."""
        if self.episode is None:
            raise RuntimeError("distance_to_goal: call reset(episode) first")
        return self.geodesic_distance(self.position, np.asarray(self.episode.goal.position))

    def visible_objects(self, max_range_m: float = 8.0) -> dict[str, float] | None:
        """{object name: distance (m)} of the named objects in the current view (ground truth for
        a vision-side training target), or None when this backend does not know them."""
        return None

    @abc.abstractmethod
    def top_down_map(self) -> TopDownMap:
        """A top-down RGB map of the current scene and its world -> pixel mapping."""

    # ---- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Release the simulator (idempotent)."""

    def __enter__(self) -> "NavEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _goal_args(self, goal_position: np.ndarray | None, goal_radius: float | None) -> tuple[np.ndarray, float]:
        if goal_position is None:
            if self.episode is None:
                raise RuntimeError("expert_action: no goal given and no episode loaded")
            goal_position = np.asarray(self.episode.goal.position)
        radius = self.cfg.success_distance_m if goal_radius is None else float(goal_radius)
        if not (radius >= 0 and math.isfinite(radius)):
            raise ValueError(f"expert_action: goal_radius must be a finite number >= 0, got {goal_radius}")
        return np.asarray(goal_position, dtype=np.float64), radius
