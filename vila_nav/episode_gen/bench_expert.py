"""`vila-nav bench-expert`: how good the shortest-path expert's routes are as training labels
(printed figures, no asserts).

    vila-nav bench-expert                          # shipped val_unseen + 96 sampled train pairs
    vila-nav bench-expert train_pairs=0 expert_goal_radius_m=1.0

Two sets of start / goal pairs, each run with the expert exactly as the episode generator does
(pure motion model, no rendering, STOP within `expert_goal_radius_m`, geodesic):

- val_unseen: the starts, headings and goals of the shipped sim/episodes (R2R + RxR);
- train: fresh pairs sampled in the train scenes with the generator's own sampler *without* its
  expert filter (R2R ranges), so expert failures show up instead of being resampled.

Figures per set: success rate (the expert stops within the radius), SPL (success x geodesic /
max(path, geodesic), geodesic measured to the stop radius), path length / (start geodesic -
final geodesic), forward moves that hit a wall (slid), primitives and NaVILA decisions per
episode (`vila_nav.actions.merge_primitives`, max 3 per answer: what the SFT labels are), the
answer histogram (25/50/75 cm, 15/30/45 deg, stop), the share of 25 cm + 15 deg answers, mean
forward run (consecutive MOVE_FORWARD), turn reversals (a turn opposite to the previous turn
with fewer than 2 forward moves in between) and the expert's time per call.
"""
from __future__ import annotations

import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from vila_nav.envs.config import SimConfig

_TRAIN_STREAM = 7919  # RNG stream of the train pairs, apart from the generator's (seed, format, split, k)
ANSWERS = ("forward 25", "forward 50", "forward 75", "turn 15", "turn 30", "turn 45", "stop")


@dataclass
class BenchExpertConfig:
    val_unseen: bool = True  # the shipped sim/episodes val_unseen pairs (R2R + RxR)
    train_pairs: int = 96  # sampled train-scene pairs (0 = none), R2R geodesic range
    expert_goal_radius_m: float = 0.25  # the expert STOPs within this geodesic distance (generator's)
    max_merge: int = 3  # primitives per NaVILA answer
    seed: int = 0  # train pair sampling
    sim: SimConfig = field(default_factory=SimConfig)

    def __post_init__(self) -> None:
        if self.train_pairs < 0:
            raise ValueError(f"train_pairs must be >= 0, got {self.train_pairs}")
        if not (self.val_unseen or self.train_pairs):
            raise ValueError("nothing to measure: val_unseen=false and train_pairs=0")
        if not self.expert_goal_radius_m > 0:
            raise ValueError(f"expert_goal_radius_m must be > 0, got {self.expert_goal_radius_m}")
        if self.max_merge < 1:
            raise ValueError(f"max_merge must be >= 1, got {self.max_merge}")
        if self.sim.backend != "miniworld":
            raise ValueError("bench-expert measures the embedded expert (sim.backend=miniworld)")


@dataclass
class _Tally:
    episodes: int = 0
    successes: int = 0
    spl: float = 0.0
    ratio: list[float] = field(default_factory=list)
    collisions: int = 0
    episodes_with_collision: int = 0
    primitives: int = 0
    calls: int = 0
    seconds: float = 0.0
    answers: Counter = field(default_factory=Counter)
    forward_runs: list[int] = field(default_factory=list)
    reversals: int = 0


def _answer_key(action) -> str:
    if action.kind == "stop":
        return "stop"
    if action.kind == "forward":
        return f"forward {round(action.amount * 100):d}"
    return f"turn {round(action.amount):d}"


def _runs_and_reversals(actions: list[str]) -> tuple[list[int], int]:
    """Lengths of MOVE_FORWARD runs; turn reversals with < 2 forward moves since the last turn."""
    runs, run, reversals, last_turn, since = [], 0, 0, "", 0
    for a in actions:
        if a == "MOVE_FORWARD":
            run += 1
            since += 1
            continue
        if run:
            runs.append(run)
            run = 0
        if a in ("TURN_LEFT", "TURN_RIGHT"):
            if last_turn and a != last_turn and since < 2:
                reversals += 1
            last_turn, since = a, 0
    if run:
        runs.append(run)
    return runs, reversals


def _measure(tally: _Tally, scene, start: np.ndarray, yaw: float, goal: np.ndarray, cfg: BenchExpertConfig) -> None:
    from vila_nav.actions import merge_primitives
    from vila_nav.episode_gen.sampler import rollout

    geodesic = scene.geodesic(start, goal)
    t = time.perf_counter()
    run = rollout(scene, start, yaw, goal, cfg.expert_goal_radius_m, cfg.sim.max_steps)
    tally.seconds += time.perf_counter() - t
    tally.episodes += 1
    if run is None:  # out of steps: counted as a failure with every step taken
        tally.calls += cfg.sim.max_steps
        return
    tally.calls += len(run.actions)
    path = np.array(run.locations)
    length = float(np.hypot(*np.diff(path, axis=0).T).sum()) if len(path) > 1 else 0.0
    success = run.final_distance < cfg.expert_goal_radius_m
    if success:
        tally.successes += 1
        reach = max(geodesic - cfg.expert_goal_radius_m, 1e-9)  # the route only has to reach the radius
        tally.spl += reach / max(length, reach)
        tally.ratio.append(length / max(geodesic - run.final_distance, 1e-9))
    tally.collisions += run.collisions
    tally.episodes_with_collision += int(run.collisions > 0)
    tally.primitives += len(run.actions)
    answers = merge_primitives(run.actions, cfg.max_merge, forward_step=cfg.sim.forward_step_m, turn_step=cfg.sim.turn_angle_deg)
    tally.answers.update(_answer_key(a) for a in answers)
    runs, reversals = _runs_and_reversals(run.actions)
    tally.forward_runs += runs
    tally.reversals += reversals


def run(cfg: BenchExpertConfig, progress: bool = True) -> dict[str, dict[str, float]]:
    """Measure the expert on the configured sets; returns {set name: figures}."""
    from tqdm import tqdm

    from vila_nav.envs.nav_scene import NavScene, xz_of
    from vila_nav.envs.pose import quat_to_yaw
    from vila_nav.episode_gen.config import EpisodeGenConfig
    from vila_nav.episode_gen.sampler import _Candidates, sample_start_goal
    from vila_nav.scenes.store import load_scene, scenes_for_split

    scenes: dict[str, NavScene] = {}

    def scene_of(scene_id: str) -> NavScene:
        if scene_id not in scenes:
            scenes[scene_id] = NavScene(load_scene(scene_id, cfg.sim.scenes_dir or None), cfg.sim)
        return scenes[scene_id]

    out: dict[str, dict[str, float]] = {}
    if cfg.val_unseen:
        from vila_nav.episodes import load_r2r, load_rxr
        from vila_nav.paths import sim_dir

        root = sim_dir() / "episodes"
        episodes = load_r2r(root / "r2r", "val_unseen") + load_rxr(root / "rxr", split="val_unseen")
        tally = _Tally()
        for ep in tqdm(episodes, desc="val_unseen", unit="ep", disable=not progress):
            _measure(tally, scene_of(ep.scene_id), xz_of(ep.start_position), quat_to_yaw(ep.start_rotation),
                     xz_of(ep.goal.position), cfg)
        out["val_unseen"] = _figures(tally)
        scenes.clear()
    if cfg.train_pairs:
        gen = EpisodeGenConfig(sim=cfg.sim)  # the generator's sampling settings (its expert radius is not used)
        ids = scenes_for_split("train", cfg.sim.scenes_dir or None)
        tally = _Tally()
        bar = tqdm(total=cfg.train_pairs, desc="train", unit="ep", disable=not progress)
        for i, scene_id in enumerate(ids):  # pair k lies in scene k % len(ids); one scene in memory at a time
            pairs = range(i, cfg.train_pairs, len(ids))
            if not pairs:
                break
            scene = NavScene(load_scene(scene_id, cfg.sim.scenes_dir or None), cfg.sim)
            cand = _Candidates(scene, gen.min_clearance_m)
            for k in pairs:
                rng = np.random.default_rng([cfg.seed, _TRAIN_STREAM, k])
                for _ in range(gen.max_tries):
                    pair = sample_start_goal(scene, gen, "r2r", rng, cand)
                    if pair is not None:
                        _measure(tally, scene, *pair, cfg)
                        break
                else:
                    raise RuntimeError(f"scene {scene_id}: no start / goal pair in the R2R range after {gen.max_tries} tries")
                bar.update(1)
        bar.close()
        out["train"] = _figures(tally)
    return out


def _figures(t: _Tally) -> dict[str, float]:
    n_answers = sum(t.answers.values())
    f = {
        "episodes": float(t.episodes),
        "success_rate": t.successes / max(t.episodes, 1),
        "spl": t.spl / max(t.episodes, 1),
        "path_over_geodesic": float(np.mean(t.ratio)) if t.ratio else math.nan,
        "collisions_per_episode": t.collisions / max(t.episodes, 1),
        "episodes_with_collision": t.episodes_with_collision / max(t.episodes, 1),
        "primitives_per_episode": t.primitives / max(t.episodes, 1),
        "decisions_per_episode": n_answers / max(t.episodes, 1),
        "short_answer_share": (t.answers["forward 25"] + t.answers["turn 15"]) / max(n_answers, 1),
        "mean_forward_run": float(np.mean(t.forward_runs)) if t.forward_runs else 0.0,
        "reversals_per_episode": t.reversals / max(t.episodes, 1),
        "ms_per_call": 1000 * t.seconds / max(t.calls, 1),
    }
    for key in ANSWERS:
        f[key] = t.answers[key] / max(n_answers, 1)
    return f


def main(argv: list[str]) -> int:
    """Entry point: hydra overrides of BenchExpertConfig."""
    from vila_nav.config import command_config

    cfg = command_config(BenchExpertConfig, "bench_expert", argv, prog="vila-nav bench-expert", doc=__doc__)
    if isinstance(cfg, int):
        return cfg
    res = run(cfg)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"shortest-path expert, stop radius {cfg.expert_goal_radius_m} m, answers of <= {cfg.max_merge} primitives; "
          f"load average {load:.1f}")
    names = list(res)
    rows = [
        ("episodes", "episodes", "{:.0f}"),
        ("success rate", "success_rate", "{:.1%}"),
        ("SPL (to the stop radius)", "spl", "{:.3f}"),
        ("path / geodesic covered", "path_over_geodesic", "{:.3f}"),
        ("forward moves that slid on a wall, per episode", "collisions_per_episode", "{:.2f}"),
        ("episodes with a collision", "episodes_with_collision", "{:.1%}"),
        ("primitives per episode", "primitives_per_episode", "{:.1f}"),
        ("decisions (answers) per episode", "decisions_per_episode", "{:.1f}"),
        ("25 cm + 15 deg answers", "short_answer_share", "{:.1%}"),
        *[(f"answers: {a}{' cm' if a.startswith('forward') else ' deg' if a.startswith('turn') else ''}", a, "{:.1%}")
          for a in ANSWERS],
        ("mean forward run (moves)", "mean_forward_run", "{:.2f}"),
        ("turn reversals per episode", "reversals_per_episode", "{:.2f}"),
        ("expert time per call (ms)", "ms_per_call", "{:.2f}"),
    ]
    width = max(len(a) for a, _, _ in rows)
    print(f"| {'measure':<{width}} | " + " | ".join(names) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("---" for _ in names) + "|")
    for label, key, fmt in rows:
        print(f"| {label:<{width}} | " + " | ".join(fmt.format(res[n][key]) for n in names) + " |")
    return 0
