"""Procedurally generated indoor scenes for the embedded simulator.

spec: the SceneSpec dataclasses and their JSON form; vocabulary: room and object kinds with
their looks; generator: generate_scene(seed); collision: walls/footprints for the motion model;
store: loading by scene id from `sim/scenes/`. Pure Python + numpy (scipy for the generator's
reachability check); no rendering here.
"""
from vila_nav.scenes.generator import generate_scene, scene_id_for
from vila_nav.scenes.spec import DoorSpec, ObjectSpec, RoomSpec, SceneSpec, SceneSpecError
from vila_nav.scenes.store import (
    SceneNotFoundError,
    list_scenes,
    load_scene,
    load_splits,
    save_scene,
    save_splits,
    scenes_for_split,
)

__all__ = [
    "DoorSpec",
    "ObjectSpec",
    "RoomSpec",
    "SceneNotFoundError",
    "SceneSpec",
    "SceneSpecError",
    "generate_scene",
    "list_scenes",
    "load_scene",
    "load_splits",
    "save_scene",
    "save_splits",
    "scene_id_for",
    "scenes_for_split",
]
