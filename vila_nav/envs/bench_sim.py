"""`vila-nav bench-sim`: how fast the embedded simulator runs here (printed figures, no asserts).

    vila-nav bench-sim                       # 224 x 224, 1000 steps
    vila-nav bench-sim sim.width=512 sim.height=512 steps=500

Measures, in one run: scene build (cold reset) and cached reset time; discrete VLN-CE steps per
second with a render every step (replaying the shipped episodes' expert actions), the same
without rendering (motion model only) and rendering alone; continuous move() + observe() calls
per second (the ROS bridge loop); geodesic distance queries and expert actions per second.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from vila_nav.envs.config import SimConfig


@dataclass
class BenchSimConfig:
    steps: int = 1000  # timed discrete steps (and move calls)
    episodes: str = ""  # R2R split dir or file to replay ("" = shipped sim/episodes/r2r/val_unseen)
    sim: SimConfig = field(default_factory=SimConfig)

    def __post_init__(self) -> None:
        if self.steps < 10:
            raise ValueError(f"steps must be >= 10, got {self.steps}")
        if self.sim.backend != "miniworld":
            raise ValueError("bench-sim measures the embedded miniworld backend (sim.backend=miniworld)")


def run(cfg: BenchSimConfig) -> dict[str, float]:
    """Run the benchmark; returns the figures (also printed by main)."""
    import numpy as np

    from vila_nav.envs import make_env
    from vila_nav.episodes import load_r2r
    from vila_nav.paths import sim_dir

    path = cfg.episodes or str(sim_dir() / "episodes" / "r2r" / "val_unseen")
    episodes = [e for e in load_r2r(path) if e.gt is not None]
    if not episodes:
        raise ValueError(f"no episodes with ground truth in {path}")
    names = ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    env = make_env(cfg.sim)
    out["env_create_s"] = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        env.reset(episodes[0])
        out["reset_cold_s"] = time.perf_counter() - t0
        same = [e for e in episodes if e.scene_id == episodes[0].scene_id][:2]
        t0 = time.perf_counter()
        for i in range(20):  # alternate two starts in the cached scene: a real render each time
            env.reset(same[i % len(same)])
        out["reset_cached_s"] = (time.perf_counter() - t0) / 20

        def replay(render: bool) -> float:
            done, k, elapsed = 0, 0, 0.0
            while done < cfg.steps:
                ep = episodes[k % len(episodes)]
                k += 1
                env.reset(ep)
                scene = env.scene  # type: ignore[attr-defined]
                pos, yaw = env.position[[0, 2]], env.heading
                t = time.perf_counter()
                for a in ep.gt.actions[:-1]:  # type: ignore[union-attr]
                    if render:
                        env.step(names[a])
                    else:
                        pos, yaw, _ = scene.motion.step(pos, yaw, names[a])
                    done += 1
                    if done >= cfg.steps:
                        break
                elapsed += time.perf_counter() - t
            return done / elapsed

        out["step_render_per_s"] = replay(render=True)
        out["step_motion_only_per_s"] = replay(render=False)
        env.reset(episodes[0])
        t = time.perf_counter()
        for i in range(cfg.steps):
            env.set_pose(env.position, np.array([0.0, np.sin(i * 0.01), 0.0, np.cos(i * 0.01)]))
            env.observe()
        out["render_only_per_s"] = cfg.steps / (time.perf_counter() - t)
        env.reset(episodes[0])
        t = time.perf_counter()
        for i in range(cfg.steps):
            env.move(0.3, 0.2 if (i // 50) % 2 else -0.2, 0.1)  # 10 Hz bridge tick
            env.observe()
        out["move_observe_per_s"] = cfg.steps / (time.perf_counter() - t)
        env.reset(episodes[0])
        goal = np.asarray(episodes[0].goal.position)
        t = time.perf_counter()
        n = max(10, cfg.steps // 4)
        for i in range(n):
            env.expert_action(goal, 0.25)
        out["expert_action_per_s"] = n / (time.perf_counter() - t)
        t = time.perf_counter()
        for i, ep in enumerate(episodes[: min(len(episodes), 50)]):
            env.load_scene(ep.scene_id)  # type: ignore[attr-defined]
            env.geodesic_distance(np.asarray(ep.start_position), np.asarray(ep.goal.position))
        out["geodesic_new_goal_ms"] = 1000 * (time.perf_counter() - t) / min(len(episodes), 50)
    finally:
        env.close()
    return out


def main(argv: list[str]) -> int:
    """Entry point: hydra overrides of BenchSimConfig."""
    from vila_nav.config import command_config

    cfg = command_config(BenchSimConfig, "bench_sim", argv, prog="vila-nav bench-sim", doc=__doc__)
    if isinstance(cfg, int):
        return cfg
    r = run(cfg)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"embedded simulator (MiniWorld, {cfg.sim.width}x{cfg.sim.height}, HFOV {cfg.sim.hfov_deg:g}), "
          f"{cores} CPU cores visible, load average {load:.1f} at the end")
    rows = [
        ("discrete step + render (steps/s)", f"{r['step_render_per_s']:.0f}"),
        ("discrete step, motion only (steps/s)", f"{r['step_motion_only_per_s']:.0f}"),
        ("render only (frames/s)", f"{r['render_only_per_s']:.0f}"),
        ("continuous move(dt=0.1 s) + observe (calls/s)", f"{r['move_observe_per_s']:.0f}"),
        ("expert action (calls/s)", f"{r['expert_action_per_s']:.0f}"),
        ("geodesic distance to a new goal (ms)", f"{r['geodesic_new_goal_ms']:.1f}"),
        ("env creation (s)", f"{r['env_create_s']:.2f}"),
        ("reset, new scene (s)", f"{r['reset_cold_s']:.3f}"),
        ("reset, cached scene, with render (ms)", f"{1000 * r['reset_cached_s']:.1f}"),
    ]
    width = max(len(a) for a, _ in rows)
    print("| measure | value |\n|---|---|")
    for a, b in rows:
        print(f"| {a:<{width}} | {b} |")
    return 0
