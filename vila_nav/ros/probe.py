"""Probe: a test-side ROS node that plays the robot around vila_nav_node (tests, benchmark).

It publishes camera frames (on its own thread, at a fixed rate), instructions and e-stops, and
records every cmd_vel (receive time, linear, angular), status and action message, so tests and
`vila-nav bench-ros` can measure what a robot would see. Imports rclpy.
"""
from __future__ import annotations

import itertools
import math
import threading
import time
from typing import Callable

import numpy as np

from vila_nav.ros.image import fill_compressed, fill_image
from vila_nav.ros.messages import twist_type, twist_values
from vila_nav.ros.runtime import require_rclpy
from vila_nav.ros.status import Status

rclpy = require_rclpy()
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
_names = itertools.count()


class Probe(Node):
    """Camera/instruction/e-stop publisher and cmd_vel/status/action recorder."""

    def __init__(self, *, camera_topics=("camera/image_raw",), compressed: bool = False, stamped: bool = False,
                 cmd_vel: str = "cmd_vel", **node_kwargs) -> None:
        super().__init__(f"vila_nav_probe_{next(_names)}", **node_kwargs)
        self._lock = threading.Lock()
        self.cmds: list[tuple[float, float, float]] = []  # (steady receive time s, linear m/s, angular rad/s)
        self.cmd_msgs: list = []
        self.statuses: list[tuple[float, Status]] = []
        self.actions: list[str] = []
        self.compressed = compressed
        msg_type = CompressedImage if compressed else Image
        self.camera_pubs = {t: self.create_publisher(msg_type, t, RELIABLE) for t in camera_topics}
        self.instruction_pub = self.create_publisher(String, "vila_nav/instruction", LATCHED)
        self.estop_pub = self.create_publisher(Bool, "vila_nav/estop", RELIABLE)
        self.create_subscription(twist_type(stamped), cmd_vel, self._on_cmd, RELIABLE)
        self.create_subscription(String, "vila_nav/status", self._on_status, LATCHED)
        self.create_subscription(String, "vila_nav/action", lambda m: self.actions.append(m.data), RELIABLE)
        self._camera_stop = threading.Event()
        self._camera_thread: threading.Thread | None = None

    # --- recording ---------------------------------------------------------------------------
    def _on_cmd(self, msg) -> None:
        v, w = twist_values(msg)
        with self._lock:
            self.cmds.append((time.monotonic(), v, w))
            self.cmd_msgs.append(msg)

    def _on_status(self, msg: String) -> None:
        st = Status.from_json(msg.data)
        with self._lock:
            self.statuses.append((time.monotonic(), st))

    @property
    def status(self) -> Status | None:
        with self._lock:
            return self.statuses[-1][1] if self.statuses else None

    def wait_status(self, pred: Callable[[Status], bool], timeout: float, after: float = 0.0) -> Status:
        """Block until a status received after `after` (steady s) satisfies `pred`; raises
        TimeoutError with the last one seen."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            with self._lock:
                new = [s for t, s in self.statuses[seen:] if t > after]
                seen = len(self.statuses)
            for st in new:
                if pred(st):
                    return st
            time.sleep(0.01)
        raise TimeoutError(f"no matching status within {timeout} s; last: {self.status}")

    def wait_cmd(self, pred: Callable[[float, float], bool], timeout: float, after: float = 0.0) -> float:
        """Steady time of the first cmd_vel received after `after` with pred(linear, angular)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                hits = [t for t, v, w in self.cmds if t > after and pred(v, w)]
            if hits:
                return hits[0]
            time.sleep(0.002)
        with self._lock:  # what a failure needs to tell a silent node from one that never matched
            n = sum(1 for t, _v, _w in self.cmds if t > after)
            last, st = self.cmds[-3:], self.statuses[-1] if self.statuses else None
        raise TimeoutError(f"no matching cmd_vel within {timeout} s ({n} received after {after:.3f}, now "
                           f"{time.monotonic():.3f}); last: {last}; last status "
                           f"{'none' if st is None else f'at {st[0]:.3f}: {st[1].summary()}'}")

    def wait_cmds(self, after: float, n: int, span_s: float, timeout: float) -> list[tuple[float, float, float]]:
        """The cmd_vel messages received after `after`, once there are at least `n` spread over at
        least `span_s` s. Waited for, not counted in a fixed window: a shared machine sometimes
        schedules a process over half a second late."""
        deadline = time.monotonic() + timeout
        while True:
            part = self.cmds_between(after, math.inf)
            if len(part) >= n and part[-1][0] - part[0][0] >= span_s:
                return part
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(part)} cmd_vel messages in {timeout} s after {after:.3f} "
                                   f"(wanted {n} over {span_s} s)")
            time.sleep(0.02)

    def cmds_between(self, t0: float, t1: float) -> list[tuple[float, float, float]]:
        with self._lock:
            return [c for c in self.cmds if t0 <= c[0] < t1]

    # --- publishing --------------------------------------------------------------------------
    def instruct(self, text: str) -> None:
        self.instruction_pub.publish(String(data=text))

    def estop(self, active: bool) -> None:
        self.estop_pub.publish(Bool(data=active))

    def publish_frame(self, rgb: np.ndarray, topic: str | None = None) -> None:
        msg = fill_compressed(CompressedImage(), rgb, "jpeg") if self.compressed else fill_image(Image(), rgb)
        msg.header.stamp = self.get_clock().now().to_msg()
        for t, pub in self.camera_pubs.items():
            if topic is None or t == topic:
                pub.publish(msg)

    def start_camera(self, rate_hz: float = 10.0, size: tuple[int, int] = (96, 128), topics=None) -> None:
        """Publish changing frames (H x W = size) at rate_hz on a thread until stop_camera()."""
        self.stop_camera()
        self._camera_stop = threading.Event()
        rng = np.random.default_rng(0)

        def run() -> None:
            while not self._camera_stop.wait(1.0 / rate_hz):
                frame = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
                for t in topics or self.camera_pubs:
                    self.publish_frame(frame, t)

        self._camera_thread = threading.Thread(target=run, name="probe-camera", daemon=True)
        self._camera_thread.start()

    def stop_camera(self) -> None:
        self._camera_stop.set()
        if self._camera_thread is not None:
            self._camera_thread.join(timeout=2.0)
            self._camera_thread = None
