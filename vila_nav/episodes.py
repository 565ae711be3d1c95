"""VLN-CE episodes: the in-memory form shared by loaders, the generator, simulators and metrics.

Plain dataclasses (no torch, no simulator). Positions are Habitat world coordinates in metres
(Y-up, the agent faces -Z); rotations are quaternions [x, y, z, w].
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class Goal:
    position: tuple[float, float, float]  # (x, y, z) m
    radius: float = 3.0  # m; VLN-CE success distance


@dataclass(frozen=True)
class Instruction:
    text: str
    tokens: tuple[int, ...] = ()  # R2R instruction_tokens (empty for RxR)
    instruction_id: str = ""  # RxR
    language: str = "en-US"  # RxR language tag; R2R is English
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # annotator_id, edit_distance, ...


@dataclass(frozen=True)
class GroundTruth:
    """One entry of `{split}_gt.json.gz`: the expert's discrete actions and dense locations.

    actions: VLN-CE ids (0 STOP, 1 MOVE_FORWARD, 2 TURN_LEFT, 3 TURN_RIGHT).
    locations: positions recorded only after forward moves, so len == forward_steps + 1.
    """

    actions: tuple[int, ...]
    locations: tuple[tuple[float, float, float], ...]
    forward_steps: int


@dataclass(frozen=True)
class Episode:
    episode_id: str  # loaders cast to str
    trajectory_id: str
    scene_id: str
    start_position: tuple[float, float, float]  # m
    start_rotation: tuple[float, float, float, float]  # [x, y, z, w]
    goals: tuple[Goal, ...]
    instruction: Instruction
    reference_path: tuple[tuple[float, float, float], ...]
    info: dict[str, Any] = field(default_factory=dict, compare=False)  # geodesic_distance, role, ...
    gt: GroundTruth | None = None

    @property
    def goal(self) -> Goal:
        """The (first) goal; VLN-CE R2R/RxR episodes have exactly one."""
        return self.goals[0]


# --------------------------------------------------------------------------------------------
# VLN-CE files: loaders and savers (formats in VLN-CE's R2R_VLNCE_v1-3 and RxR_VLNCE_v0 dumps)
# --------------------------------------------------------------------------------------------
#
# R2R:  <root>/<split>/<split>.json.gz        {"episodes": [...], "instruction_vocab": {...}}
#       <root>/<split>/<split>_gt.json.gz     {"<episode_id>": {"actions", "locations", "forward_steps"}}
# RxR:  <root>/<split>/<split>_<role>.json.gz {"episodes": [...]}  (no vocab; info may be {"role": ...})
#       <root>/<split>/<split>_<role>_gt.json.gz
# Files may be gzip (detected by the magic bytes, whatever the name) or plain JSON.

_GZIP_MAGIC = b"\x1f\x8b"
_QUAT_NORM_TOL = 1e-2  # |norm - 1| allowed for published, rounded quaternions
R2R_TOKEN_LENGTH = 200  # VLN-CE zero-pads instruction_tokens to 200


class EpisodeFormatError(ValueError):
    """A VLN-CE episode or ground-truth file that is missing, unreadable or malformed.

    The message names the file, the episode (when known) and the field.
    """


def _where(kind: str, path: Path, episode_id: object = None) -> str:
    where = f"{kind} file {path}"
    return where if episode_id is None else f"{where}, episode '{episode_id}'"


def _short(value: object, limit: int = 120) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def read_json(path: str | Path, kind: str = "VLN-CE") -> Any:
    """Parse a gzip-compressed (detected by magic bytes) or plain JSON file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EpisodeFormatError(f"{kind} file {path}: cannot read ({exc.strerror or exc})") from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise EpisodeFormatError(f"{kind} file {path}: corrupt gzip data ({exc})") from exc
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EpisodeFormatError(f"{kind} file {path}: not valid JSON ({exc})") from exc


def write_json_gz(path: str | Path, data: Any) -> Path:
    """Write `data` as gzip JSON, byte-for-byte reproducible (mtime 0), atomically (tmp + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(data, ensure_ascii=False, separators=(", ", ": ")).encode("utf-8")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(payload)
    tmp.replace(path)
    return path


class _Fields:
    """Validates the fields of one JSON object and formats errors naming file/episode/field."""

    def __init__(self, kind: str, path: Path, episode_id: object, obj: object, prefix: str = ""):
        self.kind, self.path, self.episode_id, self.prefix = kind, path, episode_id, prefix
        if not isinstance(obj, dict):
            self.fail(None, "must be a JSON object", obj)
        self.obj: dict = obj  # type: ignore[assignment]

    def fail(self, name: str | None, what: str, got: object) -> None:
        field_ = f"field '{self.prefix}{name}'" if name is not None else (f"field '{self.prefix.rstrip('.')}'" if self.prefix else "entry")
        raise EpisodeFormatError(
            f"{_where(self.kind, self.path, self.episode_id)}: {field_} {what}, got {_short(got)}"
        )

    def get(self, name: str, default: object = ...) -> Any:
        if name not in self.obj:
            if default is ...:
                raise EpisodeFormatError(
                    f"{_where(self.kind, self.path, self.episode_id)}: missing field '{self.prefix}{name}'"
                )
            return default
        return self.obj[name]

    def vec3(self, name: str, value: object = ...) -> tuple[float, float, float]:
        v = self.get(name) if value is ... else value
        if not (isinstance(v, list) and len(v) == 3 and all(_is_number(x) for x in v)):
            self.fail(name, "must be 3 finite numbers [x, y, z] (m)", v)
        return (float(v[0]), float(v[1]), float(v[2]))  # type: ignore[index]

    def quat(self, name: str) -> tuple[float, float, float, float]:
        v = self.get(name)
        if not (isinstance(v, list) and len(v) == 4 and all(_is_number(x) for x in v)):
            self.fail(name, "must be 4 numbers [x, y, z, w]", v)
        norm = math.sqrt(sum(float(x) ** 2 for x in v))
        if abs(norm - 1.0) > _QUAT_NORM_TOL:
            self.fail(name, f"must be a unit quaternion [x, y, z, w] (norm {norm:.4f})", v)
        return (float(v[0]), float(v[1]), float(v[2]), float(v[3]))

    def path3(self, name: str, value: object = ..., min_len: int = 1) -> tuple[tuple[float, float, float], ...]:
        v = self.get(name) if value is ... else value
        if not isinstance(v, list) or len(v) < min_len:
            self.fail(name, f"must be a list of at least {min_len} [x, y, z] points", v)
        out = []
        for i, p in enumerate(v):  # type: ignore[arg-type]
            if not (isinstance(p, list) and len(p) == 3 and all(_is_number(x) for x in p)):
                self.fail(f"{name}[{i}]", "must be 3 finite numbers [x, y, z] (m)", p)
            out.append((float(p[0]), float(p[1]), float(p[2])))
        return tuple(out)

    def text(self, name: str, non_empty: bool = True) -> str:
        v = self.get(name)
        if not isinstance(v, str) or (non_empty and not v.strip()):
            self.fail(name, "must be a non-empty string" if non_empty else "must be a string", v)
        return v

    def ident(self, name: str) -> str:
        v = self.get(name)
        if isinstance(v, bool) or not isinstance(v, (int, str)) or (isinstance(v, str) and not v):
            self.fail(name, "must be an integer or a non-empty string", v)
        return str(v)


def _parse_goals(f: _Fields) -> tuple[Goal, ...]:
    goals = f.get("goals")
    if not isinstance(goals, list) or not goals:
        f.fail("goals", "must be a non-empty list of {position, radius}", goals)
    out = []
    for i, g in enumerate(goals):
        gf = _Fields(f.kind, f.path, f.episode_id, g, prefix=f"goals[{i}].")
        radius = gf.get("radius", None)
        if radius is None:
            radius = 3.0  # habitat's NavigationGoal radius is optional; VLN-CE success is 3.0 m
        elif not _is_number(radius) or radius <= 0:
            gf.fail("radius", "must be a positive number (m)", radius)
        out.append(Goal(position=gf.vec3("position"), radius=float(radius)))
    return tuple(out)


def _parse_episode(kind: str, path: Path, index: int, obj: object) -> Episode:
    eid = obj.get("episode_id", f"#{index}") if isinstance(obj, dict) else f"#{index}"
    f = _Fields(kind, path, eid if not isinstance(eid, (dict, list)) else f"#{index}", obj)
    episode_id = f.ident("episode_id")
    f.episode_id = episode_id
    info = f.get("info", {})
    if info is None:
        info = {}
    if not isinstance(info, dict):
        f.fail("info", "must be a JSON object", info)
    if "geodesic_distance" in info and not (_is_number(info["geodesic_distance"]) and info["geodesic_distance"] >= 0):
        f.fail("info.geodesic_distance", "must be a finite number >= 0 (m)", info["geodesic_distance"])
    inst = _Fields(kind, path, episode_id, f.get("instruction"), prefix="instruction.")
    text = inst.text("instruction_text")
    tokens = inst.get("instruction_tokens", [])
    if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        inst.fail("instruction_tokens", "must be a list of integers", tokens)
    language = inst.get("language", "en-US")
    if not isinstance(language, str) or not language:
        inst.fail("language", "must be a language tag such as 'en-US'", language)
    instruction_id = inst.get("instruction_id", "")
    if isinstance(instruction_id, bool) or not isinstance(instruction_id, (int, str)):
        inst.fail("instruction_id", "must be an integer or a string", instruction_id)
    known = {"instruction_text", "instruction_tokens", "language", "instruction_id"}
    extra = {k: v for k, v in inst.obj.items() if k not in known}
    instruction = Instruction(
        text=text,
        tokens=tuple(tokens),
        instruction_id=str(instruction_id),
        language=language,
        extra=extra,
    )
    return Episode(
        episode_id=episode_id,
        trajectory_id=f.ident("trajectory_id"),
        scene_id=f.text("scene_id"),
        start_position=f.vec3("start_position"),
        start_rotation=f.quat("start_rotation"),
        goals=_parse_goals(f),
        instruction=instruction,
        reference_path=f.path3("reference_path", min_len=1),
        info=dict(info),
    )


def _parse_gt(kind: str, path: Path, episode_id: str, obj: object) -> GroundTruth:
    f = _Fields(kind, path, episode_id, obj)
    locations = f.path3("locations", min_len=1)
    actions = f.get("actions", [])
    if not isinstance(actions, list) or not all(isinstance(a, int) and not isinstance(a, bool) and 0 <= a <= 3 for a in actions):
        f.fail("actions", "must be a list of VLN-CE action ids 0..3", actions)
    forward_steps = f.get("forward_steps", len(locations) - 1)
    if isinstance(forward_steps, bool) or not isinstance(forward_steps, int) or forward_steps < 0:
        f.fail("forward_steps", "must be an integer >= 0", forward_steps)
    if len(locations) != forward_steps + 1:
        f.fail("locations", f"must hold forward_steps + 1 = {forward_steps + 1} points (one per forward move plus the start)", f"{len(locations)} points")
    return GroundTruth(actions=tuple(actions), locations=locations, forward_steps=forward_steps)


def _episodes_list(kind: str, path: Path, data: object) -> list:
    if not isinstance(data, dict) or "episodes" not in data:
        raise EpisodeFormatError(f"{kind} file {path}: expected a JSON object with an 'episodes' list")
    episodes = data["episodes"]
    if not isinstance(episodes, list):
        raise EpisodeFormatError(f"{kind} file {path}: field 'episodes' must be a list, got {_short(episodes)}")
    return episodes


def _strip_json_suffix(name: str) -> str:
    for suffix in (".json.gz", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.json.gz", f"{stem}.json"):
        if (folder / name).is_file():
            return folder / name
    return None


def _resolve(kind: str, path: str | Path, split: str | None, suffix: str) -> tuple[Path, str]:
    """Find the episode file from a dataset root + split, a split dir, or the file itself.

    Returns (file, stem) where stem is the file name without .json(.gz), e.g. 'val_unseen' or
    'val_unseen_guide'.
    """
    path = Path(path)
    if path.is_file():
        return path, _strip_json_suffix(path.name)
    if not path.is_dir():
        raise EpisodeFormatError(f"{kind} episodes: {path} does not exist")
    tried = []
    if split is not None:
        for folder in (path / split, path):
            stem = f"{split}{suffix}"
            tried.append(str(folder / f"{stem}.json[.gz]"))
            found = _find_file(folder, stem)
            if found is not None:
                return found, stem
    else:
        stem = f"{path.name}{suffix}"
        tried.append(str(path / f"{stem}.json[.gz]"))
        found = _find_file(path, stem)
        if found is not None:
            return found, stem
    hint = "" if split is not None else " (give split=... for a dataset root)"
    if split is not None and _is_shipped_episodes(path):
        hint = (f" (the package ships only val_unseen episodes: write {split} next to them with "
                f"`vila-nav gen-episodes splits=[{split}]`, or point the dataset path at another folder)")
    raise EpisodeFormatError(f"{kind} episodes not found; tried: {', '.join(tried)}{hint}")


def _is_shipped_episodes(path: Path) -> bool:
    """Whether `path` lies in the package's own sim/episodes folder."""
    from vila_nav.paths import sim_dir

    return path.resolve().is_relative_to((sim_dir() / "episodes").resolve())


def _join_gt(kind: str, file: Path, stem: str, episodes: list[Episode], gt: bool | str | Path) -> list[Episode]:
    if gt is False or gt is None:
        return episodes
    if gt is True:
        gt_file = _find_file(file.parent, f"{stem}_gt")
        if gt_file is None:
            return episodes  # no gt shipped: nDTW falls back to reference_path (recorded per row)
    else:
        gt_file = Path(gt)
    data = read_json(gt_file, f"{kind} gt")
    if not isinstance(data, dict):
        raise EpisodeFormatError(f"{kind} gt file {gt_file}: expected a JSON object keyed by episode id")
    out = []
    for ep in episodes:
        if ep.episode_id not in data:
            raise EpisodeFormatError(f"{_where(kind + ' gt', gt_file, ep.episode_id)}: no ground truth for this episode of {file}")
        out.append(_replace(ep, gt=_parse_gt(kind + " gt", gt_file, ep.episode_id, data[ep.episode_id])))
    return out


def _parse_all(kind: str, file: Path) -> list[Episode]:
    raw = _episodes_list(kind, file, read_json(file, kind))
    episodes, seen = [], set()
    for i, obj in enumerate(raw):
        ep = _parse_episode(kind, file, i, obj)
        if ep.episode_id in seen:
            raise EpisodeFormatError(f"{_where(kind, file, ep.episode_id)}: duplicate episode_id")
        seen.add(ep.episode_id)
        episodes.append(ep)
    return episodes


def load_r2r(path: str | Path, split: str | None = None, gt: bool | str | Path = True) -> list[Episode]:
    """Load R2R-CE episodes (VLN-CE `R2R_VLNCE_v1-3_preprocessed` format).

    path: a dataset root (with `split`), a split directory (`<root>/<split>/`), or the episode file
    `{split}.json.gz` / `{split}.json` itself (gzip is detected by its magic bytes).
    gt: True joins `{split}_gt.json.gz` from the same directory when it exists; a path joins that
    file; False skips ground truth. Every episode must then have an entry (keys are episode ids
    as strings). episode_id and trajectory_id are cast to str.
    Raises EpisodeFormatError naming the file, episode and field of anything malformed.
    """
    file, stem = _resolve("R2R", path, split, "")
    return _join_gt("R2R", file, stem, _parse_all("R2R", file), gt)


def language_matches(language: str, wanted: Iterable[str] | None) -> bool:
    """True if `language` (e.g. 'en-IN') matches one of `wanted` (None = everything).

    Matching is by BCP-47 prefix: 'en' matches 'en-US' and 'en-IN'; 'en-US' matches only 'en-US'.
    Case-insensitive.
    """
    if wanted is None:
        return True
    lang = language.lower()
    for w in wanted:
        w = w.lower()
        if lang == w or lang.startswith(w + "-"):
            return True
    return False


def load_rxr(
    path: str | Path,
    languages: Sequence[str] | None = None,
    split: str | None = None,
    role: str = "guide",
    gt: bool | str | Path = True,
) -> list[Episode]:
    """Load RxR-CE episodes (VLN-CE `RxR_VLNCE_v0` format).

    path: a dataset root (with `split`), a split directory, or the file `{split}_{role}.json.gz`.
    languages: None keeps every language; otherwise prefix matches, e.g. ("en",) keeps en-US and
    en-IN (the published RxR-CE VLM results use this English subset). RxR files have no
    instruction_vocab and no info.geodesic_distance (SPL then uses the geodesic at reset anyway).
    gt as in load_r2r, from `{split}_{role}_gt.json.gz`.
    """
    if isinstance(languages, str):
        languages = (languages,)
    file, stem = _resolve("RxR", path, split, f"_{role}")
    episodes = [e for e in _parse_all("RxR", file) if language_matches(e.instruction.language, languages)]
    return _join_gt("RxR", file, stem, episodes, gt)


def load_episodes(
    format: str,
    path: str | Path,
    split: str | None = None,
    languages: Sequence[str] | None = None,
    role: str = "guide",
) -> list[Episode]:
    """Dispatch to load_r2r / load_rxr by `format` ('r2r' or 'rxr')."""
    if format == "r2r":
        return load_r2r(path, split)
    if format == "rxr":
        return load_rxr(path, languages=languages, split=split, role=role)
    raise ValueError(f"unknown episode format {format!r}; expected 'r2r' or 'rxr'")


# ---- savers ---------------------------------------------------------------------------------


def _id_out(value: str, as_int: bool) -> int | str:
    if as_int and value.isdigit() and str(int(value)) == value:
        return int(value)  # R2R files store integer ids; loaders cast back to str
    return value


def _episode_dict(ep: Episode, rxr: bool, role: str) -> dict:
    inst: dict[str, Any] = {}
    if rxr:
        inst["instruction_id"] = ep.instruction.instruction_id
        inst["language"] = ep.instruction.language
    inst.update(ep.instruction.extra)
    inst["instruction_text"] = ep.instruction.text
    if not rxr:
        inst["instruction_tokens"] = list(ep.instruction.tokens)
    info = dict(ep.info)
    if rxr:
        info.setdefault("role", role)
    return {
        "episode_id": _id_out(ep.episode_id, not rxr),
        "trajectory_id": _id_out(ep.trajectory_id, not rxr),
        "scene_id": ep.scene_id,
        "start_position": list(ep.start_position),
        "start_rotation": list(ep.start_rotation),
        "info": info,
        "goals": [{"position": list(g.position), "radius": g.radius} for g in ep.goals],
        "instruction": inst,
        "reference_path": [list(p) for p in ep.reference_path],
    }


def _gt_dict(episodes: Sequence[Episode], what: str) -> dict | None:
    have = [e for e in episodes if e.gt is not None]
    if not have:
        return None
    if len(have) != len(episodes):
        missing = [e.episode_id for e in episodes if e.gt is None][:5]
        raise ValueError(f"{what}: some episodes have ground truth and some do not (e.g. {missing}); give all or none")
    return {
        e.episode_id: {
            "actions": list(e.gt.actions),  # type: ignore[union-attr]
            "locations": [list(p) for p in e.gt.locations],  # type: ignore[union-attr]
            "forward_steps": e.gt.forward_steps,  # type: ignore[union-attr]
        }
        for e in episodes
    }


def _check_unique(episodes: Sequence[Episode], what: str) -> None:
    seen: set[str] = set()
    for e in episodes:
        if e.episode_id in seen:
            raise ValueError(f"{what}: duplicate episode_id '{e.episode_id}'")
        seen.add(e.episode_id)


def save_r2r(
    root: str | Path,
    split: str,
    episodes: Sequence[Episode],
    instruction_vocab: dict | None = None,
) -> Path:
    """Write R2R-CE files: `{root}/{split}/{split}.json.gz` and, when the episodes carry ground
    truth (all of them), `{root}/{split}/{split}_gt.json.gz`. Returns the episode file.

    instruction_vocab: written as-is ({} when None; see build_instruction_vocab). Integer-like ids
    are written as JSON integers like the published files. Output is byte-reproducible.
    """
    episodes = list(episodes)
    folder = Path(root) / split
    _check_unique(episodes, f"save_r2r({folder})")
    gt = _gt_dict(episodes, f"save_r2r({folder})")
    data = {"episodes": [_episode_dict(e, False, "") for e in episodes], "instruction_vocab": instruction_vocab or {}}
    out = write_json_gz(folder / f"{split}.json.gz", data)
    if gt is not None:
        write_json_gz(folder / f"{split}_gt.json.gz", gt)
    return out


def save_rxr(root: str | Path, split: str, episodes: Sequence[Episode], role: str = "guide") -> Path:
    """Write RxR-CE files: `{root}/{split}/{split}_{role}.json.gz` (no instruction_vocab; info
    gets {"role": role}) and, when the episodes carry ground truth (all of them),
    `{root}/{split}/{split}_{role}_gt.json.gz`. Returns the episode file."""
    episodes = list(episodes)
    folder = Path(root) / split
    _check_unique(episodes, f"save_rxr({folder})")
    gt = _gt_dict(episodes, f"save_rxr({folder})")
    out = write_json_gz(folder / f"{split}_{role}.json.gz", {"episodes": [_episode_dict(e, True, role) for e in episodes]})
    if gt is not None:
        write_json_gz(folder / f"{split}_{role}_gt.json.gz", gt)
    return out


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower())


def build_instruction_vocab(episodes: Sequence[Episode], max_len: int = R2R_TOKEN_LENGTH) -> tuple[dict, list[Episode]]:
    """A VLN-CE-style instruction vocabulary and the episodes with instruction_tokens filled.

    Words are lower-cased alphanumeric runs and punctuation marks, sorted; index 0 is <PAD>,
    1 is <UNK>. Tokens are truncated/zero-padded to `max_len` (VLN-CE uses 200).
    Returns ({"word_list", "word2idx_dict", "itos", "stoi", "num_vocab", "UNK_INDEX",
    "PAD_INDEX"}, episodes).
    """
    words = sorted({w for e in episodes for w in _words(e.instruction.text)})
    itos = ["<PAD>", "<UNK>"] + words
    stoi = {w: i for i, w in enumerate(itos)}
    vocab = {
        "word_list": itos,
        "word2idx_dict": stoi,
        "itos": itos,
        "stoi": stoi,
        "num_vocab": len(itos),
        "UNK_INDEX": 1,
        "PAD_INDEX": 0,
    }
    out = []
    for e in episodes:
        toks = [stoi.get(w, 1) for w in _words(e.instruction.text)][:max_len]
        toks += [0] * (max_len - len(toks))
        out.append(_replace(e, instruction=_replace(e.instruction, tokens=tuple(toks))))
    return vocab, out


def _replace(obj: Any, **changes: Any) -> Any:
    return dataclasses.replace(obj, **changes)
