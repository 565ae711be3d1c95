"""Golden metric values on hand-made trajectories (values worked out by hand below)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vila_nav.metrics import (
    METRIC_KEYS,
    TrajectoryRecorder,
    aggregate,
    dedup_positions,
    dtw,
    episode_metrics,
    ndtw,
    oracle_success,
    spl,
    success,
    trajectory_length,
)

INF = float("inf")


def _dtw_by_loops(q, r):
    """Textbook O(n*m) DTW with explicit loops, to check the vectorised one."""
    n, m = len(q), len(r)
    d = np.full((n + 1, m + 1), np.inf)
    d[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            c = math.dist(q[i - 1], r[j - 1])
            d[i, j] = c + min(d[i - 1, j], d[i, j - 1], d[i - 1, j - 1])
    return d[n, m]


def test_detour_success_golden_values():
    # Goal (0, 0, -4) in open space (geodesic = Euclidean). Actions: forward 1 m along +x,
    # turn (no motion), forward 3.5 m along -z, STOP.
    positions = [(0, 0, 0), (1, 0, 0), (1, 0, 0), (1, 0, -3.5), (1, 0, -3.5)]
    distances = [4.0, math.sqrt(17), math.sqrt(17), math.sqrt(1.25), math.sqrt(1.25)]
    reference = [(0, 0, 0), (0, 0, -2), (0, 0, -4)]
    m = episode_metrics(positions, distances, stop_called=True, steps=4, reference=reference)
    assert m["ne"] == pytest.approx(math.sqrt(1.25))
    assert m["sr"] == 1.0 and m["os"] == 1.0
    assert m["tl"] == pytest.approx(4.5)  # 1 + 0 + 3.5 + 0
    assert m["spl"] == pytest.approx(4.0 / 4.5)  # l = reset-time geodesic 4, TL 4.5
    # Q (deduplicated) = [(0,0,0), (1,0,0), (1,0,-3.5)]; by hand:
    #   cost rows q0: 0, 2, 4 | q1: 1, sqrt5, sqrt17 | q2: sqrt13.25, sqrt3.25, sqrt1.25
    #   D row0: 0, 2, 6; row1: 1, sqrt5, sqrt17+2; row2: ., sqrt3.25+1, sqrt1.25+min(sqrt17+2, sqrt3.25+1, sqrt5)
    expected_dtw = math.sqrt(1.25) + math.sqrt(5)
    assert dtw(dedup_positions(positions), reference) == pytest.approx(expected_dtw)
    assert m["ndtw"] == pytest.approx(math.exp(-expected_dtw / (3 * 3.0)))
    assert m["sdtw"] == pytest.approx(m["ndtw"])
    assert m["steps"] == 4.0
    assert set(m) == set(METRIC_KEYS)


def test_stop_at_exactly_three_metres_fails_strictly():
    # Goal (0,0,-4): forward 1 m then STOP at exactly 3.0 m -> not < 3.0: SR 0, OS 0.
    positions = [(0, 0, 0), (0, 0, -1), (0, 0, -1)]
    distances = [4.0, 3.0, 3.0]
    m = episode_metrics(positions, distances, True, 2, [(0, 0, 0), (0, 0, -4)])
    assert (m["ne"], m["sr"], m["os"], m["spl"], m["sdtw"]) == (3.0, 0.0, 0.0, 0.0, 0.0)
    assert m["tl"] == 1.0
    # Q = [(0,0,0),(0,0,-1)], R = [(0,0,0),(0,0,-4)]: DTW = 0 + min path -> 0 + 3 = 3
    assert m["ndtw"] == pytest.approx(math.exp(-3.0 / (2 * 3.0)))


def test_just_inside_three_metres_succeeds():
    below = math.nextafter(3.0, 0.0)
    assert success(True, below) == 1.0
    assert success(True, 3.0) == 0.0
    assert oracle_success([4.0, below]) == 1.0
    assert oracle_success([4.0, 3.0, 3.0]) == 0.0


def test_no_stop_is_failure_even_inside_radius():
    # The agent passes within 1 m of the goal but runs out of steps without STOP.
    positions = [(0, 0, 0), (0, 0, -3), (0, 0, -5)]
    distances = [4.0, 1.0, 1.0]
    m = episode_metrics(positions, distances, False, 2, [(0, 0, 0), (0, 0, -4)])
    assert m["sr"] == 0.0 and m["spl"] == 0.0 and m["sdtw"] == 0.0
    assert m["os"] == 1.0
    assert m["ne"] == 1.0


def test_oracle_success_counts_the_start_position():
    assert oracle_success([2.0, 5.0, 6.0]) == 1.0


def test_unreachable_goal_gives_inf_ne_and_failure():
    positions = [(0, 0, 0), (0, 0, -0.25), (0, 0, -0.25)]
    m = episode_metrics(positions, [INF, INF, INF], True, 2, [(0, 0, 0), (0, 0, -1)])
    assert m["ne"] == INF
    assert (m["sr"], m["os"], m["spl"], m["sdtw"]) == (0.0, 0.0, 0.0, 0.0)
    assert math.isfinite(m["ndtw"]) and m["tl"] == 0.25


def test_stop_at_start_inside_radius():
    m = episode_metrics([(0, 0, 0), (0, 0, 0)], [2.0, 2.0], True, 1, [(0, 0, 0)])
    assert (m["sr"], m["spl"], m["tl"], m["steps"]) == (1.0, 1.0, 0.0, 1.0)
    assert m["ndtw"] == 1.0 and m["sdtw"] == 1.0
    assert spl(1.0, 0.0, 0.0) == 1.0  # l == TL == 0: documented as 1, not nan
    assert spl(0.0, INF, 3.0) == 0.0


def test_trajectory_length_and_dedup():
    assert trajectory_length([(0, 0, 0)]) == 0.0
    assert trajectory_length([(0, 0, 0), (3, 0, 4), (3, 0, 4), (3, 1, 4)]) == pytest.approx(6.0)
    assert dedup_positions([(0, 0, 0), (0, 0, 0), (1, 0, 0), (1, 0, 0), (0, 0, 0)]) == [
        (0.0, 0.0, 0.0),
        (1.0, 0.0, 0.0),
        (0.0, 0.0, 0.0),
    ]


def test_dtw_matches_textbook_loops_and_identity():
    rng = np.random.default_rng(0)
    for _ in range(30):
        q = rng.normal(size=(int(rng.integers(1, 9)), 3)).tolist()
        r = rng.normal(size=(int(rng.integers(1, 9)), 3)).tolist()
        assert dtw(q, r) == pytest.approx(_dtw_by_loops(q, r), rel=1e-12, abs=1e-12)
    path = [(0, 0, 0), (1, 0, 0), (2, 0, 0)]
    assert dtw(path, path) == 0.0 and ndtw(path, path) == 1.0


def test_recorder_feeds_the_same_metrics():
    rec = TrajectoryRecorder(reference=[(0, 0, 0), (0, 0, -2), (0, 0, -4)])
    rec.start((0, 0, 0), 4.0)
    rec.record("MOVE_FORWARD", (1, 0, 0), math.sqrt(17))
    rec.record("TURN_LEFT", (1, 0, 0), math.sqrt(17))
    rec.record("MOVE_FORWARD", (1, 0, -3.5), math.sqrt(1.25))
    rec.record("STOP", (1, 0, -3.5), math.sqrt(1.25))
    assert rec.stop_called and rec.steps == 4
    assert rec.metrics()["spl"] == pytest.approx(4.0 / 4.5)
    with pytest.raises(RuntimeError, match="after STOP"):
        rec.record("MOVE_FORWARD", (1, 0, -4), 1.0)


def test_aggregate_reports_nonfinite_and_errors():
    rows = [
        {"episode_id": "a", "metrics": dict.fromkeys(METRIC_KEYS, 1.0) | {"ne": 2.0}},
        {"episode_id": "b", "metrics": dict.fromkeys(METRIC_KEYS, 0.0) | {"ne": INF}},
        {"episode_id": "c", "metrics": dict.fromkeys(METRIC_KEYS, 0.0) | {"ne": 4.0}},
        {"episode_id": "d", "error": "RuntimeError: boom"},
    ]
    s = aggregate(rows)
    assert (s["episodes"], s["evaluated"], s["errors"], s["error_episodes"]) == (4, 3, 1, ["d"])
    assert s["mean"]["ne"] == 3.0  # finite values 2 and 4
    assert s["finite"]["ne"] == 2 and s["nonfinite"]["ne"] == 1
    assert s["nonfinite_episodes"] == {"ne": ["b"]}
    assert s["mean"]["sr"] == pytest.approx(1 / 3)
    # order-independent (fsum): shards merged in any order give the same bits
    assert aggregate(rows[::-1])["mean"] == s["mean"]
    assert aggregate([])["mean"]["sr"] is None


def test_metric_invariants_on_random_trajectories():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    point = st.tuples(*[st.floats(-20, 20, allow_nan=False)] * 3)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(point, min_size=1, max_size=12), st.lists(point, min_size=1, max_size=12),
           st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=12), st.booleans())
    def check(q, r, dists, stop):
        assert dtw(q, r) == pytest.approx(dtw(r, q), rel=1e-9, abs=1e-9)  # DTW is symmetric
        assert dtw(q, r) == pytest.approx(_dtw_by_loops(q, r), rel=1e-9, abs=1e-9)
        positions = (q * len(dists))[: len(dists)]
        m = episode_metrics(positions, dists, stop, len(dists) - 1, r)
        assert 0.0 < m["ndtw"] <= 1.0 and 0.0 <= m["spl"] <= m["sr"] <= m["os"] <= 1.0
        assert m["sdtw"] <= m["ndtw"]

    check()
