"""vila_nav_sim_bridge: a VLN-CE episode in the embedded simulator, as a ROS robot.

    ros2 run vila_nav vila_nav_sim_bridge --ros-args -p episode.episode_id:=4 -p episode.auto_instruct:=true

cmd_vel (Twist or TwistStamped) in; camera (sensor_msgs/Image rgb8) at a fixed rate, odometry
(nav_msgs/Odometry, relative to the start pose, REP-103 axes) and /clock out. Motion is
continuous: each physics tick moves the agent by the commanded velocity for the elapsed time,
sliding along walls (the simulator's `move`). A cmd_vel older than rates.cmd_timeout_s counts
as zero. Each physics sub-step uses the cmd_vel in force at its own time (a late tick replays
the commands as the node sent them, see command_timeline). The episode ends by the rules of
EpisodeMonitor (the node's status done/stopped, else idling after motion, else the time
limit); then the robot is frozen, and the result (VLN-CE metrics as JSON) is published on
vila_nav/sim/episode_result (transient local) and logged.
A std_msgs/String on vila_nav/sim/reset starts an episode again (its id, or '' for the same).

The simulator lives on one thread of its own (OpenGL contexts belong to a thread): it creates
the environment, steps it at rates.physics_hz, renders at rates.camera_hz and publishes; ROS
callbacks only store the newest inputs. Simulated time advances by the measured wall time of
each tick (a late tick catches up in sub-steps; the part of a gap over MAX_CATCH_UP_S is not
simulated, and the result's sim_dropped_s adds it up), so it runs in real time and /clock
(starting at the wall time of start-up) matches it, less any dropped time. The result's
cmd_vel_braked_s is the simulated time the robot braked because cmd_vel went quiet while it
was moving (a slow or starved node: the robot covered less than it was told). Where rclpy gives
callbacks the middleware's timestamps (MessageInfo, rclpy >= Iron), a cmd_vel comes into force at
its send time; cmd_vel_late_s is then the most any cmd_vel reached the simulator after it had
simulated past that time (a starved bridge: motion lost to late delivery; null on Humble, where
commands come into force when received).
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from vila_nav.ros import params
from vila_nav.ros.bridge_config import BridgeConfig
from vila_nav.ros.command_timeline import CommandTimeline, send_time
from vila_nav.ros.episode_monitor import EpisodeMonitor
from vila_nav.ros.image import fill_image
from vila_nav.ros.messages import twist_type, twist_values, yaw_to_quaternion
from vila_nav.ros.runtime import require_rclpy, run_node
from vila_nav.ros.status import Status

rclpy = require_rclpy()
from builtin_interfaces.msg import Time  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

try:  # rclpy >= Iron passes a two-parameter callback the message's timestamps; Humble's has no MessageInfo
    from rclpy.subscription import MessageInfo  # noqa: E402, F401

    HAS_MESSAGE_INFO = True
except ImportError:
    HAS_MESSAGE_INFO = False

NODE_NAME = "vila_nav_sim_bridge"
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
CAMERA_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)  # matches reliable and best-effort readers
MAX_CATCH_UP_S = 2.0  # s of wall time one late tick may replay; a longer gap is dropped from simulated time


def habitat_to_odom(position, yaw: float, start_position, start_yaw: float) -> tuple[float, float, float]:
    """Habitat pose (Y up, facing -Z at yaw 0) -> (x forward m, y left m, theta rad) in the start frame."""
    d = np.asarray(position, dtype=float) - np.asarray(start_position, dtype=float)
    fwd = np.array([-math.sin(start_yaw), -math.cos(start_yaw)])  # (x, z) unit vector the start faces
    left = np.array([-math.cos(start_yaw), math.sin(start_yaw)])
    dxz = np.array([d[0], d[2]])
    theta = (yaw - start_yaw + math.pi) % (2 * math.pi) - math.pi
    return float(dxz @ fwd), float(dxz @ left), float(theta)


def default_dataset() -> Path:
    """The R2R-format episodes shipped with the package (sim/episodes/r2r)."""
    from vila_nav.paths import sim_dir

    return sim_dir() / "episodes" / "r2r"


def _stamp(seconds: float) -> Time:
    sec = int(math.floor(seconds))
    return Time(sec=sec, nanosec=int((seconds - sec) * 1e9))


class SimBridge(Node):
    """The simulator as a ROS robot (see the module docstring)."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        try:
            params.declare(self, BridgeConfig())
            self.cfg = params.read(self, BridgeConfig)
        except Exception:
            self.destroy_node()
            raise
        t = self.cfg.topics
        self._lock = threading.Lock()
        self._commands = CommandTimeline()  # cmd_vel with its steady receive time
        self._statuses: deque[Status] = deque(maxlen=64)
        self._reset: str | None = None
        self._closing = threading.Event()
        self.ready = threading.Event()  # set once the first episode runs
        self.error = ""  # why the simulator could not start
        self.results: list[dict] = []

        self._camera_pub = self.create_publisher(Image, t.camera, CAMERA_QOS)
        self._odom_pub = self.create_publisher(Odometry, t.odom, RELIABLE)
        self._clock_pub = self.create_publisher(Clock, "/clock", RELIABLE) if self.cfg.rates.publish_clock else None
        self._episode_pub = self.create_publisher(String, t.episode, LATCHED)
        self._result_pub = self.create_publisher(String, t.result, LATCHED)
        self._instruction_pub = self.create_publisher(String, t.instruction, LATCHED)
        on_cmd_vel = self._on_cmd_vel_sent if HAS_MESSAGE_INFO else self._on_cmd_vel
        self.create_subscription(twist_type(t.cmd_vel_stamped), t.cmd_vel, on_cmd_vel, RELIABLE)
        self.create_subscription(String, t.status, self._on_status, LATCHED)
        self.create_subscription(String, t.reset, self._on_reset, RELIABLE)
        self._thread = threading.Thread(target=self._run, name="vila_nav-sim", daemon=True)
        self._thread.start()

    # --- callbacks: store the newest input ---------------------------------------------------
    def _on_cmd_vel(self, msg) -> None:
        """In force from its receipt (no send time: Humble)."""
        self._commands.push(*twist_values(msg), time.monotonic())

    def _on_cmd_vel_sent(self, msg, info) -> None:
        """In force from its send time: a burst that waited in a starved executor's queue still
        drives each sub-step with what the node sent then (info: rclpy's MessageInfo)."""
        received, now_ns = time.monotonic(), time.time_ns()
        self._commands.push(*twist_values(msg), send_time(received, int(info.get("source_timestamp") or 0), now_ns))

    def _on_status(self, msg: String) -> None:
        try:
            st = Status.from_json(msg.data)
        except (ValueError, TypeError) as exc:
            self.get_logger().warning(f"ignoring malformed status: {exc}", throttle_duration_sec=5.0)
            return
        with self._lock:
            self._statuses.append(st)

    def _on_reset(self, msg: String) -> None:
        with self._lock:
            self._reset = msg.data.strip()

    # --- the simulator thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            from vila_nav.envs import make_env

            self.episodes = self._load_episodes()
            self.env = make_env(self.cfg.sim)
            self._start_episode(self.cfg.episode.episode_id)
        except Exception as exc:  # noqa: BLE001 - reported on the log and the result topic
            self.error = f"{type(exc).__name__}: {exc}"
            self.get_logger().fatal(f"simulator failed to start: {self.error}")
            self._result_pub.publish(String(data=json.dumps({"error": self.error})))
            return
        self.ready.set()
        rates = self.cfg.rates
        period, cam_period = 1.0 / rates.physics_hz, 1.0 / rates.camera_hz
        last = next_tick = next_frame = time.monotonic()
        try:
            while not self._closing.is_set():
                now = time.monotonic()
                # Simulated time follows the wall clock: a late tick (a loaded CPU) catches up in
                # sub-steps of at most one period, each judged at its own time, so the robot covers
                # what it was commanded to and brakes where a real base would: cmd_timeout_s after
                # the newest cmd_vel. A gap over MAX_CATCH_UP_S (a suspended process) is dropped
                # (only its last MAX_CATCH_UP_S is replayed; sim_dropped_s counts the rest).
                gap = now - last
                if gap > MAX_CATCH_UP_S:
                    self._note_dropped(gap - MAX_CATCH_UP_S)
                elapsed = min(gap, MAX_CATCH_UP_S)
                substeps = max(1, math.ceil(elapsed / period - 1e-9))
                dt = elapsed / substeps  # s of simulated time per sub-step
                for i in range(substeps):
                    self._step(dt, now - elapsed + (i + 1) * dt)
                last = now
                if now >= next_frame:
                    self._publish_camera()
                    next_frame = max(next_frame + cam_period, now)
                next_tick += period
                delay = next_tick - time.monotonic()
                if delay > 0:
                    self._closing.wait(delay)
                else:
                    next_tick = time.monotonic()  # behind: do not try to catch up
        finally:
            self.env.close()

    def _note_dropped(self, gap_s: float) -> None:
        """The simulator thread ran `gap_s` s past what one tick may replay: that wall time is
        not simulated (the robot neither moves nor brakes in it), and the result says so."""
        self._dropped_s += gap_s
        self.get_logger().warning(
            f"simulator thread stalled {gap_s + MAX_CATCH_UP_S:.2f} s: the {gap_s:.2f} s over "
            f"{MAX_CATCH_UP_S:g} s are not simulated (sim_dropped_s)", throttle_duration_sec=2.0)

    def _load_episodes(self) -> dict:
        from vila_nav.episodes import load_r2r

        ep = self.cfg.episode
        path = Path(ep.dataset_path).expanduser() if ep.dataset_path else default_dataset()
        episodes = load_r2r(path, ep.split)
        if not episodes:
            raise ValueError(f"no episodes in {path} split {ep.split}")
        return {e.episode_id: e for e in episodes}

    def _start_episode(self, episode_id: str) -> None:
        """Reset the simulator to `episode_id` ('' = the first one) and start monitoring."""
        if episode_id and episode_id not in self.episodes:
            raise KeyError(f"episode '{episode_id}' not in the split (first ids: {sorted(self.episodes)[:10]})")
        self.episode = self.episodes[episode_id] if episode_id else next(iter(self.episodes.values()))
        from vila_nav.envs.pose import quat_to_yaw

        self.env.reset(self.episode)
        self._sim_t = time.time()  # simulated clock (s), starts at the wall time
        self._start_pos = np.asarray(self.env.position, dtype=float)
        self._start_yaw = quat_to_yaw(self.env.rotation)
        self._goal = np.asarray(self.episode.goal.position, dtype=float)
        gt = self.episode.gt
        reference = gt.locations if gt is not None and gt.locations else self.episode.reference_path
        self.monitor = EpisodeMonitor(
            self._sim_t, self._start_pos, self.env.geodesic_distance(self._start_pos, self._goal), reference,
            max_time_s=self.cfg.episode.max_time_s, idle_stop_s=self.cfg.episode.idle_stop_s,
            success_distance=self.cfg.sim.success_distance_m, min_step_m=self.cfg.sim.forward_step_m,
        )
        self._commands.reset()
        with self._lock:
            self._statuses.clear()
        self._braked_s = 0.0  # s of simulated time braked because cmd_vel went quiet in motion
        self._dropped_s = 0.0  # s of wall time not simulated (simulator-thread stalls over MAX_CATCH_UP_S)
        info = {
            "episode_id": self.episode.episode_id,
            "scene_id": self.episode.scene_id,
            "instruction": self.episode.instruction.text,
            "start_position": list(map(float, self._start_pos)),
            "goal_position": list(map(float, self._goal)),
            "geodesic_distance_m": self.monitor.distances[0],
        }
        self._episode_pub.publish(String(data=json.dumps(info)))
        self.get_logger().info(f"episode {info['episode_id']} ({info['scene_id']}): {info['instruction']!r}")
        if self.cfg.episode.auto_instruct:
            self._instruction_pub.publish(String(data=self.episode.instruction.text))

    def _step(self, dt: float, now: float) -> None:
        """One physics tick of `dt` simulated s, ending at steady time `now` (s)."""
        with self._lock:
            reset, self._reset = self._reset, None
            statuses = list(self._statuses)
            self._statuses.clear()
        if reset is not None:
            try:
                self._start_episode(reset or self.episode.episode_id)
            except KeyError as exc:
                self.get_logger().error(str(exc))
            return
        # The command in force at the middle of this sub-step: a replayed late tick drives each
        # sub-step with what the node was asking for then, so a stall neither adds nor loses motion.
        mid = now - 0.5 * dt
        v, w, heard = self._commands.at(mid)
        ended = self.monitor.end is not None
        if ended:
            v, w = 0.0, 0.0  # frozen after the end
        elif mid - heard > self.cfg.rates.cmd_timeout_s and (v or w):
            v, w = 0.0, 0.0  # cmd_vel went quiet in motion: brake, and say so in the result
            self._braked_s += dt
            self.get_logger().warning(
                f"no cmd_vel for {mid - heard:.2f} s (> rates.cmd_timeout_s {self.cfg.rates.cmd_timeout_s}): braking",
                throttle_duration_sec=2.0)
        if v or w:
            self.env.move(v, w, dt)
        self._sim_t += dt
        if self._clock_pub is not None:
            self._clock_pub.publish(Clock(clock=_stamp(self._sim_t)))
        pos = np.asarray(self.env.position, dtype=float)
        self._publish_odom(pos, v, w)
        if ended:
            return
        for st in statuses:
            self.monitor.on_status(st, self._sim_t)
        dist = self.env.geodesic_distance(pos, self._goal)
        self.monitor.on_motion(pos, dist, v, w, self._sim_t)
        if self.monitor.check(self._sim_t, pos, dist) is not None:
            self._finish()

    def _finish(self) -> None:
        result = self.monitor.result(self.episode.episode_id, self.episode.instruction.text)
        result["cmd_vel_braked_s"] = round(self._braked_s, 3)
        result["cmd_vel_late_s"] = round(self._commands.late_max_s, 3) if HAS_MESSAGE_INFO else None
        result["sim_dropped_s"] = round(self._dropped_s, 3)
        self.results.append(result)
        self._result_pub.publish(String(data=json.dumps(result)))
        m = result["metrics"]
        self.get_logger().info(
            f"episode {result['episode_id']} ended: {result['end_reason']}; "
            + ", ".join(f"{k.upper()} {v:.3f}" if v is not None else f"{k.upper()} n/a" for k, v in m.items())
        )
        if self.cfg.episode.auto_instruct and not result["end_reason"].startswith("the node finished"):
            self._instruction_pub.publish(String(data=""))  # the episode is over: cancel the instruction

    def _publish_camera(self) -> None:
        msg = fill_image(Image(), np.ascontiguousarray(self.env.observe()))
        msg.header.stamp = _stamp(self._sim_t)
        msg.header.frame_id = self.cfg.topics.camera_frame
        self._camera_pub.publish(msg)

    def _publish_odom(self, pos: np.ndarray, v: float, w: float) -> None:
        from vila_nav.envs.pose import quat_to_yaw

        x, y, theta = habitat_to_odom(pos, quat_to_yaw(self.env.rotation), self._start_pos, self._start_yaw)
        msg = Odometry()
        msg.header.stamp = _stamp(self._sim_t)
        msg.header.frame_id = self.cfg.topics.odom_frame
        msg.child_frame_id = self.cfg.topics.base_frame
        msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
        q = yaw_to_quaternion(theta)
        o = msg.pose.pose.orientation
        o.x, o.y, o.z, o.w = q
        msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(v), float(w)
        self._odom_pub.publish(msg)

    def close(self) -> None:
        """Stop the simulator thread (call before destroy_node)."""
        self._closing.set()
        self._thread.join(timeout=5.0)


def main(argv: list[str] | None = None) -> int:
    """Console script `vila_nav_sim_bridge`."""
    return run_node(lambda context: SimBridge(context=context), NODE_NAME, argv, num_threads=2)


if __name__ == "__main__":
    raise SystemExit(main())
