"""The embedded simulator: MiniWorld rendering + the pure motion model, grid and expert.

Scenes are scene specs (`sim/scenes/<scene_id>.json`); each is built once per process (render
display list, collision world, free-space grids) and cached. Poses are Habitat's (see pose.py);
the floor is y = 0 in generated scenes and an episode's start height is kept as the agent's y.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from vila_nav.envs.config import SimConfig
from vila_nav.envs.follower import ShortestPathFollower
from vila_nav.envs.nav_env import NavEnv, action_name
from vila_nav.envs.nav_scene import NavScene, xz_of
from vila_nav.envs.pose import quat_to_yaw, yaw_to_quat
from vila_nav.envs.top_down import TopDownMap, draw_scene_map
from vila_nav.episodes import Episode
from vila_nav.scenes.store import load_scene, scene_key


START_TOLERANCE_M = 0.02  # an episode start may overlap walls by this much (rounded coordinates)


class MiniWorldNavEnv(NavEnv):
    """NavEnv on generated scenes rendered by MiniWorld (headless). See NavEnv for the API."""

    def __init__(self, cfg: SimConfig | None = None):
        super().__init__(cfg or SimConfig())
        from vila_nav.envs.miniworld_renderer import MiniWorldRenderer

        self._renderer: MiniWorldRenderer | None = MiniWorldRenderer(
            self.cfg.width, self.cfg.height, self.cfg.vfov_deg, self.cfg.camera_height_m, self.cfg.max_cached_scenes
        )
        self._scenes: OrderedDict[str, NavScene] = OrderedDict()
        self.scene: NavScene | None = None
        self._follower: ShortestPathFollower | None = None
        self._xz = np.zeros(2)  # agent (x, z) (m)
        self._y = 0.0  # agent height of the floor (m)
        self._yaw = 0.0  # rad, Habitat convention
        self._view: tuple[tuple[str, float, float, float], np.ndarray] | None = None

    # ---- scenes ----------------------------------------------------------------------------
    def load_scene(self, scene_id: str) -> NavScene:
        """Make `scene_id` current (built on first use, then cached); returns its NavScene."""
        key = scene_key(scene_id)
        scene = self._scenes.get(key)
        if scene is None:
            scene = NavScene(load_scene(key, self.cfg.scenes_dir or None), self.cfg)
            self._scenes[key] = scene
            while len(self._scenes) > self.cfg.max_cached_scenes:
                self._scenes.popitem(last=False)
        self._scenes.move_to_end(key)
        self._require_renderer().use(scene.spec)
        if self.scene is not scene:
            self.scene = scene
            self._follower = scene.follower()
        return scene

    def _require_renderer(self):
        if self._renderer is None:
            raise RuntimeError("the environment is closed")
        return self._renderer

    def _require_scene(self) -> NavScene:
        if self.scene is None:
            raise RuntimeError("no scene loaded: call reset(episode) first")
        return self.scene

    # ---- episode and motion ----------------------------------------------------------------
    def reset(self, episode: Episode) -> np.ndarray:
        scene = self.load_scene(episode.scene_id)
        self.episode = episode
        self.steps, self.stopped, self.collided = 0, False, False
        self.set_pose(np.asarray(episode.start_position), np.asarray(episode.start_rotation))
        clearance = float(scene.world.clearance(self._xz)[0])
        if clearance < self.cfg.agent_radius_m - START_TOLERANCE_M:
            where = "outside every room" if clearance < 0 and not scene.world.on_floor(self._xz)[0] else f"{clearance:.3f} m from a wall or object"
            raise ValueError(
                f"episode {episode.episode_id}: start {list(episode.start_position)} is not navigable in scene "
                f"{scene.spec.scene_id} ({where}; the agent needs {self.cfg.agent_radius_m} m)"
            )
        assert self._follower is not None
        self._follower.reset()
        return self.observe()

    def set_pose(self, position: np.ndarray, rotation: np.ndarray) -> None:
        self._require_scene()
        p = np.asarray(position, dtype=np.float64).ravel()
        if p.shape != (3,) or not np.isfinite(p).all():
            raise ValueError(f"set_pose: position must be 3 finite numbers [x, y, z], got {position!r}")
        self._xz = p[[0, 2]].copy()
        self._y = float(p[1])
        self._yaw = quat_to_yaw(rotation)
        self.collided = False

    def save_state(self) -> tuple:
        """(scene, episode, x z, y, yaw, steps, stopped, collided, the follower's memory)."""
        scene = self._require_scene()
        assert self._follower is not None
        return (scene, self.episode, self._xz.copy(), self._y, self._yaw, self.steps, self.stopped, self.collided,
                self._follower.state())

    def restore_state(self, state: tuple) -> None:
        scene, episode, xz, y, yaw, steps, stopped, collided, follower = state
        if scene is not self.scene or episode is not self.episode:
            raise ValueError("restore_state: the snapshot belongs to another episode or scene")
        assert self._follower is not None
        self._xz, self._y, self._yaw = xz.copy(), y, yaw
        self.steps, self.stopped, self.collided = steps, stopped, collided
        self._follower.set_state(follower)

    def step(self, action: str | int) -> np.ndarray:
        name = action_name(action)
        scene = self._require_scene()
        self.steps += 1
        if name == "STOP":
            self.stopped = True
            self.collided = False
        else:
            self._xz, self._yaw, self.collided = scene.motion.step(self._xz, self._yaw, name)
        return self.observe()

    def move(self, linear_mps: float, angular_radps: float, dt_s: float) -> None:
        scene = self._require_scene()
        self._xz, self._yaw, self.collided = scene.motion.move(self._xz, self._yaw, float(linear_mps), float(angular_radps), float(dt_s))

    def observe(self) -> np.ndarray:
        scene = self._require_scene()
        key = (scene.spec.scene_id, float(self._xz[0]), float(self._xz[1]), float(self._yaw))
        if self._view is None or self._view[0] != key:
            renderer = self._require_renderer()
            renderer.use(scene.spec)
            self._view = (key, renderer.render(self._xz[0], self._xz[1], self._yaw))
        return self._view[1].copy()

    # ---- state ------------------------------------------------------------------------------
    @property
    def position(self) -> np.ndarray:
        return np.array([self._xz[0], self._y, self._xz[1]])

    @property
    def rotation(self) -> np.ndarray:
        return yaw_to_quat(self._yaw)

    @property
    def heading(self) -> float:
        return self._yaw

    # ---- geometry and expert ----------------------------------------------------------------
    def geodesic_distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return self._require_scene().geodesic(a, b)

    def visible_objects(self, max_range_m: float = 8.0) -> dict[str, float]:
        """The scene's named objects in view (vila_nav.scenes.visibility: field of view, range,
        walls), from the pose alone: no rendering."""
        from vila_nav.scenes.visibility import visible_objects

        scene = self._require_scene()
        return visible_objects(scene.spec, scene.walls, float(self._xz[0]), float(self._xz[1]), self._yaw,
                               self.cfg.hfov_deg, max_range_m)

    def expert_action(self, goal_position: np.ndarray | None = None, goal_radius: float | None = None) -> str:
        scene = self._require_scene()
        goal, radius = self._goal_args(goal_position, goal_radius)
        assert self._follower is not None
        g = xz_of(goal)
        return self._follower.next_action(self._xz, self._yaw, g, radius, scene.grid.geodesic(self._xz, g))

    def top_down_map(self) -> TopDownMap:
        scene = self._require_scene()
        g = scene.grid
        return draw_scene_map(scene.spec, g.free, g.origin, g.resolution)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._scenes.clear()
        self.scene = None
        self._view = None

