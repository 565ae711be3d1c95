"""EpisodeMonitor: when a continuous-motion episode ends and what it scores (no ROS, no simulator)."""
from __future__ import annotations

import pytest

from vila_nav.ros.episode_monitor import EpisodeMonitor
from vila_nav.ros.status import Status


def monitor(**kw) -> EpisodeMonitor:
    # Straight corridor along -z: goal 5 m ahead of the start; distance = 5 - travelled.
    args = dict(max_time_s=60.0, idle_stop_s=2.0)
    args.update(kw)
    return EpisodeMonitor(0.0, (0.0, 0.0, 0.0), 5.0, [(0.0, 0.0, -z) for z in (0, 1, 2, 3, 4, 5)], **args)


def drive(m: EpisodeMonitor, t0: float, t1: float, v: float, z0: float, dt: float = 0.1) -> float:
    t, z = t0, z0
    while t < t1 - 1e-9:
        z += v * dt
        t += dt
        m.on_motion((0.0, 0.0, -z), 5.0 - z, v, 0.0, t)
        assert m.check(t, (0.0, 0.0, -z), 5.0 - z) is None or v == 0.0
    return z


def test_node_done_is_a_stop_and_metrics_follow_the_trajectory():
    m = monitor()
    m.on_status(Status(state="done", generation=3), 0.0)  # latched report of an older instruction
    m.on_status(Status(state="thinking", generation=4, queries=1), 0.1)
    z = drive(m, 0.0, 8.0, 0.5, 0.0)  # 4 m forward
    m.on_status(Status(state="done", generation=4, queries=7), 8.0)
    end = m.check(8.0, (0.0, 0.0, -z), 5.0 - z)
    assert end is not None and end.stop_called and "done" in end.reason
    r = m.result("ep1", "go forward")
    assert r["stop_called"] and r["metrics"]["sr"] == 1.0  # 1 m from the goal < 3 m
    assert r["metrics"]["ne"] == pytest.approx(1.0, abs=1e-6)
    assert r["metrics"]["tl"] == pytest.approx(4.0, abs=1e-6)
    assert r["metrics"]["spl"] == pytest.approx(1.0)  # 4 m walked for a 5 m geodesic: TL < l
    assert r["metrics"]["steps"] == 7.0  # the node's decisions


def test_node_stopped_is_not_a_stop():
    m = monitor()
    m.on_status(Status(state="executing", generation=1), 0.0)
    drive(m, 0.0, 1.0, 0.5, 0.0)
    m.on_status(Status(state="stopped", generation=1, reason="e-stop"), 1.0)
    end = m.check(1.0, (0.0, 0.0, -0.5), 4.5)
    assert end is not None and not end.stop_called and "e-stop" in end.reason
    assert m.metrics()["sr"] == 0.0


def test_idle_after_motion_without_a_node_counts_as_stop_and_time_limit_does_not():
    m = monitor()
    z = drive(m, 0.0, 4.0, 0.5, 0.0)
    drive(m, 4.0, 5.5, 0.0, z)  # still for 1.5 s < idle_stop_s
    assert m.end is None
    drive(m, 5.5, 6.1, 0.0, z)
    end = m.check(6.1, (0.0, 0.0, -z), 5.0 - z)
    assert end is not None and end.stop_called and "no motion" in end.reason

    m = monitor(max_time_s=3.0)
    drive(m, 0.0, 2.9, 0.0, 0.0)  # never moved: idle does not count
    assert m.check(2.95, (0.0, 0.0, 0.0), 5.0) is None
    end = m.check(3.0, (0.0, 0.0, 0.0), 5.0)
    assert end is not None and not end.stop_called and "time limit" in end.reason
    assert m.metrics()["os"] == 0.0
