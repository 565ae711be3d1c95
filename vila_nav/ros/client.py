"""A short-lived ROS client for the command-line tools (`vila-nav instruct`, `vila-nav status`).

Importing this module imports rclpy (raises RuntimeError(ROS_MISSING) when it is not there).
One node on its own context, spun in the caller's thread with spin_once.
"""
from __future__ import annotations

import time
from typing import Callable

from vila_nav.ros.runtime import init, require_rclpy, shutdown
from vila_nav.ros.status import Status

rclpy = require_rclpy()
from rclpy.duration import Duration  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import String  # noqa: E402

# Same QoS as the node's instruction subscription and status publisher.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class StatusFollower:
    """Keeps the newest parsed Status of a topic (malformed messages are counted, not raised)."""

    def __init__(self) -> None:
        self.latest: Status | None = None
        self.received = 0
        self.malformed = 0

    def __call__(self, msg: String) -> None:
        try:
            self.latest = Status.from_json(msg.data)
            self.received += 1
        except (ValueError, TypeError):
            self.malformed += 1


class Client:
    """`with Client(name, ros_args, namespace) as cli:` a node ready to publish and subscribe."""

    def __init__(self, name: str, ros_args: list[str] | None = None, namespace: str = "") -> None:
        self._ros_args = ros_args
        self._name = name
        self._namespace = namespace

    def __enter__(self) -> Client:
        self.context = init(self._ros_args, own_signals=True)
        self.node = rclpy.create_node(self._name, namespace=self._namespace or "", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        return self

    def __exit__(self, *exc) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        shutdown(self.context)

    def spin_once(self, timeout_s: float) -> None:
        self.executor.spin_once(timeout_sec=timeout_s)

    def wait_for(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Spin until `condition()` holds or `timeout_s` passes; returns the condition."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() >= deadline:
                return condition()
            self.spin_once(0.05)
        return True

    def follow_status(self, topic: str) -> StatusFollower:
        follower = StatusFollower()
        self.node.create_subscription(String, topic, follower, LATCHED)
        return follower

    def latched_publisher(self, topic: str):
        return self.node.create_publisher(String, topic, LATCHED)

    def publish_string(self, pub, text: str, timeout_s: float) -> bool:
        """Publish and wait until every matched subscriber has acknowledged it (reliable QoS)."""
        pub.publish(String(data=text))
        return bool(pub.wait_for_all_acked(Duration(seconds=timeout_s)))
