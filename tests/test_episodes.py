"""VLN-CE loaders/savers on the literal R2R and RxR examples of the reference, and their errors."""
from __future__ import annotations

import copy
import gzip
import json
import re

import pytest

from vila_nav.episodes import (
    Episode,
    EpisodeFormatError,
    GroundTruth,
    build_instruction_vocab,
    language_matches,
    load_episodes,
    load_r2r,
    load_rxr,
    save_r2r,
    save_rxr,
)

R2R_EPISODE = {
    "episode_id": 1,
    "trajectory_id": 15,
    "scene_id": "mp3d/zsNo4HB9uLZ/zsNo4HB9uLZ.glb",
    "start_position": [15.0686, 0.1716, -4.4848],
    "start_rotation": [0, 0.6198966754439885, 0, -0.7846834468583432],
    "info": {"geodesic_distance": 7.9608},
    "goals": [{"position": [13.0464, 0.1716, 1.8740], "radius": 3.0}],
    "instruction": {
        "instruction_text": "Exit the bedroom and turn left. Walk straight passing the gray couch and stop near the rug. ",
        "instruction_tokens": [816, 2202, 246] + [0] * 197,
    },
    "reference_path": [[15.0686, 0.1716, -4.4848], [13.6494, 0.1716, -4.2417], [13.0464, 0.1716, 1.8740]],
}
R2R_GT = {"1": {"actions": [2, 1, 1, 0], "locations": [[15.0686, 0.1716, -4.4848], [14.9, 0.1716, -4.3], [14.7, 0.1716, -4.1]], "forward_steps": 2}}

RXR_EPISODE = {
    "episode_id": "1",
    "trajectory_id": "0",
    "scene_id": "mp3d/SN83YJsR3w2/SN83YJsR3w2.glb",
    "info": {"role": "guide"},
    "instruction": {
        "instruction_id": "0",
        "language": "en-US",
        "annotator_id": "0",
        "instruction_text": "You will start by standing in front of a glass door ... you're done.",
        "edit_distance": 0.0769,
        "timed_instruction": [{"end_time": 1.5, "word": "You", "start_time": 1.0}],
    },
    "reference_path": [[0.2563, 3.8915, -16.0867], [0.5470, 3.8915, -17.4968], [1.1071, 3.8915, -18.5322]],
    "start_position": [0.2563, 3.8915, -16.0867],
    "goals": [{"position": [1.1071, 3.8915, -18.5322], "radius": 3.0}],
    "start_rotation": [-0.0, 0.967659801213298, -0.0, -0.2522588137525439],
}


def _write(path, data, gz=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(data).encode()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def _r2r_split(tmp_path, episodes, gt=None, gz=True, split="val_unseen"):
    ext = ".json.gz" if gz else ".json"
    f = _write(tmp_path / split / f"{split}{ext}", {"episodes": episodes, "instruction_vocab": {}}, gz)
    if gt is not None:
        _write(tmp_path / split / f"{split}_gt{ext}", gt, gz)
    return f


@pytest.mark.parametrize("gz", [True, False])
def test_r2r_literal_example(tmp_path, gz):
    f = _r2r_split(tmp_path, [R2R_EPISODE], R2R_GT, gz=gz)
    for source in (dict(path=tmp_path, split="val_unseen"), dict(path=f.parent), dict(path=f)):
        (ep,) = load_r2r(**source)
        assert ep.episode_id == "1" and ep.trajectory_id == "15"  # cast to str
        assert ep.scene_id == "mp3d/zsNo4HB9uLZ/zsNo4HB9uLZ.glb"
        assert ep.start_rotation == (0.0, 0.6198966754439885, 0.0, -0.7846834468583432)  # [x, y, z, w]
        assert ep.goal.position == (13.0464, 0.1716, 1.874) and ep.goal.radius == 3.0
        assert ep.instruction.text.startswith("Exit the bedroom") and ep.instruction.tokens[:4] == (816, 2202, 246, 0)
        assert len(ep.instruction.tokens) == 200 and ep.instruction.language == "en-US"
        assert ep.info["geodesic_distance"] == 7.9608
        assert ep.reference_path[1] == (13.6494, 0.1716, -4.2417)
        assert ep.gt == GroundTruth((2, 1, 1, 0), ((15.0686, 0.1716, -4.4848), (14.9, 0.1716, -4.3), (14.7, 0.1716, -4.1)), 2)
    assert load_r2r(f, gt=False)[0].gt is None


def test_r2r_without_gt_file_has_no_gt(tmp_path):
    f = _r2r_split(tmp_path, [R2R_EPISODE])
    assert load_r2r(f)[0].gt is None


def test_gzip_detected_by_magic_bytes_not_name(tmp_path):
    f = tmp_path / "val_unseen" / "val_unseen.json"
    _write(f, {"episodes": [R2R_EPISODE]}, gz=True)
    assert load_r2r(f)[0].episode_id == "1"


def test_rxr_literal_example_and_language_filter(tmp_path):
    eps = []
    for i, lang in enumerate(["en-US", "en-IN", "hi-IN", "te-IN"]):
        e = copy.deepcopy(RXR_EPISODE)
        e["episode_id"], e["instruction"]["language"] = str(i + 1), lang
        eps.append(e)
    f = _write(tmp_path / "val_unseen" / "val_unseen_guide.json.gz", {"episodes": eps})
    all_eps = load_rxr(f)
    assert [e.instruction.language for e in all_eps] == ["en-US", "en-IN", "hi-IN", "te-IN"]
    ep = all_eps[0]
    assert ep.episode_id == "1" and ep.trajectory_id == "0" and ep.instruction.instruction_id == "0"
    assert "geodesic_distance" not in ep.info and ep.info["role"] == "guide"
    assert ep.start_rotation == (-0.0, 0.967659801213298, -0.0, -0.2522588137525439)
    assert ep.instruction.extra["timed_instruction"][0]["word"] == "You"
    assert ep.instruction.extra["edit_distance"] == 0.0769 and ep.instruction.tokens == ()
    assert [e.episode_id for e in load_rxr(tmp_path, ("en",), split="val_unseen")] == ["1", "2"]
    assert [e.episode_id for e in load_rxr(f, ["en-US"])] == ["1"]
    assert [e.episode_id for e in load_episodes("rxr", f.parent, languages=["hi"])] == ["3"]
    assert language_matches("en-IN", ["EN"]) and not language_matches("eng-XX", ["en"])


def test_r2r_round_trip_and_reproducible_bytes(tmp_path):
    _r2r_split(tmp_path / "src", [R2R_EPISODE], R2R_GT)
    eps = load_r2r(tmp_path / "src", "val_unseen")
    out = save_r2r(tmp_path / "a", "val_unseen", eps)
    save_r2r(tmp_path / "b", "val_unseen", eps)
    assert out == tmp_path / "a" / "val_unseen" / "val_unseen.json.gz"
    assert out.read_bytes() == (tmp_path / "b" / "val_unseen" / "val_unseen.json.gz").read_bytes()
    raw = json.loads(gzip.decompress(out.read_bytes()))
    assert raw["instruction_vocab"] == {} and raw["episodes"][0]["episode_id"] == 1  # ints, like the dumps
    assert raw["episodes"][0] == R2R_EPISODE
    gt_raw = json.loads(gzip.decompress((out.parent / "val_unseen_gt.json.gz").read_bytes()))
    assert gt_raw == R2R_GT
    back = load_r2r(out)
    assert back == eps and back[0].info == eps[0].info and back[0].gt == eps[0].gt


def test_rxr_round_trip(tmp_path):
    f = _write(tmp_path / "val_unseen" / "val_unseen_guide.json.gz", {"episodes": [RXR_EPISODE]})
    _write(tmp_path / "val_unseen" / "val_unseen_guide_gt.json.gz", {"1": {"locations": [[0.2563, 3.8915, -16.0867]], "actions": [0], "forward_steps": 0}})
    eps = load_rxr(f)
    assert eps[0].gt is not None
    out = save_rxr(tmp_path / "out", "val_unseen", eps)
    assert out.name == "val_unseen_guide.json.gz" and (out.parent / "val_unseen_guide_gt.json.gz").is_file()
    raw = json.loads(gzip.decompress(out.read_bytes()))
    assert "instruction_vocab" not in raw and raw["episodes"][0] == RXR_EPISODE
    back = load_rxr(out)
    assert back == eps and back[0].instruction.extra == eps[0].instruction.extra


def test_build_instruction_vocab_pads_to_200(tmp_path):
    _r2r_split(tmp_path, [R2R_EPISODE])
    vocab, eps = build_instruction_vocab(load_r2r(tmp_path, "val_unseen"))
    toks = eps[0].instruction.tokens
    assert len(toks) == 200 and toks[0] == vocab["stoi"]["exit"] and toks[-1] == 0
    save_r2r(tmp_path / "v", "val_unseen", eps, instruction_vocab=vocab)
    assert load_r2r(tmp_path / "v", "val_unseen")[0].instruction.tokens == toks


def _bad(tmp_path, mutate):
    e = copy.deepcopy(R2R_EPISODE)
    e["episode_id"] = 17
    mutate(e)
    return _r2r_split(tmp_path, [R2R_EPISODE, e])


@pytest.mark.parametrize(
    "mutate, field, what",
    [
        (lambda e: e.__setitem__("start_rotation", [0, 0.62, 0]), "start_rotation", "4 numbers [x, y, z, w]"),
        (lambda e: e.__setitem__("start_rotation", [0, 2.0, 0, 1.0]), "start_rotation", "unit quaternion"),
        (lambda e: e.__setitem__("start_position", [1, "a", 2]), "start_position", "3 finite numbers"),
        (lambda e: e.__setitem__("goals", []), "goals", "non-empty list"),
        (lambda e: e["goals"][0].__setitem__("position", [1, 2]), "goals[0].position", "3 finite numbers"),
        (lambda e: e.__setitem__("reference_path", []), "reference_path", "at least 1"),
        (lambda e: e.__setitem__("reference_path", [[1, 2, 3], [1, 2]]), "reference_path[1]", "3 finite numbers"),
        (lambda e: e["instruction"].__setitem__("instruction_text", "  "), "instruction.instruction_text", "non-empty string"),
        (lambda e: e["instruction"].pop("instruction_text"), "instruction.instruction_text", "missing"),
        (lambda e: e.pop("scene_id"), "scene_id", "missing"),
    ],
)
def test_malformed_fields_name_file_episode_field(tmp_path, mutate, field, what):
    f = _bad(tmp_path, mutate)
    with pytest.raises(EpisodeFormatError) as err:
        load_r2r(f)
    msg = str(err.value)
    assert str(f) in msg and "episode '17'" in msg and f"field '{field}'" in msg and what in msg, msg


def test_file_level_errors(tmp_path):
    with pytest.raises(EpisodeFormatError, match="does not exist"):
        load_r2r(tmp_path / "nope")
    with pytest.raises(EpisodeFormatError, match=re.escape("tried:")) as err:
        load_r2r(tmp_path, "val_seen")
    assert "gen-episodes" not in str(err.value)
    # The package's own folder ships only val_unseen: the message says how to make the others.
    from vila_nav.paths import sim_dir

    with pytest.raises(EpisodeFormatError, match=re.escape("`vila-nav gen-episodes splits=[no_such_split]`")):
        load_r2r(sim_dir() / "episodes" / "r2r", "no_such_split")
    f = tmp_path / "x" / "x.json.gz"
    f.parent.mkdir()
    f.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(EpisodeFormatError, match=f"{re.escape(str(f))}: corrupt gzip"):
        load_r2r(f)
    f.write_text("{not json")
    with pytest.raises(EpisodeFormatError, match="not valid JSON"):
        load_r2r(f)
    f.write_text(json.dumps([1, 2]))
    with pytest.raises(EpisodeFormatError, match="'episodes' list"):
        load_r2r(f)
    f.write_text(json.dumps({"episodes": [R2R_EPISODE, R2R_EPISODE]}))
    with pytest.raises(EpisodeFormatError, match="episode '1': duplicate episode_id"):
        load_r2r(f)


def test_gt_errors(tmp_path):
    gt = {"1": {"actions": [1, 0], "locations": [[0, 0, 0]], "forward_steps": 1}}
    f = _r2r_split(tmp_path, [R2R_EPISODE], gt)
    with pytest.raises(EpisodeFormatError, match=r"val_unseen_gt.json.gz, episode '1': field 'locations' must hold forward_steps \+ 1 = 2"):
        load_r2r(f)
    f = _r2r_split(tmp_path, [R2R_EPISODE], {"2": R2R_GT["1"]})
    with pytest.raises(EpisodeFormatError, match="episode '1': no ground truth"):
        load_r2r(f)


def test_savers_refuse_partial_gt_and_duplicates(tmp_path):
    _r2r_split(tmp_path / "src", [R2R_EPISODE], R2R_GT)
    (ep,) = load_r2r(tmp_path / "src", "val_unseen")
    other = Episode(**{**ep.__dict__, "episode_id": "2", "gt": None})
    with pytest.raises(ValueError, match="some episodes have ground truth"):
        save_r2r(tmp_path / "o", "val_unseen", [ep, other])
    with pytest.raises(ValueError, match="duplicate episode_id '1'"):
        save_rxr(tmp_path / "o", "val_unseen", [ep, ep])
