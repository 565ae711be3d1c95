"""vila_nav_node: camera + instruction in, cmd_vel at a fixed rate out, the VLM on its own thread.

    ros2 run vila_nav vila_nav_node --ros-args --params-file config/robot.yaml

Callbacks only convert messages and delegate to NavigationSession (session.py), which holds the
logic. Threads: the cmd_vel timer and the e-stop subscription in one callback group (an e-stop
publishes zero at once, never waiting behind camera work), the other subscriptions and the status
timer in another, both on a MultiThreadedExecutor; the model on the InferenceWorker thread; a
wall-clock watchdog thread that publishes zero when the ROS timer stops ticking (CPU starvation,
or use_sim_time without /clock). All timing uses the steady clock; message stamps use the ROS
clock. `load` (optional) replaces the loader of the model named by the parameters, for programs
that embed the node with a model they built themselves.
"""
from __future__ import annotations

import functools
import threading
import time
import traceback
from typing import Any, Callable

import cv2
import numpy as np

from vila_nav.controller import Command
from vila_nav.ros import params
from vila_nav.ros.image import ImageError, compressed_to_rgb, image_to_rgb
from vila_nav.ros.messages import make_twist, twist_type
from vila_nav.ros.model_loader import load_model
from vila_nav.ros.node_config import NodeConfig
from vila_nav.ros.runtime import require_rclpy, run_node
from vila_nav.ros.session import NavigationSession
from vila_nav.ros.worker import InferenceWorker

rclpy = require_rclpy()
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402

NODE_NAME = "vila_nav_node"
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def overrides(values: dict[str, Any]) -> list[Parameter]:
    """{"camera.timeout_s": 0.5, ...} -> rclpy Parameters for Node(parameter_overrides=...)."""
    return [Parameter(k, value=list(v) if isinstance(v, tuple) else v) for k, v in values.items()]


class VilaNavNode(Node):
    """The ROS shell around NavigationSession (see the module docstring)."""

    def __init__(self, *, load: Callable[[], Any] | None = None, clock: Callable[[], float] = time.monotonic, **node_kwargs):
        super().__init__(NODE_NAME, **node_kwargs)
        try:
            params.declare(self, NodeConfig())
            self.cfg = params.read(self, NodeConfig)
        except Exception:
            self.destroy_node()
            raise
        self._now = clock
        self.session = NavigationSession(self.cfg)
        self._period = 1.0 / self.cfg.cmd_vel.rate_hz  # s
        self._stall_s = self.cfg.cmd_vel.stall_periods * self._period  # s without a tick = a stall
        self._last_tick = clock()
        self._status_version = -1
        self._pub_lock = threading.Lock()
        control = MutuallyExclusiveCallbackGroup()  # cmd_vel timer + e-stop: never blocked by inputs
        inputs = MutuallyExclusiveCallbackGroup()

        cfg = self.cfg
        self._cmd_pub = self.create_publisher(twist_type(cfg.cmd_vel.stamped), cfg.cmd_vel.topic, 10)
        self._status_pub = self.create_publisher(String, cfg.topics.status, LATCHED)
        self._action_pub = self.create_publisher(String, cfg.topics.action, RELIABLE)
        msg_type = CompressedImage if cfg.camera.type == "compressed" else Image
        for topic in cfg.camera.topics:
            self.create_subscription(msg_type, topic, functools.partial(self._on_camera, topic),
                                     qos_profile_sensor_data, callback_group=inputs)
        self.create_subscription(String, cfg.topics.instruction, self._on_instruction, LATCHED, callback_group=inputs)
        self.create_subscription(Bool, cfg.topics.estop, self._on_estop, RELIABLE, callback_group=control)
        self.create_timer(self._period, self._on_tick, callback_group=control)
        self.create_timer(1.0 / cfg.topics.status_rate_hz, self._on_status_timer, callback_group=inputs)

        self.worker = InferenceWorker(self.session, load or functools.partial(load_model, cfg.model),
                                      on_answer=self._on_answer, log=self._log, clock=clock)
        self._closing = threading.Event()
        self._watchdog = threading.Thread(target=self._wall_clock_watchdog, name="vila_nav-watchdog", daemon=True)
        self.worker.start()
        self._watchdog.start()
        self.get_logger().info(
            f"up: cameras {cfg.camera.topics} ({cfg.camera.type}, model sees {cfg.camera.model_camera}), "
            f"cmd_vel '{cfg.cmd_vel.topic}' ({'TwistStamped' if cfg.cmd_vel.stamped else 'Twist'}) at "
            f"{cfg.cmd_vel.rate_hz:g} Hz, instruction '{cfg.topics.instruction}'; loading the model")

    # --- callbacks: convert and delegate -----------------------------------------------------
    def _on_camera(self, topic: str, msg) -> None:
        try:
            frame = self._to_frame(topic, msg) if topic == self.session.model_camera else None
            if frame is not None or topic != self.session.model_camera:
                self.session.on_frame(topic, frame, self._now())
        except Exception as exc:  # noqa: BLE001 - a bug ends the instruction, never the node
            self._internal_error(f"the camera callback ({topic})", exc)

    def _on_instruction(self, msg: String) -> None:
        self.get_logger().info(f"instruction: {msg.data!r}")
        try:
            self.session.on_instruction(msg.data, self._now())
        except Exception as exc:  # noqa: BLE001
            self._internal_error("the instruction callback", exc)

    def _on_estop(self, msg: Bool) -> None:
        self.session.on_estop(bool(msg.data), self._now())
        self._on_tick()  # zero goes out now, not at the next timer period

    def _on_tick(self) -> None:
        now = self._now()
        late, self._last_tick = now - self._last_tick, now
        try:
            if late > self._stall_s:
                # This tick itself is late: the whole process stalled (descheduled, or the GIL held),
                # the wall-clock watchdog with it, so nobody reported the gap. Resuming the profile
                # here would jump past the acceleration limit after a gap that held the old command:
                # report the stall as the watchdog would (abort, decide again from a fresh view).
                self.session.on_stall(late, now)
            cmd = self.session.tick(now)
        except Exception as exc:  # noqa: BLE001 - a bug must never leave the last velocity standing
            cmd = self._internal_error("the cmd_vel tick", exc)
        self._publish_cmd(cmd)
        self._publish_status(now, only_if_changed=True)

    def _on_status_timer(self) -> None:
        self._publish_status(self._now(), only_if_changed=False)

    def _on_answer(self, query, text: str, latency_s: float) -> None:
        if self.session.expects(query.qid):
            self._action_pub.publish(String(data=text))
            self.get_logger().info(f"model ({latency_s:.2f} s): {text!r}")

    # --- helpers -----------------------------------------------------------------------------
    def _to_frame(self, topic: str, msg) -> np.ndarray | None:
        """Message -> resized RGB frame, or None (logged, throttled) for a bad image."""
        try:
            rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
        except ImageError as exc:
            self.get_logger().warning(f"skipping bad image on {topic}: {exc}", throttle_duration_sec=2.0)
            return None
        except Exception as exc:  # noqa: BLE001 - a malformed message must never kill the node
            self.get_logger().error(f"skipping unreadable image on {topic}: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=2.0)
            return None
        w, h = self.cfg.camera.width, self.cfg.camera.height
        if not w:  # keep the camera's size, but one size per instruction (the history needs it)
            shape = self.session.frame_shape
            h, w = shape[:2] if shape is not None else rgb.shape[:2]
        if (rgb.shape[1], rgb.shape[0]) != (w, h):
            interp = cv2.INTER_AREA if rgb.shape[1] > w else cv2.INTER_CUBIC
            rgb = cv2.resize(rgb, (w, h), interpolation=interp)
        return rgb

    def _publish_cmd(self, cmd: Command) -> None:
        if not self.context.ok():
            return
        with self._pub_lock:
            stamp = self.get_clock().now().to_msg() if self.cfg.cmd_vel.stamped else None
            self._cmd_pub.publish(make_twist(cmd.linear, cmd.angular, stamped=self.cfg.cmd_vel.stamped,
                                             frame_id=self.cfg.cmd_vel.frame_id, stamp=stamp))

    def _publish_status(self, now: float, only_if_changed: bool) -> None:
        version = self.session.version
        if (only_if_changed and version == self._status_version) or not self.context.ok():
            return
        self._status_version = version
        self._status_pub.publish(String(data=self.session.status(now).to_json()))

    def _internal_error(self, where: str, exc: Exception) -> Command:
        """A callback raised: log it with its traceback, stop the instruction (status reason),
        return zero velocity. (The e-stop callback is not guarded: if latching fails, the node
        exits, publishing zero on the way out, rather than run on without the latch.)"""
        error = f"{type(exc).__name__}: {exc}"
        self.get_logger().error(f"internal error in {where}, publishing zero: {error}\n{traceback.format_exc()}",
                                throttle_duration_sec=2.0)
        try:
            self.session.on_internal_error(where, error, self._now())
        except Exception:  # noqa: BLE001 - the session itself is broken: zero still goes out
            pass
        return Command(0.0, 0.0, f"internal error in {where}")

    def _log(self, level: str, message: str) -> None:
        getattr(self.get_logger(), {"warn": "warning"}.get(level, level))(message)

    def _wall_clock_watchdog(self) -> None:
        """Backup for the ROS timer: zero (and a status reason) if it stops ticking."""
        while not self._closing.wait(self._period):
            now = self._now()
            stalled = now - self._last_tick
            if stalled > self._stall_s:
                self.session.on_stall(stalled, now)
                self._publish_cmd(Command(0.0, 0.0, "timer stalled"))
                self._publish_status(now, only_if_changed=True)

    def close(self) -> None:
        """Stop the threads and publish zero velocity (call before destroy_node)."""
        self._closing.set()
        self.session.on_shutdown(self._now())  # the commander holds zero from now on
        for _ in range(3):
            self._publish_cmd(Command(0.0, 0.0, "shutdown"))
        self._publish_status(self._now(), only_if_changed=False)
        self.worker.stop(timeout=0.5)
        self._watchdog.join(timeout=1.0)


def main(argv: list[str] | None = None) -> int:
    """Console script `vila_nav_node` (what `ros2 run vila_nav vila_nav_node` starts)."""
    return run_node(lambda context: VilaNavNode(context=context), NODE_NAME, argv, num_threads=4)


if __name__ == "__main__":
    raise SystemExit(main())
