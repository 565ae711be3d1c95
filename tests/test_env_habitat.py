"""habitat backend: the clear missing-dependency error and its pure parts (habitat-sim is not
installable here)."""
from __future__ import annotations

import importlib.util

import pytest

from vila_nav.envs import SimConfig, make_env
from vila_nav.envs.habitat_env import HABITAT_ACTIONS, resolve_scene_path, sensor_settings
from vila_nav.envs.nav_env import ACTION_NAMES, action_name

HAVE_HABITAT = importlib.util.find_spec("habitat_sim") is not None


@pytest.mark.skipif(HAVE_HABITAT, reason="habitat-sim is installed")
def test_missing_habitat_sim_names_what_to_install():
    with pytest.raises(ImportError) as info:
        make_env(SimConfig(backend="habitat"))
    msg = str(info.value)
    assert "habitat-sim" in msg and "conda install habitat-sim" in msg and "backend=miniworld" in msg


def test_sensor_settings_follow_the_config():
    s = sensor_settings(SimConfig(backend="habitat", width=256, height=192, hfov_deg=79.0, camera_height_m=0.88))
    assert s["resolution"] == [192, 256]  # habitat orders [height, width]
    assert s["position"] == [0.0, 0.88, 0.0] and s["hfov"] == 79.0
    assert s["actions"] == {"move_forward": 0.25, "turn_left": 15.0, "turn_right": 15.0}
    assert s["agent_radius"] == 0.1 and s["agent_height"] == 1.5 and s["allow_sliding"] is True


def test_action_names_map_to_habitat_keys():
    assert set(HABITAT_ACTIONS) == set(ACTION_NAMES) - {"STOP"}
    assert [action_name(i) for i in range(4)] == list(ACTION_NAMES)
    with pytest.raises(ValueError, match="unknown action"):
        action_name(7)


def test_scene_paths(tmp_path):
    glb = tmp_path / "mp3d" / "X" / "X.glb"
    glb.parent.mkdir(parents=True)
    glb.write_bytes(b"")
    assert resolve_scene_path("mp3d/X/X.glb", str(tmp_path)) == glb
    assert resolve_scene_path(str(glb), "") == glb
    with pytest.raises(FileNotFoundError, match="scenes_dir"):
        resolve_scene_path("mp3d/X/X.glb", "")
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_scene_path("mp3d/Y/Y.glb", str(tmp_path))
