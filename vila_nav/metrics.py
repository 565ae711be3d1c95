"""VLN-CE navigation metrics as pure functions of recorded data (numpy only).

Semantics follow the VLN-CE reference implementation (Krantz et al., "Beyond the Nav-Graph:
Vision-and-Language Navigation in Continuous Environments", ECCV 2020), with one difference on
purpose: nothing here reads simulator state. The evaluator records, per executed action, the
agent position (m) and the geodesic distance to the goal (m) into a `TrajectoryRecorder`, and
the metrics are computed from that record afterwards, so every metric is testable on hand-made
trajectories without a simulator.

Positions are (x, y, z) in metres; distances are metres; success distance is 3.0 m (strict <).

Non-finite values (e.g. NE = inf when the goal is unreachable from where the agent ended) are
kept in the per-episode rows as they are. `aggregate` averages each metric over its finite
values and reports, next to every mean, how many values were non-finite and which episodes they
came from: never dropped silently.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

SUCCESS_DISTANCE = 3.0  # m, VLN-CE R2R/RxR success distance (habitat's generic default is 0.2)

# Metric keys in the order of the results table; fractions in [0, 1] except ne/tl (m) and steps.
METRIC_KEYS = ("ne", "os", "sr", "spl", "ndtw", "sdtw", "tl", "steps")

Vec3 = Sequence[float]


def navigation_error(distances: Sequence[float]) -> float:
    """NE: geodesic distance (m) from the final position to the goal.

    distances: geodesic distance to the goal at every recorded position (start first, final last).
    inf when the goal is unreachable from the final position.
    """
    if len(distances) == 0:
        raise ValueError("navigation_error needs at least one recorded distance (the start)")
    return float(distances[-1])


def success(stop_called: bool, final_distance: float, success_distance: float = SUCCESS_DISTANCE) -> float:
    """SR: 1.0 if the agent called STOP and ended strictly closer than `success_distance`.

    Running out of steps without STOP is a failure, however close the agent is (VLN-CE).
    """
    return 1.0 if (stop_called and final_distance < success_distance) else 0.0


def oracle_success(distances: Iterable[float], success_distance: float = SUCCESS_DISTANCE) -> float:
    """OS: 1.0 if the geodesic distance was < `success_distance` at any recorded position
    (the start included, as VLN-CE updates the measure at reset)."""
    return 1.0 if any(d < success_distance for d in distances) else 0.0


def trajectory_length(positions: Sequence[Vec3]) -> float:
    """TL: sum of Euclidean distances (m) between consecutive recorded positions."""
    if len(positions) < 2:
        return 0.0
    p = np.asarray(positions, dtype=np.float64)  # (T, 3) m
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())


def spl(success_value: float, shortest_length: float, path_length: float) -> float:
    """SPL (Anderson et al. 2018, "On Evaluation of Embodied Navigation Agents"):
    S * l / max(l, TL), l = start-to-goal geodesic distance computed at reset (m), TL = path length.

    0.0 when unsuccessful (even if l is inf). For a success with l == TL == 0 (start inside the
    goal radius and STOP at once) the ratio is taken as 1 (VLN-CE would give 0/0 = nan).
    """
    if success_value == 0.0:
        return 0.0
    denom = max(shortest_length, path_length)
    if denom == 0.0:
        return float(success_value)
    return float(success_value * shortest_length / denom)


def dedup_positions(positions: Iterable[Vec3]) -> list[tuple[float, float, float]]:
    """The nDTW query Q: positions appended only when they differ from the previous one
    (exact comparison, as VLN-CE does), so turning in place and blocked moves add nothing."""
    out: list[tuple[float, float, float]] = []
    for p in positions:
        t = (float(p[0]), float(p[1]), float(p[2]))
        if not out or t != out[-1]:
            out.append(t)
    return out


def dtw(query: Sequence[Vec3], reference: Sequence[Vec3]) -> float:
    """Exact dynamic-time-warping distance with Euclidean point cost (m).

    D[i, j] = c[i, j] + min(D[i-1, j], D[i, j-1], D[i-1, j-1]); the result is D[n-1, m-1].
    scipy has no DTW and VLN-CE uses fastdtw (an approximation with radius 1); this is the exact
    DP, vectorised per row: with a_j = min(D[i-1, j], D[i-1, j-1]) and C the running sum of row
    i's costs, D[i, j] = C_j + min_{k <= j}(a_k - C_{k-1}), a cumulative minimum. O(n*m) time, O(m) memory.
    """
    q = np.asarray(query, dtype=np.float64).reshape(-1, 3)  # (n, 3)
    r = np.asarray(reference, dtype=np.float64).reshape(-1, 3)  # (m, 3)
    if len(q) == 0 or len(r) == 0:
        raise ValueError("dtw needs non-empty query and reference")
    cost = np.linalg.norm(q[:, None, :] - r[None, :, :], axis=2)  # (n, m) m
    prev = np.cumsum(cost[0])  # first row: only horizontal moves
    for i in range(1, len(q)):
        c = cost[i]
        a = prev.copy()
        a[1:] = np.minimum(prev[1:], prev[:-1])  # best predecessor from the row above
        csum = np.cumsum(c)
        shifted = np.concatenate(([0.0], csum[:-1]))  # C_{k-1}
        prev = csum + np.minimum.accumulate(a - shifted)
    return float(prev[-1])


def ndtw(query: Sequence[Vec3], reference: Sequence[Vec3], success_distance: float = SUCCESS_DISTANCE) -> float:
    """nDTW (Ilharco et al. 2019, "General Evaluation for Instruction Conditioned Navigation
    using Dynamic Time Warping"): exp(-DTW(Q, R) / (|R| * success_distance)).

    query Q: agent positions de-duplicated (see dedup_positions); reference R: the ground-truth
    dense locations (VLN-CE `{split}_gt.json.gz` "locations"); |R| = number of reference points.
    """
    return float(math.exp(-dtw(query, reference) / (len(reference) * success_distance)))


def sdtw(success_value: float, ndtw_value: float) -> float:
    """SDTW: success-weighted nDTW, SR * nDTW."""
    return float(success_value * ndtw_value)


def episode_metrics(
    positions: Sequence[Vec3],
    distances: Sequence[float],
    stop_called: bool,
    steps: int,
    reference: Sequence[Vec3],
    success_distance: float = SUCCESS_DISTANCE,
) -> dict[str, float]:
    """All metrics of one episode from its record.

    positions/distances: one entry per recorded position, the start first (len = actions + 1).
    distances[0] is the reset-time geodesic used by SPL. reference: nDTW reference locations.
    Returns {"ne", "os", "sr", "spl", "ndtw", "sdtw", "tl", "steps"}.
    """
    if len(positions) != len(distances):
        raise ValueError(f"positions ({len(positions)}) and distances ({len(distances)}) differ in length")
    ne = navigation_error(distances)
    sr = success(stop_called, ne, success_distance)
    tl = trajectory_length(positions)
    nd = ndtw(dedup_positions(positions), reference, success_distance)
    return {
        "ne": ne,
        "os": oracle_success(distances, success_distance),
        "sr": sr,
        "spl": spl(sr, float(distances[0]), tl),
        "ndtw": nd,
        "sdtw": sdtw(sr, nd),
        "tl": tl,
        "steps": float(steps),
    }


@dataclass
class TrajectoryRecorder:
    """Per-step record the evaluator feeds; metrics come from it, not from simulator state.

    start(position, distance) at reset, then record(action, position, distance) after every
    executed action (STOP included, which ends the record). distance = geodesic to the goal (m).
    """

    reference: Sequence[Vec3]  # nDTW reference locations (gt dense locations)
    success_distance: float = SUCCESS_DISTANCE
    positions: list[tuple[float, float, float]] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    stop_called: bool = False

    def start(self, position: Vec3, distance: float) -> None:
        """Record the start position and the reset-time geodesic distance to the goal."""
        self.positions = [_vec3(position)]
        self.distances = [float(distance)]
        self.actions = []
        self.stop_called = False

    def record(self, action: str, position: Vec3, distance: float) -> None:
        """Record one executed action and the position/distance after it."""
        if not self.positions:
            raise RuntimeError("TrajectoryRecorder.record before start")
        if self.stop_called:
            raise RuntimeError("TrajectoryRecorder.record after STOP")
        self.actions.append(action)
        self.positions.append(_vec3(position))
        self.distances.append(float(distance))
        if action == "STOP":
            self.stop_called = True

    @property
    def steps(self) -> int:
        """Number of actions so far, STOP included."""
        return len(self.actions)

    def metrics(self) -> dict[str, float]:
        """episode_metrics of what was recorded."""
        return episode_metrics(
            self.positions, self.distances, self.stop_called, self.steps, self.reference, self.success_distance
        )


def _vec3(p: Vec3) -> tuple[float, float, float]:
    return (float(p[0]), float(p[1]), float(p[2]))


def aggregate(rows: Iterable[Mapping[str, Any]], keys: Sequence[str] = METRIC_KEYS) -> dict[str, Any]:
    """Headline numbers: plain means over episodes, with non-finite values reported.

    rows: per-episode results, each {"episode_id": str, "metrics": {key: float}} or, for an
    episode that raised, {"episode_id": str, "error": str} (counted in "errors", no metrics).
    Policy: each mean is over the finite values of that metric; "nonfinite" gives, per metric,
    how many values were inf/nan and "nonfinite_episodes" which episodes. An unreachable goal
    (NE = inf) still counts as a failure in SR/SPL/SDTW (those stay finite).
    Returns {"episodes", "evaluated", "errors", "error_episodes", "mean", "finite", "nonfinite",
    "nonfinite_episodes"}.
    """
    rows = list(rows)
    evaluated = [r for r in rows if not r.get("error")]
    errors = [str(r["episode_id"]) for r in rows if r.get("error")]
    mean: dict[str, float | None] = {}
    finite: dict[str, int] = {}
    nonfinite: dict[str, int] = {}
    nonfinite_eps: dict[str, list[str]] = {}
    for k in keys:
        vals, bad = [], []
        for r in evaluated:
            v = float(r["metrics"][k])
            (vals if math.isfinite(v) else bad).append(v if math.isfinite(v) else str(r["episode_id"]))
        mean[k] = math.fsum(vals) / len(vals) if vals else None  # fsum: order-independent
        finite[k] = len(vals)
        nonfinite[k] = len(bad)
        if bad:
            nonfinite_eps[k] = [str(b) for b in bad]
    return {
        "episodes": len(rows),
        "evaluated": len(evaluated),
        "errors": len(errors),
        "error_episodes": errors,
        "mean": mean,
        "finite": finite,
        "nonfinite": nonfinite,
        "nonfinite_episodes": nonfinite_eps,
    }
