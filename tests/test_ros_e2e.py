"""The robot loop without a robot: sim bridge + vila_nav_node + `vila-nav instruct`, on loopback.

Everything runs as it would from `ros2 launch vila_nav sim.launch.py`: the bridge and the node are
separate processes started with their console-script modules and `--ros-args -p ...`, the
instruction comes from the CLI in a third process, and this test only listens. The episode is a
one-episode R2R-format split written here: a straight, free 3-5 m line in a shipped scene, the
robot facing the goal. The model is vila_nav.model.testing's answering checkpoint: a real tiny
VILA checkpoint whose LM is hand-set so greedy decoding always says "The next action is move
forward 75 cm." (the answer never depends on the images: that is what makes the expected path
known). With run.max_queries=3 the node stops after three 0.75 m actions, so the robot must have
driven 2.25 m toward the goal, and the bridge must end the episode and publish its metrics.
A second test drives the bridge alone with raw cmd_vel (no node): continuous motion, camera and
odometry, braking when cmd_vel goes quiet, and the "zero velocity after motion" end rule.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("miniworld")

from vila_nav.ros.runtime import Spinner  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(180)]

SCENE = "house_0000"


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from vila_nav.ros.testing import make_straight_episode

    root = tmp_path_factory.mktemp("r2r")
    episode, d = make_straight_episode(root, SCENE)
    return root, episode, d


class Listener:
    """Records the bridge's results, odometry and camera in this process."""

    def __init__(self, ctx) -> None:
        from nav_msgs.msg import Odometry
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node = Node(f"e2e_listener_{time.monotonic_ns()}", context=ctx)
        self.results: list[dict] = []
        self.episodes: list[dict] = []
        self.odom: list = []
        self.images: list[tuple[float, object]] = []
        self.node.create_subscription(String, "vila_nav/sim/episode_result", lambda m: self.results.append(json.loads(m.data)), latched)
        self.node.create_subscription(String, "vila_nav/sim/episode", lambda m: self.episodes.append(json.loads(m.data)), latched)
        self.node.create_subscription(Odometry, "odom", self.odom.append, 10)
        self.node.create_subscription(Image, "camera/image_raw", lambda m: self.images.append((time.monotonic(), m)), qos_profile_sensor_data)
        self.spinner = Spinner([self.node], ctx, num_threads=2)

    def wait(self, what: list, timeout: float, why: str, procs=None):
        deadline = time.monotonic() + timeout
        while not what and time.monotonic() < deadline:
            time.sleep(0.05)
        if not what:
            logs = "" if procs is None else "\n".join(f"--- {n}\n{procs.log(n)[-3000:]}" for n, _p, _l in procs.procs)
            pytest.fail(f"timed out waiting for {why}\n{logs}")
        return what[-1]

    def close(self) -> None:
        self.spinner.stop()
        self.node.destroy_node()


def stamp_s(msg) -> float:
    """A message's header stamp (s; the bridge's simulated clock)."""
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def applied_velocity(odom: list) -> list[tuple[float, float]]:
    """The bridge's applied linear velocity from its odometry, at each change (s since the first
    odometry, m/s): what a failure message needs to tell a slow node from a late simulator."""
    if not odom:
        return []
    t0, changes, last = stamp_s(odom[0]), [], None
    for o in odom:
        v = round(o.twist.twist.linear.x, 2)
        if v != last:
            changes.append((round(stamp_s(o) - t0, 3), v))
            last = v
    return changes


@pytest.fixture
def listener(ctx):
    lis = Listener(ctx)
    yield lis
    lis.close()


def test_instruction_from_the_cli_moves_the_simulated_robot_and_ends_the_episode(split, procs, listener, tmp_path):
    from vila_nav.model.testing import make_answering_checkpoint

    root, info, d0 = split
    procs.start("bridge", "-m", "vila_nav.ros.sim_bridge", "--ros-args", "-p", f"episode.dataset_path:={root}")
    model = make_answering_checkpoint(tmp_path / "forward")  # while the bridge starts
    procs.start("node", "-m", "vila_nav.ros.node", "--ros-args", "-p", f"model.path:={model}",
                "-p", "run.max_queries:=3", "-p", "camera.width:=224", "-p", "camera.height:=224",
                "-p", "limits.max_linear_mps:=1.0", "-p", "limits.max_linear_accel_mps2:=4.0")
    episode = listener.wait(listener.episodes, 60, "the bridge's episode", procs)
    assert episode["episode_id"] == "1" and episode["geodesic_distance_m"] == pytest.approx(d0, abs=0.1)

    cli = subprocess.run([sys.executable, "-m", "vila_nav.cli", "instruct", "walk straight ahead", "--follow",
                          "--timeout", "90", "--wait", "60"], env=procs.env, capture_output=True, text=True, timeout=120)
    out = cli.stdout
    assert "sent to /vila_nav/instruction: 'walk straight ahead'" in out, cli.stderr
    assert "[executing]" in out and "action: The next action is move forward 75 cm." in out, \
        f"exit {cli.returncode}\n{out}{cli.stderr}"
    assert cli.returncode == 1 and "max queries reached (3)" in out.strip().splitlines()[-1], out + cli.stderr

    result = listener.wait(listener.results, 30, "the episode result", procs)
    m = result["metrics"]
    assert result["episode_id"] == "1" and not result["stop_called"]
    assert "max queries reached (3)" in result["end_reason"]
    # A loaded machine can cut actions short, by design: the node aborts an action when its cmd_vel
    # timer starves, and the bridge brakes when cmd_vel reaches it late (cmd_vel_braked_s). The
    # camera watchdog does the same when the bridge's frames stall for its timeout ("camera silent"
    # in the status). A starved bridge executor delivers cmd_vel in a burst after the simulator has
    # moved past its send times (cmd_vel_late_s; a CI run lost 1 m that way), and a simulator thread
    # stalled over 2 s leaves time unsimulated (sim_dropped_s). How far such an action got depends
    # on the load (a timing), so only "it moved" is checked.
    why = f"{result}\n{out}\napplied linear velocity (s, m/s): {applied_velocity(listener.odom)}"
    late = result["cmd_vel_late_s"] is not None and result["cmd_vel_late_s"] > 0.05
    lossy = result["cmd_vel_braked_s"] > 0 or late or result["sim_dropped_s"] > 0
    if "action aborted" in out or "camera silent" in out or lossy:
        assert 0.0 < m["tl"] <= 2.25 + 0.2, why
    else:
        assert m["tl"] == pytest.approx(2.25, abs=0.2), why  # three 0.75 m actions, straight
    assert m["ne"] == pytest.approx(d0 - m["tl"], abs=0.25)  # straight toward the goal
    assert m["steps"] == 3.0 and m["sr"] == 0.0 and 0.0 < m["ndtw"] <= 1.0
    odom = listener.odom[-1].pose.pose.position
    assert odom.x == pytest.approx(m["tl"], abs=0.1) and abs(odom.y) < 0.2  # straight ahead in the start frame

    status = subprocess.run([sys.executable, "-m", "vila_nav.cli", "status"], env=procs.env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and status.stdout.startswith("[stopped]"), status.stdout + status.stderr


def test_bridge_alone_moves_continuously_brakes_when_cmd_vel_goes_quiet_and_ends_on_idle(split, procs, listener, ctx):
    from geometry_msgs.msg import Twist
    from rclpy.node import Node

    root, _info, _d0 = split
    idle_s, timeout_s = 1.0, 0.5
    procs.start("bridge", "-m", "vila_nav.ros.sim_bridge", "--ros-args", "-p", f"episode.dataset_path:={root}",
                "-p", f"episode.idle_stop_s:={idle_s}", "-p", f"rates.cmd_timeout_s:={timeout_s}",
                "-p", "topics.status:=nobody/status", "-p", "rates.camera_hz:=10.0")
    listener.wait(listener.episodes, 60, "the bridge's episode", procs)
    driver = Node("e2e_driver", context=ctx)
    pub = driver.create_publisher(Twist, "cmd_vel", 10)
    try:
        cmd = Twist()
        cmd.linear.x = 0.5
        # DDS discovery takes a moment, and what is published before the bridge has matched this
        # publisher is lost (a CI run lost 0.4 s of it). So publish until the bridge's odometry
        # shows motion, then time the 2 s drive from there, from the position x0 reached by then.
        deadline = time.monotonic() + 30
        while not any(o.twist.twist.linear.x > 0 for o in listener.odom) and time.monotonic() < deadline:
            pub.publish(cmd)
            time.sleep(0.05)
        assert any(o.twist.twist.linear.x > 0 for o in listener.odom), "the bridge never moved on cmd_vel"
        x0 = listener.odom[-1].pose.pose.position.x
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:  # 2 s at 0.5 m/s, 20 Hz like a controller, then silence
            pub.publish(cmd)
            sent_last = time.time()  # s, system clock: the bridge's simulated clock starts from it
            time.sleep(0.05)
        result = listener.wait(listener.results, 10, "the idle end of the episode", procs)
    finally:
        driver.destroy_node()
    assert result["stop_called"] and "no motion" in result["end_reason"]
    from vila_nav.ros.sim_bridge import HAS_MESSAGE_INFO

    # With the PyPI rclpy (>= Iron) each cmd_vel comes into force at its send time, and the
    # result says how late the latest-arriving one was for the simulator (None on Humble).
    assert (result["cmd_vel_late_s"] >= 0.0) if HAS_MESSAGE_INFO else (result["cmd_vel_late_s"] is None), result
    # Like a base with a command timeout, the robot goes on for cmd_timeout_s after the last
    # cmd_vel (2.5 s at 0.5 m/s = 1.25 m; the bridge's late ticks catch up), then brakes, and the
    # result counts the braked time until the idle end. A loaded machine takes motion away in
    # three ways, each seen in the result or the odometry, and each lowers the bound by 0.5 m/s
    # times its length: more braked time (this process's publisher stalled over cmd_timeout_s
    # mid-drive); braking that began before the last command's timeout (the bridge's executor
    # starved and heard the drive's last commands late or after the idle end, so neither the braked
    # time nor cmd_vel_late_s shows it: a CI run lost 0.44 s so, and a 1.7 s sleep in the bridge's
    # cmd_vel callback does the same); and sim_dropped_s (the simulator thread stalled over
    # MAX_CATCH_UP_S: time not simulated).
    tl, braked, dropped = result["metrics"]["tl"], result["cmd_vel_braked_s"], result["sim_dropped_s"]
    timed = tl - x0  # the path is straight ahead, so path length = x; x0 came before the timed drive
    braking = [stamp_s(o) for o in listener.odom if o.twist.twist.linear.x == 0.0 and o.pose.pose.position.x > x0 + 0.01]
    early = sent_last + timeout_s - (braking[0] + dropped) if braking else 0.0  # simulated time lags by the dropped
    why = (f"x0 {x0:.3f}, timed {timed:.3f}, braked {early:.3f} s early\n{result}\napplied linear velocity "
           f"(s, m/s): {applied_velocity(listener.odom)}\n--- bridge\n{procs.log('bridge')[-3000:]}")
    assert braked >= idle_s - 0.1, why
    lost_s = (braked - idle_s if braked > idle_s + 0.1 else 0.0) + (early if early > 0.1 else 0.0) + dropped
    if lost_s == 0.0:
        assert timed == pytest.approx(1.25, abs=0.15), why
    else:
        assert 1.25 - 0.5 * lost_s - 0.15 <= timed < 1.25 + 0.15, why
    assert "no cmd_vel for" in procs.log("bridge") and "braking" in procs.log("bridge")
    assert listener.odom[-1].pose.pose.position.x == pytest.approx(tl, abs=0.05)  # straight ahead
    frames = [(t, m) for t, m in listener.images if t > t0]
    assert frames[-1][1].encoding == "rgb8" and (frames[-1][1].height, frames[-1][1].width) == (224, 224)
    stamps = [stamp_s(m) for _t, m in frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))  # each frame is a new simulated instant
    # The camera kept publishing all along (10 Hz configured). Only continuity is checked here:
    # the achieved rate is a benchmark figure (vila-nav bench-ros), and a 2-core CI machine
    # under load has stalled this process for over a second (4.9 Hz measured over the run).
    rate = (len(frames) - 1) / (frames[-1][0] - frames[0][0])
    assert len(frames) >= 5 and rate > 2.0, (len(frames), rate)
