"""The sim bridge in this process, with its simulator thread stalled on purpose.

A stall of the simulator thread (a slow render, a loaded CPU) must not change how far the robot
drives: the late tick replays each cmd_vel over the time it was in force. The stall here is a
real one (the camera render sleeps) placed across the end of a drive, where integrating the
newest command (zero) over the gap would lose most of the last 0.6 s of motion.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("miniworld")

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(120)]


def test_a_stalled_simulator_replays_the_commands_it_missed(tmp_path, ctx):
    from geometry_msgs.msg import Twist
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from vila_nav.ros.runtime import Spinner
    from vila_nav.ros.sim_bridge import SimBridge
    from vila_nav.ros.testing import make_straight_episode

    make_straight_episode(tmp_path, "house_0000", length_m=(3.0, 5.0))
    bridge = SimBridge(context=ctx, parameter_overrides=[
        Parameter("episode.dataset_path", value=str(tmp_path)), Parameter("topics.status", value="nobody/status")])
    driver = Node("stall_driver", context=ctx)
    pub = driver.create_publisher(Twist, "cmd_vel", 10)
    spinner = Spinner([bridge, driver], ctx, num_threads=2)
    try:
        assert bridge.ready.wait(60), bridge.error
        stall = threading.Event()
        observe = bridge.env.observe

        def slow_observe():  # runs on the simulator thread: the whole loop waits with it
            if stall.is_set():
                stall.clear()
                time.sleep(0.8)
            return observe()

        bridge.env.observe = slow_observe
        start = np.asarray(bridge.env.position, dtype=float)
        cmd = Twist()
        sent: list[tuple[float, float]] = []  # (steady time published s, linear m/s)
        stalled = False
        t0 = time.monotonic()
        # 0.5 m/s for 1.5 s at 20 Hz (0.75 m), then zero; the simulator stalls for 0.8 s from
        # its first render after 1.1 s, across the last 0.4 s of motion and the stop.
        while (t := time.monotonic() - t0) < 2.6:
            cmd.linear.x = 0.5 if t < 1.5 else 0.0
            pub.publish(cmd)
            sent.append((time.monotonic(), cmd.linear.x))
            if t >= 1.1 and not stalled:
                stall.set()
                stalled = True
            time.sleep(0.05)
        time.sleep(0.3)  # the simulator has caught up with the last (zero) command
        travelled = float(np.linalg.norm(np.asarray(bridge.env.position, dtype=float) - start))
    finally:
        spinner.stop()
        bridge.close()
        bridge.destroy_node()
        driver.destroy_node()
    # What was sent, held until the next command (this process may publish late under load, so
    # the expected distance is measured, not assumed): 0.5 m/s from the first to the first zero.
    moving = [ts for ts, v in sent if v > 0]
    stop = next(ts for ts, v in sent if ts > moving[-1])
    commanded = 0.5 * (stop - moving[0])
    # Equal up to one 30 Hz physics sub-step at each edge (0.017 m each); integrating the newest
    # command over the stall instead would lose about 0.2 m.
    assert travelled == pytest.approx(commanded, abs=0.04), (travelled, commanded)
