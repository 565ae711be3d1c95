"""habitat-sim backend (>= 0.2): real Matterport3D scenes and VLN-CE R2R/RxR episodes.

Thin on purpose: habitat-sim renders, collides (navmesh, sliding) and computes geodesics and the
greedy expert; everything else (the NavEnv interface, action names, pose conventions, configs)
is shared with the embedded backend. habitat-sim is imported lazily: without it, creating this
env raises ImportError naming what to install. Scene ids of episodes ("mp3d/X/X.glb") resolve
relative to cfg.scenes_dir (VLN-CE's data/scene_datasets).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from vila_nav.envs.config import SimConfig
from vila_nav.envs.nav_env import NavEnv, action_name
from vila_nav.envs.top_down import TopDownMap
from vila_nav.episodes import Episode

INSTALL_HINT = (
    "the 'habitat' simulator backend needs habitat-sim >= 0.2 (with its headless build), which is not "
    "on PyPI: install it with conda (`conda install habitat-sim headless -c conda-forge -c aihabitat`) "
    "or build it from source, then download the MP3D scenes for VLN-CE; or use backend=miniworld"
)
# Our action names -> habitat-sim action keys (its default agent action space).
HABITAT_ACTIONS = {"MOVE_FORWARD": "move_forward", "TURN_LEFT": "turn_left", "TURN_RIGHT": "turn_right"}


def import_habitat_sim() -> Any:
    """Import habitat_sim or raise ImportError naming what to install."""
    try:
        import habitat_sim
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    return habitat_sim


def resolve_scene_path(scene_id: str, scenes_dir: str) -> Path:
    """Absolute path of an episode's scene file: scene_id as is when absolute, else relative to
    scenes_dir (FileNotFoundError naming both when missing)."""
    path = Path(scene_id)
    if not path.is_absolute():
        if not scenes_dir:
            raise FileNotFoundError(
                f"scene {scene_id!r} is relative: set SimConfig.scenes_dir to the folder it is relative to "
                "(VLN-CE: data/scene_datasets)"
            )
        path = Path(scenes_dir) / path
    if not path.is_file():
        raise FileNotFoundError(f"habitat scene file not found: {path} (scene_id {scene_id!r}, scenes_dir {scenes_dir!r})")
    return path


def sensor_settings(cfg: SimConfig) -> dict[str, Any]:
    """Plain values of the RGB sensor and agent from a SimConfig (what habitat-sim is given).

    resolution is [height, width] (habitat's order); position is [0, camera height, 0] (m);
    actions are habitat-sim action keys -> amounts (m or deg)."""
    return {
        "uuid": "rgb",
        "resolution": [int(cfg.height), int(cfg.width)],
        "position": [0.0, float(cfg.camera_height_m), 0.0],
        "hfov": float(cfg.hfov_deg),
        "agent_radius": float(cfg.agent_radius_m),
        "agent_height": float(cfg.agent_height_m),
        "actions": {
            "move_forward": float(cfg.forward_step_m),
            "turn_left": float(cfg.turn_angle_deg),
            "turn_right": float(cfg.turn_angle_deg),
        },
        "allow_sliding": bool(cfg.allow_sliding),
    }


class HabitatNavEnv(NavEnv):
    """NavEnv on habitat-sim. See NavEnv for the API."""

    def __init__(self, cfg: SimConfig | None = None):
        super().__init__(cfg or SimConfig(backend="habitat"))
        self._hs = import_habitat_sim()
        self._sim: Any = None
        self._scene_path: Path | None = None
        self._follower: Any = None
        self._follower_radius: float | None = None
        self._vel: Any = None

    # ---- simulator setup -------------------------------------------------------------------
    def _configuration(self, scene_path: Path) -> Any:
        hs, s = self._hs, sensor_settings(self.cfg)
        sim_cfg = hs.SimulatorConfiguration()
        sim_cfg.scene_id = str(scene_path)
        if self.cfg.habitat_scene_dataset:
            sim_cfg.scene_dataset_config_file = self.cfg.habitat_scene_dataset
        sim_cfg.gpu_device_id = int(self.cfg.habitat_gpu_device_id)
        sim_cfg.allow_sliding = s["allow_sliding"]
        rgb = hs.CameraSensorSpec()
        rgb.uuid = s["uuid"]
        rgb.sensor_type = hs.SensorType.COLOR
        rgb.resolution = s["resolution"]
        rgb.position = s["position"]
        rgb.hfov = s["hfov"]
        agent_cfg = hs.agent.AgentConfiguration()
        agent_cfg.height = s["agent_height"]
        agent_cfg.radius = s["agent_radius"]
        agent_cfg.sensor_specifications = [rgb]
        agent_cfg.action_space = {
            key: hs.agent.ActionSpec(key, hs.agent.ActuationSpec(amount=amount)) for key, amount in s["actions"].items()
        }
        return hs.Configuration(sim_cfg, [agent_cfg])

    def _load(self, scene_id: str) -> None:
        path = resolve_scene_path(scene_id, self.cfg.scenes_dir)
        if self._sim is not None and path == self._scene_path:
            return
        config = self._configuration(path)
        if self._sim is None:
            self._sim = self._hs.Simulator(config)
        else:
            self._sim.reconfigure(config)
        if not self._sim.pathfinder.is_loaded:
            navmesh = path.with_suffix(".navmesh")
            if navmesh.is_file():
                self._sim.pathfinder.load_nav_mesh(str(navmesh))
            else:
                raise FileNotFoundError(f"no navmesh for {path} (expected {navmesh})")
        self._scene_path = path
        self._follower = None

    def _require_sim(self) -> Any:
        if self._sim is None:
            raise RuntimeError("no scene loaded: call reset(episode) first")
        return self._sim

    # ---- episode and motion ----------------------------------------------------------------
    def reset(self, episode: Episode) -> np.ndarray:
        self._load(episode.scene_id)
        self.episode = episode
        self.steps, self.stopped, self.collided = 0, False, False
        self.set_pose(np.asarray(episode.start_position), np.asarray(episode.start_rotation))
        if self._follower is not None:
            self._follower.reset()
        return self.observe()

    def set_pose(self, position: np.ndarray, rotation: np.ndarray) -> None:
        sim = self._require_sim()
        from habitat_sim.utils.common import quat_from_coeffs

        state = self._hs.AgentState()
        state.position = np.asarray(position, dtype=np.float32)
        state.rotation = quat_from_coeffs(np.asarray(rotation, dtype=np.float64))  # [x, y, z, w]
        sim.get_agent(0).set_state(state)
        self.collided = False

    def step(self, action: str | int) -> np.ndarray:
        name = action_name(action)
        sim = self._require_sim()
        self.steps += 1
        if name == "STOP":
            self.stopped, self.collided = True, False
            return self.observe()
        obs = sim.step(HABITAT_ACTIONS[name])
        self.collided = bool(obs.get("collided", False))
        return np.ascontiguousarray(obs["rgb"][..., :3])  # drop alpha

    def move(self, linear_mps: float, angular_radps: float, dt_s: float) -> None:
        sim = self._require_sim()
        hs = self._hs
        from habitat_sim.utils.common import quat_from_magnum, quat_to_magnum

        if self._vel is None:
            self._vel = hs.physics.VelocityControl()
            self._vel.controlling_lin_vel = True
            self._vel.controlling_ang_vel = True
            self._vel.lin_vel_is_local = True
            self._vel.ang_vel_is_local = True
        self._vel.linear_velocity = np.array([0.0, 0.0, -float(linear_mps)])  # forward is local -Z
        self._vel.angular_velocity = np.array([0.0, float(angular_radps), 0.0])  # +Y: left turn
        agent = sim.get_agent(0)
        state = agent.get_state()
        before = hs.RigidState(quat_to_magnum(state.rotation), state.position)
        after = self._vel.integrate_transform(float(dt_s), before)
        end = sim.step_filter(before.translation, after.translation)  # navmesh: sliding per config
        wanted = float((after.translation - before.translation).dot())
        got = float((end - before.translation).dot())
        self.collided = got < wanted - 1e-5
        state.position = np.asarray(end)
        state.rotation = quat_from_magnum(after.rotation)
        agent.set_state(state)

    def observe(self) -> np.ndarray:
        obs = self._require_sim().get_sensor_observations()
        return np.ascontiguousarray(obs["rgb"][..., :3])

    # ---- state ------------------------------------------------------------------------------
    @property
    def position(self) -> np.ndarray:
        return np.asarray(self._require_sim().get_agent(0).get_state().position, dtype=np.float64)

    @property
    def rotation(self) -> np.ndarray:
        from habitat_sim.utils.common import quat_to_coeffs

        return np.asarray(quat_to_coeffs(self._require_sim().get_agent(0).get_state().rotation), dtype=np.float64)

    # ---- geometry and expert ----------------------------------------------------------------
    def geodesic_distance(self, a: np.ndarray, b: np.ndarray) -> float:
        sim = self._require_sim()
        path = self._hs.ShortestPath()
        path.requested_start = np.asarray(a, dtype=np.float32)
        path.requested_end = np.asarray(b, dtype=np.float32)
        if not sim.pathfinder.find_path(path) or not math.isfinite(path.geodesic_distance):
            return math.inf
        return float(path.geodesic_distance)

    def expert_action(self, goal_position: np.ndarray | None = None, goal_radius: float | None = None) -> str:
        sim = self._require_sim()
        goal, radius = self._goal_args(goal_position, goal_radius)
        if self._follower is None or self._follower_radius != radius:
            self._follower = sim.make_greedy_follower(0, radius, stop_key="STOP", forward_key="MOVE_FORWARD", left_key="TURN_LEFT", right_key="TURN_RIGHT")
            self._follower_radius = radius
        try:
            return str(self._follower.next_action_along(goal.astype(np.float32)))
        except self._hs.errors.GreedyFollowerError:
            return "STOP"  # habitat's follower found no way: stopping is VLN-CE's convention too

    def top_down_map(self, meters_per_pixel: float = 0.05) -> TopDownMap:
        sim = self._require_sim()
        height = float(self.position[1])
        free = np.asarray(sim.pathfinder.get_topdown_view(meters_per_pixel, height), dtype=bool)
        lower, _upper = sim.pathfinder.get_bounds()
        img = np.where(free[..., None], np.uint8(230), np.uint8(60)).repeat(3, axis=-1).astype(np.uint8)
        return TopDownMap(img, (float(lower[0]), float(lower[2])), meters_per_pixel)

    def close(self) -> None:
        if self._sim is not None:
            self._sim.close()
            self._sim = None
        self._follower = None

