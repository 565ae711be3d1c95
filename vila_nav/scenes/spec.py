"""Scene specs: the plain-data description of one indoor scene (rooms, doorways, objects).

A scene is a set of axis-aligned rectangular rooms on the X-Z ground plane (Habitat/MiniWorld
world frame: Y up, floor at y = 0), doorways in the walls that two rooms share, and objects
standing on the floor. Specs are frozen dataclasses with an exact JSON round trip (files under
`sim/scenes/<scene_id>.json`, see vila_nav.scenes.store). No rendering or simulator code here.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1
DOOR_HEIGHT = 2.1  # m; the wall above a doorway is drawn as a lintel
WALL_HEIGHT = 2.74  # m; MiniWorld's default room height


class SceneSpecError(ValueError):
    """A scene spec (or its JSON) that is malformed or inconsistent."""


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SceneSpecError(f"{what} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RoomSpec:
    """One rectangular room: x in [min_x, max_x], z in [min_z, max_z] (m)."""

    room_id: str
    kind: str  # a key of vila_nav.scenes.vocabulary.ROOM_KINDS, e.g. "living room"
    min_x: float
    max_x: float
    min_z: float
    max_z: float

    def __post_init__(self) -> None:
        if not self.room_id:
            raise SceneSpecError("room_id must be a non-empty string")
        if not (self.max_x - self.min_x >= 1.0 and self.max_z - self.min_z >= 1.0):
            raise SceneSpecError(f"room {self.room_id}: each side must be >= 1 m, got {self}")

    @property
    def center(self) -> tuple[float, float]:
        """(x, z) of the room centre (m)."""
        return ((self.min_x + self.max_x) / 2, (self.min_z + self.max_z) / 2)

    @property
    def area(self) -> float:
        """Floor area (m^2)."""
        return (self.max_x - self.min_x) * (self.max_z - self.min_z)

    def contains(self, x: float, z: float, margin: float = 0.0) -> bool:
        """True if (x, z) lies inside the room shrunk by `margin` (m) on every side."""
        return (self.min_x + margin <= x <= self.max_x - margin) and (self.min_z + margin <= z <= self.max_z - margin)


@dataclass(frozen=True)
class DoorSpec:
    """A doorway (an opening without a door leaf) in the wall shared by two rooms.

    axis "x": the wall runs along X at z == line and the opening spans x in [lo, hi];
    axis "z": the wall runs along Z at x == line and the opening spans z in [lo, hi].
    """

    door_id: str
    rooms: tuple[str, str]
    axis: str
    line: float
    lo: float
    hi: float
    height: float = DOOR_HEIGHT

    def __post_init__(self) -> None:
        if self.axis not in ("x", "z"):
            raise SceneSpecError(f"door {self.door_id}: axis must be 'x' or 'z', got {self.axis!r}")
        if not self.hi - self.lo >= 0.5:
            raise SceneSpecError(f"door {self.door_id}: opening must be >= 0.5 m wide, got {self.lo}..{self.hi}")
        if len(self.rooms) != 2 or self.rooms[0] == self.rooms[1]:
            raise SceneSpecError(f"door {self.door_id}: must join two different rooms, got {self.rooms}")

    @property
    def width(self) -> float:
        """Opening width (m)."""
        return self.hi - self.lo

    @property
    def center(self) -> tuple[float, float]:
        """(x, z) of the middle of the opening (m)."""
        mid = (self.lo + self.hi) / 2
        return (mid, self.line) if self.axis == "x" else (self.line, mid)


@dataclass(frozen=True)
class ObjectSpec:
    """An object standing on the floor.

    kind: a key of vila_nav.scenes.vocabulary.OBJECT_KINDS; color: a key of COLORS.
    position: (x, z) of the footprint centre (m). yaw_deg: rotation about +Y (deg, counter-
    clockwise seen from above, Habitat's sense); the object's front is its local +Z.
    size: (width along local X, height, depth along local Z) (m).
    shape: collision footprint, "box" (yaw a multiple of 90 deg) or "circle" (diameter = width).
    """

    object_id: str
    kind: str
    color: str
    name: str  # how instructions call it, e.g. "blue sofa"
    room_id: str
    position: tuple[float, float]
    yaw_deg: float
    size: tuple[float, float, float]
    shape: str

    def __post_init__(self) -> None:
        if self.shape not in ("box", "circle"):
            raise SceneSpecError(f"object {self.object_id}: shape must be 'box' or 'circle', got {self.shape!r}")
        if self.shape == "box" and round(self.yaw_deg) % 90 != 0:
            raise SceneSpecError(f"object {self.object_id}: a box footprint needs yaw_deg a multiple of 90, got {self.yaw_deg}")
        if min(self.size) <= 0:
            raise SceneSpecError(f"object {self.object_id}: size must be positive, got {self.size}")

    @property
    def half_extents(self) -> tuple[float, float]:
        """World-aligned half sizes (hx, hz) of the footprint (m); radius twice for a circle."""
        w, _h, d = self.size
        if self.shape == "circle":
            return (w / 2, w / 2)
        if round(self.yaw_deg) % 180 == 0:
            return (w / 2, d / 2)
        return (d / 2, w / 2)

    @property
    def radius(self) -> float:
        """Radius of the footprint's bounding circle (m)."""
        hx, hz = self.half_extents
        return hx if self.shape == "circle" else math.hypot(hx, hz)


@dataclass(frozen=True)
class SceneSpec:
    """A whole scene. `seed` is what vila_nav.scenes.generator.generate_scene was given."""

    scene_id: str
    seed: int
    rooms: tuple[RoomSpec, ...]
    doors: tuple[DoorSpec, ...] = ()
    objects: tuple[ObjectSpec, ...] = ()
    wall_height: float = WALL_HEIGHT
    generator: str = ""  # generator name and version that produced it ("" when hand-written)
    schema_version: int = SCHEMA_VERSION
    _by_id: dict = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise SceneSpecError(f"scene {self.scene_id}: schema_version {self.schema_version} is not supported (expected {SCHEMA_VERSION})")
        if not self.rooms:
            raise SceneSpecError(f"scene {self.scene_id}: needs at least one room")
        ids = [r.room_id for r in self.rooms]
        if len(set(ids)) != len(ids):
            raise SceneSpecError(f"scene {self.scene_id}: duplicate room ids {ids}")
        by_id = {r.room_id: r for r in self.rooms}
        object.__setattr__(self, "_by_id", by_id)
        for d in self.doors:
            for rid in d.rooms:
                if rid not in by_id:
                    raise SceneSpecError(f"scene {self.scene_id}: door {d.door_id} names unknown room {rid!r}")
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            raise SceneSpecError(f"scene {self.scene_id}: object names must be unique, got {names}")
        for o in self.objects:
            if o.room_id not in by_id:
                raise SceneSpecError(f"scene {self.scene_id}: object {o.object_id} names unknown room {o.room_id!r}")

    # ---- queries ----------------------------------------------------------------------------
    def room(self, room_id: str) -> RoomSpec:
        """The room with this id (KeyError naming the known ids)."""
        try:
            return self._by_id[room_id]
        except KeyError:
            raise KeyError(f"scene {self.scene_id} has no room {room_id!r}; rooms: {sorted(self._by_id)}") from None

    def room_at(self, x: float, z: float) -> RoomSpec | None:
        """The room whose rectangle holds (x, z), or None outside every room."""
        for r in self.rooms:
            if r.contains(x, z):
                return r
        return None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_x, max_x, min_z, max_z) of all rooms (m)."""
        return (
            min(r.min_x for r in self.rooms),
            max(r.max_x for r in self.rooms),
            min(r.min_z for r in self.rooms),
            max(r.max_z for r in self.rooms),
        )

    def doors_of(self, room_id: str) -> list[DoorSpec]:
        """Doorways that open into this room."""
        return [d for d in self.doors if room_id in d.rooms]

    # ---- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return {
            "schema_version": self.schema_version,
            "scene_id": self.scene_id,
            "seed": self.seed,
            "generator": self.generator,
            "wall_height": self.wall_height,
            "rooms": [asdict(r) for r in self.rooms],
            "doors": [{**asdict(d), "rooms": list(d.rooms)} for d in self.doors],
            "objects": [{**asdict(o), "position": list(o.position), "size": list(o.size)} for o in self.objects],
        }

    def to_json(self) -> str:
        """Stable, human-readable JSON (one key order, 1-space indent)."""
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> "SceneSpec":
        """Parse and validate a dict produced by to_dict (SceneSpecError on anything wrong)."""
        if not isinstance(data, dict):
            raise SceneSpecError(f"a scene spec must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SceneSpecError(f"scene spec schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")
        try:
            rooms = tuple(
                RoomSpec(str(r["room_id"]), str(r["kind"]), *(_num(r[k], f"room {k}") for k in ("min_x", "max_x", "min_z", "max_z")))
                for r in data["rooms"]
            )
            doors = tuple(
                DoorSpec(
                    door_id=str(d["door_id"]),
                    rooms=(str(d["rooms"][0]), str(d["rooms"][1])),
                    axis=str(d["axis"]),
                    line=_num(d["line"], "door line"),
                    lo=_num(d["lo"], "door lo"),
                    hi=_num(d["hi"], "door hi"),
                    height=_num(d.get("height", DOOR_HEIGHT), "door height"),
                )
                for d in data.get("doors", [])
            )
            objects = tuple(
                ObjectSpec(
                    object_id=str(o["object_id"]),
                    kind=str(o["kind"]),
                    color=str(o["color"]),
                    name=str(o["name"]),
                    room_id=str(o["room_id"]),
                    position=(_num(o["position"][0], "object x"), _num(o["position"][1], "object z")),
                    yaw_deg=_num(o["yaw_deg"], "object yaw_deg"),
                    size=tuple(_num(v, "object size") for v in o["size"]),  # type: ignore[arg-type]
                    shape=str(o["shape"]),
                )
                for o in data.get("objects", [])
            )
            return cls(
                scene_id=str(data["scene_id"]),
                seed=int(data["seed"]),
                rooms=rooms,
                doors=doors,
                objects=objects,
                wall_height=_num(data.get("wall_height", WALL_HEIGHT), "wall_height"),
                generator=str(data.get("generator", "")),
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise SceneSpecError(f"scene spec is missing or has a malformed field: {exc!r}") from exc

    @classmethod
    def from_json(cls, text: str) -> "SceneSpec":
        """Parse JSON text (SceneSpecError on bad JSON or a bad spec)."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SceneSpecError(f"scene spec is not valid JSON: {exc}") from exc
        return cls.from_dict(data)
