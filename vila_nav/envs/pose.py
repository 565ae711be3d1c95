"""Agent pose conventions (pure numpy).

Habitat (and VLN-CE episode files): Y up, the agent faces -Z at identity rotation, quaternions
are [x, y, z, w]; a pure heading is a yaw `t` about +Y with quaternion [0, sin(t/2), 0, cos(t/2)].
Positive yaw turns left (counter-clockwise seen from above), like ROS's positive angular z.
At yaw t the agent faces (x, z) = (-sin t, -cos t).

MiniWorld keeps an angle `dir` with forward (cos dir, 0, -sin dir). Equating the two forward
vectors gives dir = t + pi/2 (both grow when turning left).
"""
from __future__ import annotations

import math

import numpy as np


def wrap_angle(a: float) -> float:
    """Angle wrapped to [-pi, pi) (rad)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def yaw_to_quat(yaw: float) -> np.ndarray:
    """Yaw about +Y (rad) -> quaternion [x, y, z, w] (4,)."""
    return np.array([0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2)])


def quat_to_yaw(q: np.ndarray | list[float] | tuple[float, ...]) -> float:
    """Quaternion [x, y, z, w] -> heading yaw (rad): the direction the rotated -Z axis points to
    on the ground plane (tilt is ignored). Raises ValueError for a zero or non-finite quaternion."""
    x, y, z, w = (float(v) for v in q)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError(f"not a rotation quaternion [x, y, z, w]: {list(q)}")
    x, y, z, w = x / n, y / n, z / n, w / n
    # forward = R(q) (0, 0, -1) = -(third column of R)
    fx = -2 * (x * z + w * y)
    fz = -(1 - 2 * (x * x + y * y))
    return math.atan2(-fx, -fz)


def forward_vector(yaw: float) -> np.ndarray:
    """Unit (x, z) direction the agent faces at `yaw` (rad), shape (2,)."""
    return np.array([-math.sin(yaw), -math.cos(yaw)])


def heading_of(dx: float, dz: float) -> float:
    """Yaw (rad) whose forward vector points along (dx, dz)."""
    return math.atan2(-dx, -dz)


def bearing(dx: float, dz: float, yaw: float) -> float:
    """Angle (rad, in [-pi, pi)) from the heading `yaw` to the direction (dx, dz); + = to the left."""
    return wrap_angle(heading_of(dx, dz) - yaw)


def miniworld_dir(yaw: float) -> float:
    """MiniWorld agent.dir (rad) for a Habitat yaw (rad)."""
    return yaw + math.pi / 2
