"""Scene spec files: `sim/scenes/<scene_id>.json` plus `sim/scenes/splits.json`.

splits.json maps split names to scene ids: "train" scenes are used by the train and val_seen
episode splits, "val_unseen" scenes by val_unseen only (never seen in training).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from vila_nav.scenes.spec import SceneSpec, SceneSpecError

SPLITS_FILE = "splits.json"
# Episode split -> the scene split it draws scenes from.
EPISODE_SPLIT_SCENES = {"train": "train", "val_seen": "train", "val_unseen": "val_unseen"}


class SceneNotFoundError(FileNotFoundError):
    """No scene spec file for a scene id."""


def scenes_dir(folder: str | Path | None = None) -> Path:
    """`folder` if given, else the shipped `sim/scenes/`."""
    if folder:
        return Path(folder)
    from vila_nav.paths import sim_dir

    return sim_dir() / "scenes"


def scene_key(scene_id: str) -> str:
    """The file stem a scene id refers to: 'house_0007', 'miniworld/house_0007.json' and
    'house_0007.json' all give 'house_0007' (VLN-CE ids are paths such as 'mp3d/X/X.glb')."""
    name = Path(str(scene_id)).name
    for suffix in (".json", ".glb"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if not name:
        raise SceneNotFoundError(f"empty scene id {scene_id!r}")
    return name


def list_scenes(folder: str | Path | None = None) -> list[str]:
    """Scene ids with a spec file in the folder, sorted."""
    root = scenes_dir(folder)
    return sorted(p.stem for p in root.glob("*.json") if p.name != SPLITS_FILE)


def load_scene(scene_id: str, folder: str | Path | None = None) -> SceneSpec:
    """Load and validate the spec of `scene_id` (SceneNotFoundError naming the known ids)."""
    return _load_cached(scene_key(scene_id), str(scenes_dir(folder).resolve()))


@lru_cache(maxsize=256)
def _load_cached(key: str, folder: str) -> SceneSpec:
    path = Path(folder) / f"{key}.json"
    if not path.is_file():
        known = list_scenes(folder)
        shown = ", ".join(known[:8]) + (" ..." if len(known) > 8 else "")
        raise SceneNotFoundError(
            f"unknown scene '{key}': no {path}. Known scenes ({len(known)}): {shown or 'none'}. "
            "Generate scenes with `vila-nav gen-scenes`."
        )
    try:
        spec = SceneSpec.from_json(path.read_text(encoding="utf-8"))
    except SceneSpecError as exc:
        raise SceneSpecError(f"{path}: {exc}") from exc
    if spec.scene_id != key:
        raise SceneSpecError(f"{path}: file holds scene_id {spec.scene_id!r}, expected {key!r}")
    return spec


def save_scene(spec: SceneSpec, folder: str | Path | None = None) -> Path:
    """Write `<folder>/<scene_id>.json` (folder created); returns the path."""
    root = scenes_dir(folder)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{spec.scene_id}.json"
    path.write_text(spec.to_json(), encoding="utf-8")
    _load_cached.cache_clear()
    return path


def load_splits(folder: str | Path | None = None) -> dict[str, list[str]]:
    """Scene split name -> scene ids, from `splits.json`."""
    path = scenes_dir(folder) / SPLITS_FILE
    if not path.is_file():
        raise SceneNotFoundError(f"no scene splits file {path}; generate scenes with `vila-nav gen-scenes`")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, list) for k, v in data.items() if k != "schema_version"):
        raise SceneSpecError(f"{path}: expected {{split: [scene ids]}}")
    return {k: [str(s) for s in v] for k, v in data.items() if k != "schema_version"}


def save_splits(splits: dict[str, list[str]], folder: str | Path | None = None) -> Path:
    """Write `splits.json` (scene split name -> scene ids)."""
    root = scenes_dir(folder)
    root.mkdir(parents=True, exist_ok=True)
    path = root / SPLITS_FILE
    path.write_text(json.dumps({"schema_version": 1, **splits}, indent=1) + "\n", encoding="utf-8")
    return path


def scenes_for_split(episode_split: str, folder: str | Path | None = None) -> list[str]:
    """Scene ids an episode split draws from (train and val_seen: train scenes; val_unseen: held out)."""
    if episode_split not in EPISODE_SPLIT_SCENES:
        raise ValueError(f"unknown episode split {episode_split!r}; expected one of {sorted(EPISODE_SPLIT_SCENES)}")
    splits = load_splits(folder)
    key = EPISODE_SPLIT_SCENES[episode_split]
    if key not in splits or not splits[key]:
        raise SceneNotFoundError(f"scene split {key!r} is empty or missing in {scenes_dir(folder) / SPLITS_FILE}")
    return splits[key]
