"""Velocity and odometry messages <-> plain numbers (Twist or TwistStamped, REP-103 axes).

Message classes are imported lazily so the helpers load without rclpy until used.
"""
from __future__ import annotations

import math


def twist_type(stamped: bool):
    """geometry_msgs TwistStamped (stamped) or Twist message class."""
    from geometry_msgs.msg import Twist, TwistStamped

    return TwistStamped if stamped else Twist


def make_twist(linear: float, angular: float, *, stamped: bool = False, frame_id: str = "", stamp=None):
    """A Twist (or TwistStamped with header stamp/frame_id) with linear.x m/s and angular.z rad/s."""
    msg = twist_type(stamped)()
    twist = msg.twist if stamped else msg
    twist.linear.x = float(linear)
    twist.angular.z = float(angular)
    if stamped:
        msg.header.frame_id = frame_id
        if stamp is not None:
            msg.header.stamp = stamp
    return msg


def twist_values(msg) -> tuple[float, float]:
    """(linear.x m/s, angular.z rad/s) of a Twist or TwistStamped; non-finite values become 0."""
    twist = getattr(msg, "twist", msg)
    v, w = float(twist.linear.x), float(twist.angular.z)
    return (v if math.isfinite(v) else 0.0, w if math.isfinite(w) else 0.0)


def yaw_to_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation by `yaw` rad about +z."""
    return (0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0))
