"""Pose conventions (pure): Habitat yaw/quaternions and the MiniWorld heading mapping."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vila_nav.envs.pose import forward_vector, heading_of, miniworld_dir, quat_to_yaw, wrap_angle, yaw_to_quat

angles = st.floats(min_value=-math.pi + 1e-6, max_value=math.pi - 1e-6, allow_nan=False)


@given(angles)
def test_quaternion_round_trip(yaw):
    q = yaw_to_quat(yaw)
    assert q[0] == 0 and q[2] == 0 and np.linalg.norm(q) == pytest.approx(1.0)
    assert wrap_angle(quat_to_yaw(q) - yaw) == pytest.approx(0.0, abs=1e-9)
    assert quat_to_yaw(-q) == pytest.approx(quat_to_yaw(q), abs=1e-9)  # q and -q: the same rotation


@given(angles)
def test_forward_is_the_rotated_minus_z_axis(yaw):
    # rotate (0, 0, -1) about +Y by yaw: x' = -sin(yaw), z' = -cos(yaw)
    assert np.allclose(forward_vector(yaw), [-math.sin(yaw), -math.cos(yaw)])
    f = forward_vector(yaw)
    assert wrap_angle(heading_of(*f) - yaw) == pytest.approx(0.0, abs=1e-9)


@given(angles)
def test_miniworld_heading_mapping(yaw):
    d = miniworld_dir(yaw)
    miniworld_forward = np.array([math.cos(d), -math.sin(d)])  # MiniWorld Entity.dir_vec (x, z)
    assert np.allclose(miniworld_forward, forward_vector(yaw))


def test_left_is_positive():
    assert np.allclose(forward_vector(0.0), [0, -1])
    assert np.allclose(forward_vector(math.pi / 2), [-1, 0])  # turning left from -Z faces -X
    # published R2R start rotation [0, 0.6199, 0, -0.7847] is a pure yaw
    yaw = quat_to_yaw([0, 0.6198966754439885, 0, -0.7846834468583432])
    assert np.allclose(np.abs(yaw_to_quat(yaw)), [0, 0.6198966754439885, 0, 0.7846834468583432], atol=1e-9)


def test_bad_quaternion():
    with pytest.raises(ValueError, match="quaternion"):
        quat_to_yaw([0, 0, 0, 0])
