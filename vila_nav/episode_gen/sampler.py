"""One episode in one scene: sample a start and goal, run the expert, describe the route.

Pure (NavScene: numpy, scipy, scikit-fmm; no rendering), seeded by the caller's Generator. The
expert's actions and dense locations come from the same motion model the embedded simulator
steps with, so replaying `gt.actions` in the simulator reproduces `gt.locations`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vila_nav.envs.nav_scene import NavScene
from vila_nav.envs.pose import yaw_to_quat
from vila_nav.episode_gen.config import EpisodeGenConfig
from vila_nav.episode_gen.instructions import r2r_instruction, rxr_instruction
from vila_nav.episode_gen.route import Route, describe_route, footprint_distance
from vila_nav.episodes import Episode, Goal, GroundTruth, Instruction

ACTION_IDS = {"STOP": 0, "MOVE_FORWARD": 1, "TURN_LEFT": 2, "TURN_RIGHT": 3}
_DECIMALS = 4  # positions in files: 0.1 mm


class _Candidates:
    """Free cells of a scene's main connected region, with their clearance and room."""

    def __init__(self, scene: NavScene, min_clearance: float):
        g = scene.grid
        ok = (g.components() == 1) & (g.clearance >= min_clearance)
        rows, cols = np.nonzero(ok)
        self.points = g.centers(rows, cols)  # (K, 2)
        self.rows, self.cols = rows, cols
        self.room = np.array([scene.room_at(p) or "" for p in self.points])
        if len(self.points) == 0:
            raise ValueError(f"scene {scene.spec.scene_id}: no free cell with clearance >= {min_clearance} m")


def _round(p: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(p, dtype=np.float64), _DECIMALS)


@dataclass(frozen=True)
class ExpertRun:
    """One expert route: actions ending with STOP, dense (x, z) locations (the start, then after
    every forward move), the final geodesic distance to the goal (m), and how many forward moves
    were blocked or shortened by a wall (slid)."""

    actions: list[str]
    locations: list[np.ndarray]
    final_distance: float
    collisions: int


def rollout(scene: NavScene, start: np.ndarray, yaw: float, goal: np.ndarray, radius: float, max_steps: int) -> ExpertRun | None:
    """Run the expert from (start, yaw (rad)) towards goal (x, z) until it says STOP (within
    `radius` m, geodesic); None if it needs more than max_steps actions."""
    follower = scene.follower()
    field = scene.grid.field(goal)
    p, actions, locations = np.asarray(start, dtype=np.float64), [], [np.asarray(start, dtype=np.float64)]
    collisions = 0
    for _ in range(max_steps):
        d = field.at(p)
        a = follower.next_action(p, yaw, goal, radius, d)
        actions.append(a)
        if a == "STOP":
            return ExpertRun(actions, locations, d, collisions)
        p, yaw, collided = scene.motion.step(p, yaw, a)
        collisions += int(collided)
        if a == "MOVE_FORWARD":
            locations.append(p)
    return None


def sample_episode(scene: NavScene, cfg: EpisodeGenConfig, fmt: str, episode_id: str, rng: np.random.Generator,
                   candidates: _Candidates | None = None) -> Episode:
    """Sample one `fmt` ("r2r" / "rxr") episode in `scene` (RuntimeError after cfg.max_tries)."""
    cand = candidates or _Candidates(scene, cfg.min_clearance_m)
    lo, hi = cfg.geodesic_range(fmt)
    for _ in range(cfg.max_tries):
        pair = sample_start_goal(scene, cfg, fmt, rng, cand)
        if pair is None:
            continue
        start, yaw, goal = pair
        run = rollout(scene, start, yaw, goal, cfg.expert_goal_radius_m, cfg.sim.max_steps)
        if run is None or not run.final_distance < cfg.expert_goal_radius_m:
            continue
        return _make_episode(scene, cfg, fmt, episode_id, start, yaw, goal, run.actions, run.locations, rng)
    raise RuntimeError(f"scene {scene.spec.scene_id}: no {fmt} episode with a {lo}-{hi} m route after {cfg.max_tries} tries")


def sample_start_goal(scene: NavScene, cfg: EpisodeGenConfig, fmt: str, rng: np.random.Generator,
                      candidates: _Candidates) -> tuple[np.ndarray, float, np.ndarray] | None:
    """One sampling try: (start (x, z), start yaw (rad), goal (x, z)) with a start-goal geodesic
    in the format's range, or None when this try found no such pair (the caller tries again)."""
    cand = candidates
    lo, hi = cfg.geodesic_range(fmt)
    spec = scene.spec
    # goal: next to a landmark (instructions can name it) or anywhere
    goal = None
    if spec.objects and rng.random() < cfg.landmark_goal_prob:
        obj = spec.objects[int(rng.integers(len(spec.objects)))]
        d = footprint_distance(obj, cand.points)
        near = np.nonzero((d > 0.35) & (d < 1.1) & (cand.room == obj.room_id))[0]
        if len(near):
            goal = cand.points[near[int(rng.integers(len(near)))]]
    if goal is None:
        goal = cand.points[int(rng.integers(len(cand.points)))]
    goal = _round(goal + rng.uniform(-0.02, 0.02, 2))
    field = scene.grid.field(goal)
    dist = field.values[cand.rows, cand.cols]
    ok = (dist >= lo) & (dist <= hi)
    goal_room = scene.room_at(goal) or ""
    if rng.random() < cfg.other_room_prob and (ok & (cand.room != goal_room)).any():
        ok &= cand.room != goal_room
    idx = np.nonzero(ok)[0]
    if len(idx) == 0:
        return None
    start = _round(cand.points[idx[int(rng.integers(len(idx)))]] + rng.uniform(-0.02, 0.02, 2))
    yaw = float(rng.uniform(-math.pi, math.pi))
    if not scene.motion.is_free(start):
        return None
    return start, yaw, goal


def _initial_turn(actions: list[str], turn_deg: float) -> float:
    net = 0
    for a in actions:
        if a == "MOVE_FORWARD":
            break
        net += {"TURN_LEFT": 1, "TURN_RIGHT": -1}.get(a, 0)
    return net * turn_deg


def _make_episode(scene: NavScene, cfg: EpisodeGenConfig, fmt: str, episode_id: str, start: np.ndarray, yaw: float,
                  goal: np.ndarray, actions: list[str], locations: list[np.ndarray], rng: np.random.Generator) -> Episode:
    path = np.array(locations)
    route: Route = describe_route(scene.spec, path, yaw, _initial_turn(actions, cfg.sim.turn_angle_deg), goal)
    xyz = lambda p: (float(round(p[0], _DECIMALS)), 0.0, float(round(p[1], _DECIMALS)))  # noqa: E731
    waypoints = [xyz(w) for w in route.waypoints[:-1]] + [xyz(goal)]
    gt = GroundTruth(
        actions=tuple(ACTION_IDS[a] for a in actions),
        locations=tuple(xyz(p) for p in locations),
        forward_steps=sum(a == "MOVE_FORWARD" for a in actions),
    )
    geodesic = round(scene.grid.geodesic(start, goal), _DECIMALS)
    if fmt == "r2r":
        instruction = Instruction(text=r2r_instruction(route, rng))
        info = {"geodesic_distance": geodesic}
    else:
        instruction = Instruction(text=rxr_instruction(route, rng), instruction_id=episode_id, language="en-US",
                                  extra={"annotator_id": "0"})
        info = {"role": "guide", "geodesic_distance": geodesic}
    return Episode(
        episode_id=episode_id,
        trajectory_id=episode_id,
        scene_id=scene.spec.scene_id,
        start_position=xyz(start),
        start_rotation=tuple(float(v) for v in yaw_to_quat(yaw)),  # type: ignore[arg-type]
        goals=(Goal(position=xyz(goal), radius=cfg.goal_radius_m),),
        instruction=instruction,
        reference_path=tuple(waypoints),
        info=info,
        gt=gt,
    )
