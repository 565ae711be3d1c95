"""Known inputs for the ROS tests and the ROS benchmark: a real checkpoint with a known answer
(torch) and a one-episode split with a known straight path (the embedded simulator).

The ROS loop needs a model whose answers are valid actions (to see the robot move) without a
trained model: `make_answering_checkpoint` (defined in vila_nav.model.testing, next to
make_tiny_checkpoint, and re-exported here) writes a real NaVILA-layout checkpoint whose hand-set
language model always greedily answers a chosen sentence, whatever the frames and instruction.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["FORWARD_ANSWER", "STOP_ANSWER", "make_answering_checkpoint", "make_straight_episode"]
_FROM_MODEL = ("FORWARD_ANSWER", "STOP_ANSWER", "make_answering_checkpoint")


def __getattr__(name: str):
    # Re-exported lazily so importing this module does not import torch (vila_nav.model.testing does).
    if name in _FROM_MODEL:
        import vila_nav.model.testing as model_testing

        return getattr(model_testing, name)
    raise AttributeError(f"module 'vila_nav.ros.testing' has no attribute '{name}'")


def make_straight_episode(root: str | Path, scene: str = "house_0000", seed: int = 0,
                          length_m: tuple[float, float] = (3.0, 5.0), split: str = "val_unseen") -> tuple[object, float]:
    """Write a one-episode R2R split under `root`: start and goal `length_m` apart on a free,
    straight line of a shipped scene (geodesic == straight distance), the agent facing the goal.
    Returns (episode, distance m). Needs the embedded simulator (the sim extra)."""
    import math

    import numpy as np

    from vila_nav.envs import SimConfig, make_env
    from vila_nav.envs.pose import yaw_to_quat
    from vila_nav.episodes import Episode, Goal, GroundTruth, Instruction, save_r2r

    rng = np.random.default_rng(seed)
    with make_env(SimConfig()) as env:
        nav = env.load_scene(scene)
        grid = nav.grid
        free = np.argwhere(grid.free)
        for _ in range(20000):
            (ra, ca), (rb, cb) = free[rng.integers(len(free), size=2)]
            a, b = grid.centers(np.array([ra, rb]), np.array([ca, cb]))
            d = float(np.linalg.norm(b - a))
            if length_m[0] < d < length_m[1] and grid.line_free(a, b) and abs(nav.geodesic(a, b) - d) < 0.1:
                break
        else:
            raise RuntimeError(f"no free straight {length_m} m line in scene {scene}")
    yaw = math.atan2(-(b[0] - a[0]), -(b[1] - a[1]))  # face the goal (the agent faces -Z at yaw 0)
    start, goal = (float(a[0]), 0.0, float(a[1])), (float(b[0]), 0.0, float(b[1]))
    episode = Episode("1", "1", scene, start, tuple(float(v) for v in yaw_to_quat(yaw)), (Goal(goal),),
                      Instruction("Walk straight ahead and stop in front of you."), (start, goal),
                      {"geodesic_distance": d}, GroundTruth((1, 0), (start, goal), 1))
    save_r2r(root, split, [episode])
    return episode, d
