"""Which named objects the camera sees (vila_nav.scenes.visibility): field of view, range, walls
and doorways on a hand-built two-room scene, and the simulator's method on a shipped scene."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vila_nav.scenes.collision import wall_segments
from vila_nav.scenes.spec import SceneSpec
from vila_nav.scenes.visibility import sight_blocked, visible_objects

FACING_PLUS_X = -math.pi / 2  # Habitat yaw whose forward vector is (x, z) = (1, 0)


def _obj(i: int, name: str, room: str, x: float, z: float, size: float = 0.5) -> dict:
    kind = name.split(" ", 1)[-1]
    return {"object_id": f"o{i}", "kind": kind, "color": name.split(" ")[0], "name": name, "room_id": room,
            "position": [x, z], "yaw_deg": 0.0, "size": [size, size, size], "shape": "box"}


@pytest.fixture(scope="module")
def scene() -> SceneSpec:
    """Two 4 x 4 m rooms side by side (x 0-4 and 4-8), a doorway at x = 4 for z in [1.5, 2.5]."""
    return SceneSpec.from_dict({
        "schema_version": 1, "scene_id": "two_rooms", "seed": 0, "generator": "tests", "wall_height": 2.5,
        "rooms": [{"room_id": "r0", "kind": "office", "min_x": 0, "max_x": 4, "min_z": 0, "max_z": 4},
                  {"room_id": "r1", "kind": "kitchen", "min_x": 4, "max_x": 8, "min_z": 0, "max_z": 4}],
        "doors": [{"door_id": "d0", "rooms": ["r0", "r1"], "axis": "z", "line": 4.0, "lo": 1.5, "hi": 2.5, "height": 2.1}],
        "objects": [
            _obj(0, "red box", "r0", 3.5, 2.0),  # 1.5 m straight ahead
            _obj(1, "blue box", "r0", 0.5, 2.0),  # behind the camera
            _obj(2, "green box", "r0", 3.0, 3.8),  # ahead but 61 deg to the right: outside a 90 deg view
            _obj(3, "black stove", "r1", 6.0, 2.0),  # 4 m ahead, through the doorway
            _obj(4, "yellow box", "r1", 6.0, 0.5),  # in the field of view, behind the wall beside the door
            _obj(5, "white box", "r1", 7.5, 2.0),  # behind the stove: objects do not hide each other
        ],
    })


def test_field_of_view_range_walls_and_doorways(scene):
    walls = wall_segments(scene)
    seen = visible_objects(scene, walls, 2.0, 2.0, FACING_PLUS_X, 90.0)
    # through the open doorway too; nothing behind the camera, beside the view or behind a wall
    assert seen == {"red box": 1.5, "black stove": 4.0, "white box": 5.5}
    assert visible_objects(scene, walls, 2.0, 2.0, FACING_PLUS_X, 90.0, max_range_m=3.0) == {"red box": 1.5}
    # A wider view takes in the green box; turning around shows the blue one instead.
    assert "green box" in visible_objects(scene, walls, 2.0, 2.0, FACING_PLUS_X, 150.0)
    assert visible_objects(scene, walls, 2.0, 2.0, math.pi / 2, 90.0) == {"blue box": 1.5}
    # From inside the second room the yellow box is in plain sight.
    assert visible_objects(scene, walls, 5.0, 2.0, FACING_PLUS_X, 120.0)["yellow box"] == pytest.approx(math.hypot(1, 1.5), abs=0.01)
    with pytest.raises(ValueError, match="max_range_m"):
        visible_objects(scene, walls, 2.0, 2.0, 0.0, 90.0, max_range_m=0.0)


def test_sight_lines_cross_walls_only_properly():
    walls = np.array([[[1.0, -1.0], [1.0, 1.0]]])  # a wall along x = 1
    points = np.array([[2.0, 0.0], [0.5, 0.0], [2.0, 5.0], [1.0, 0.0]])
    # through the wall / short of it / past its end / ending on it (touching does not block)
    assert sight_blocked(np.zeros(2), points, walls).tolist() == [True, False, False, False]
    assert sight_blocked(np.zeros(2), points, walls[:0]).tolist() == [False] * 4


def test_simulator_reports_the_objects_of_its_current_view():
    """MiniWorldNavEnv.visible_objects is the pure function at the agent's pose, and follows it."""
    from vila_nav.envs import SimConfig, make_env
    from vila_nav.envs.pose import yaw_to_quat

    with make_env(SimConfig()) as env:
        scene = env.load_scene("house_0048")
        x, z = scene.spec.objects[0].position  # stand 2 m in front of the fridge (its front faces +x)
        env.set_pose(np.array([x + 2.0, 0.0, z]), yaw_to_quat(math.pi / 2))  # facing -x, towards it
        seen = env.visible_objects()
        assert seen == visible_objects(scene.spec, wall_segments(scene.spec), x + 2.0, z, math.pi / 2, 90.0)
        assert seen[scene.spec.objects[0].name] == pytest.approx(2.0, abs=0.01)
        env.set_pose(np.array([x + 2.0, 0.0, z]), yaw_to_quat(-math.pi / 2))  # turned away
        assert scene.spec.objects[0].name not in env.visible_objects()
