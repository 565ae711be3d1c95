"""Scene specs: seeded generation, JSON round trip, the shipped files, loading by id, validity."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vila_nav.scenes import (
    SceneNotFoundError,
    SceneSpec,
    SceneSpecError,
    generate_scene,
    list_scenes,
    load_scene,
    load_splits,
    save_scene,
    scene_id_for,
    scenes_for_split,
)
from vila_nav.scenes.collision import CollisionWorld, wall_segments
from vila_nav.scenes.store import scene_key
from vila_nav.scenes.vocabulary import COLORS, OBJECT_KINDS, ROOM_KINDS


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_seed_gives_the_same_scene(seed):
    a, b = generate_scene(seed), generate_scene(seed)
    assert a == b
    assert a.to_json() == b.to_json()
    assert a.scene_id == scene_id_for(seed) and a.seed == seed


def test_different_seeds_differ():
    assert generate_scene(1).to_json() != generate_scene(2).to_json()


def test_json_round_trip_is_exact():
    spec = generate_scene(5)
    again = SceneSpec.from_json(spec.to_json())
    assert again == spec
    assert again.to_json() == spec.to_json()


def test_shipped_scenes_match_the_generator():
    """A seed gives the same scene everywhere: the files in sim/scenes/ are generate_scene(seed)."""
    ids = list_scenes()
    assert len(ids) >= 60
    for sid in ids[:3] + ids[-3:]:
        spec = load_scene(sid)
        assert spec == generate_scene(spec.seed), sid


def test_splits_hold_out_val_unseen_scenes():
    splits = load_splits()
    train, unseen = set(splits["train"]), set(splits["val_unseen"])
    assert len(train) >= 40 and len(unseen) >= 10
    assert not train & unseen
    assert set(scenes_for_split("val_seen")) == train
    assert set(scenes_for_split("val_unseen")) == unseen
    with pytest.raises(ValueError, match="unknown episode split"):
        scenes_for_split("test")


def test_unknown_scene_id_is_a_clear_error():
    with pytest.raises(SceneNotFoundError, match="unknown scene 'no_such_house'.*Known scenes"):
        load_scene("no_such_house")


def test_scene_id_forms():
    assert scene_key("house_0007") == scene_key("house_0007.json") == scene_key("miniworld/house_0007.json") == "house_0007"
    assert load_scene("sim/house_0001.json").scene_id == "house_0001"


def test_save_and_load_in_a_folder(tmp_path):
    spec = generate_scene(3)
    save_scene(spec, tmp_path)
    assert load_scene(spec.scene_id, tmp_path) == spec
    (tmp_path / "bad.json").write_text(json.dumps({**spec.to_dict(), "scene_id": "bad", "schema_version": 99}))
    with pytest.raises(SceneSpecError, match="schema_version"):
        load_scene("bad", tmp_path)


def test_invalid_specs_are_rejected():
    d = generate_scene(4).to_dict()
    d["doors"][0]["rooms"] = ["r0", "r99"]
    with pytest.raises(SceneSpecError, match="unknown room"):
        SceneSpec.from_dict(d)
    with pytest.raises(SceneSpecError, match="not valid JSON"):
        SceneSpec.from_json("{nope")


@pytest.mark.parametrize("scene_id", [f"house_{s:04d}" for s in range(60)])
def test_generated_scenes_are_well_formed(scene_id):
    """Every shipped scene (= generate_scene(seed), checked above) is well formed."""
    import networkx as nx

    spec = load_scene(scene_id)
    assert 2 <= len(spec.rooms) <= 7
    kinds = [r.kind for r in spec.rooms]
    assert len(set(kinds)) == len(kinds) and set(kinds) <= set(ROOM_KINDS)
    # doorways join every room (graph connected) and lie on the wall both rooms share
    g = nx.Graph()
    g.add_nodes_from(r.room_id for r in spec.rooms)
    for d in spec.doors:
        a, b = spec.room(d.rooms[0]), spec.room(d.rooms[1])
        for r in (a, b):
            if d.axis == "x":
                assert d.line in (r.min_z, r.max_z) and r.min_x <= d.lo < d.hi <= r.max_x
            else:
                assert d.line in (r.min_x, r.max_x) and r.min_z <= d.lo < d.hi <= r.max_z
        assert 0.9 - 0.011 <= d.width <= 1.2 + 0.011  # widths are rounded to cm
        g.add_edge(*d.rooms)
    assert nx.is_connected(g)
    # objects: known kinds/colours, inside their room, unique names
    for o in spec.objects:
        assert o.kind in OBJECT_KINDS and o.color in COLORS
        room = spec.room(o.room_id)
        hx, hz = o.half_extents
        assert room.min_x <= o.position[0] - hx and o.position[0] + hx <= room.max_x
        assert room.min_z <= o.position[1] - hz and o.position[1] + hz <= room.max_z
    assert len({o.name for o in spec.objects}) == len(spec.objects)
    assert len(spec.objects) >= len(spec.rooms)


def test_walls_have_gaps_at_doorways():
    spec = generate_scene(11)
    world = CollisionWorld.from_scene(spec, objects=False)
    segs = wall_segments(spec)
    assert segs.shape[1:] == (2, 2)
    for d in spec.doors:
        centre = np.array(d.center)
        assert world.clearance(centre)[0] >= d.width / 2 - 1e-6  # nothing in the opening
        assert world.is_free(centre, 0.1)


def test_gen_scenes_cli(tmp_path, capsys):
    from vila_nav.scenes.gen_scenes import main

    assert main([f"out_dir={tmp_path}", "num_train=2", "num_val_unseen=1", "first_seed=40"]) == 0
    assert "wrote 3 scenes" in capsys.readouterr().out
    assert load_splits(tmp_path) == {"train": ["house_0040", "house_0041"], "val_unseen": ["house_0042"]}
    assert load_scene("house_0042", tmp_path) == load_scene("house_0042")
    assert main(["num_train=0"]) == 2
