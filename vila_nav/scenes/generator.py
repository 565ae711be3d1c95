"""Procedural multi-room indoor scenes: `generate_scene(seed) -> SceneSpec` (pure, seeded).

Layouts are either a grid of 2-6 rooms or a hallway with 3-6 rooms along it. Neighbouring rooms
share walls; doorways join them so every room is reachable (a random spanning tree plus a few
extra doorways). Each room gets a kind (distinct within a scene), its typical furniture against
the walls and a few coloured landmarks, with a clear zone in front of every doorway and a
free-space check that the agent (radius 0.1 m plus a planning margin) can still reach every
room. The same seed gives the same spec on every machine (numpy PCG64; values rounded to cm).
"""
from __future__ import annotations

import numpy as np

from vila_nav.scenes.collision import CollisionWorld
from vila_nav.scenes.spec import DoorSpec, ObjectSpec, RoomSpec, SceneSpec
from vila_nav.scenes.vocabulary import LANDMARKS, OBJECT_KINDS, ROOM_KINDS

GENERATOR = "vila_nav.scenes.generator/1"

DOOR_WIDTH = (0.9, 1.2)  # m
DOOR_MARGIN = 0.35  # m from a doorway to the corner of either room
DOOR_CLEAR_DEPTH = 1.0  # m kept free of objects in front of a doorway, on both sides
OBJECT_GAP = 0.5  # m between footprints: room for the agent (0.2 m wide) plus planning margin
FREE_WALL_GAP = 0.6  # m between a free-standing object and the walls
PASSAGE_CLEARANCE = 0.2  # m: agent radius 0.1 + expert margin 0.1 used by the reachability check
CHECK_RESOLUTION = 0.1  # m grid for the reachability check


def scene_id_for(seed: int) -> str:
    """The id of the scene a seed generates: 'house_0007' for seed 7."""
    if seed < 0:
        raise ValueError(f"scene seeds are >= 0, got {seed}")
    return f"house_{seed:04d}"


def generate_scene(seed: int, scene_id: str | None = None) -> SceneSpec:
    """Generate the scene for `seed` (deterministic). scene_id defaults to scene_id_for(seed)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    seed = int(seed)
    sid = scene_id if scene_id is not None else scene_id_for(seed)
    rng = np.random.default_rng([seed, 0x5CE7E])
    for _attempt in range(50):
        rooms, pairs = (_hallway_layout if rng.random() < 0.5 else _grid_layout)(rng)
        doors = _place_doors(rng, rooms, pairs)
        bare = SceneSpec(scene_id=sid, seed=seed, rooms=rooms, doors=doors, generator=GENERATOR)
        if not _reachable(bare):
            continue
        objects = _furnish(rng, bare)
        return SceneSpec(scene_id=sid, seed=seed, rooms=rooms, doors=doors, objects=objects, generator=GENERATOR)
    raise RuntimeError(f"could not generate a connected scene for seed {seed}")  # pragma: no cover


# ---- layout ---------------------------------------------------------------------------------
def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


def _partition(rng: np.random.Generator, length: float, n: int, min_w: float) -> list[float]:
    """Cut positions 0 = c0 < c1 < ... < cn = length with every piece >= min_w (rounded to 0.1 m)."""
    spare = length - n * min_w
    widths = min_w + rng.dirichlet(np.ones(n)) * spare
    cuts = [0.0]
    for w in widths[:-1]:
        cuts.append(_r(cuts[-1] + w, 1))
    cuts.append(_r(length, 1))
    return cuts


def _grid_layout(rng: np.random.Generator) -> tuple[tuple[RoomSpec, ...], list[tuple[int, int]]]:
    ncols, nrows = int(rng.integers(2, 4)), int(rng.integers(1, 3))
    xs = np.round(np.concatenate([[0.0], np.cumsum(np.round(rng.uniform(3.0, 5.5, ncols), 1))]), 2)
    zs = np.round(np.concatenate([[0.0], np.cumsum(np.round(rng.uniform(3.0, 5.0, nrows), 1))]), 2)
    cells = [(i, j) for j in range(nrows) for i in range(ncols)]
    if len(cells) >= 4 and rng.random() < 0.4:  # drop a corner: L-shaped plans, still connected
        corners = [(i, j) for (i, j) in cells if i in (0, ncols - 1) and j in (0, nrows - 1)]
        cells.remove(corners[int(rng.integers(len(corners)))])
    kinds = [k for k in ROOM_KINDS if k != "hallway"]
    order = rng.permutation(len(kinds))
    rooms = tuple(
        RoomSpec(f"r{n}", kinds[order[n]], _r(xs[i]), _r(xs[i + 1]), _r(zs[j]), _r(zs[j + 1]))
        for n, (i, j) in enumerate(cells)
    )
    return rooms, _spanning_pairs(rng, rooms, extra_p=0.3)


def _hallway_layout(rng: np.random.Generator) -> tuple[tuple[RoomSpec, ...], list[tuple[int, int]]]:
    length = _r(rng.uniform(7.0, 12.0), 1)
    hall_d, top_d, bot_d = (_r(v, 1) for v in (rng.uniform(1.6, 2.2), rng.uniform(3.0, 4.5), rng.uniform(3.0, 4.5)))
    n_top = min(int(rng.integers(2, 4)), int(length // 2.8))
    n_bot = min(int(rng.integers(1, 4)), int(length // 2.8))
    top, bot = _partition(rng, length, n_top, 2.8), _partition(rng, length, n_bot, 2.8)
    kinds = [k for k in ROOM_KINDS if k != "hallway"]
    order = rng.permutation(len(kinds))
    rooms = [RoomSpec("r0", "hallway", 0.0, length, top_d, _r(top_d + hall_d))]
    for a, b in zip(top[:-1], top[1:]):
        rooms.append(RoomSpec(f"r{len(rooms)}", kinds[order[len(rooms) - 1]], a, b, 0.0, top_d))
    for a, b in zip(bot[:-1], bot[1:]):
        rooms.append(RoomSpec(f"r{len(rooms)}", kinds[order[len(rooms) - 1]], a, b, _r(top_d + hall_d), _r(top_d + hall_d + bot_d)))
    rooms_t = tuple(rooms)
    # Every room opens onto the hallway; neighbours on the same side are joined now and then.
    pairs = [(0, k) for k in range(1, len(rooms_t))]
    for a, b in _adjacent_pairs(rooms_t):
        if 0 not in (a, b) and rng.random() < 0.25:
            pairs.append((a, b))
    return rooms_t, pairs


def _shared_wall(a: RoomSpec, b: RoomSpec) -> tuple[str, float, float, float] | None:
    """(axis, line, lo, hi) of the wall segment rooms a and b share, or None."""
    eps = 1e-6
    for line_a, line_b in ((a.max_x, b.min_x), (a.min_x, b.max_x)):
        if abs(line_a - line_b) < eps:
            lo, hi = max(a.min_z, b.min_z), min(a.max_z, b.max_z)
            if hi - lo > eps:
                return ("z", line_a, lo, hi)
    for line_a, line_b in ((a.max_z, b.min_z), (a.min_z, b.max_z)):
        if abs(line_a - line_b) < eps:
            lo, hi = max(a.min_x, b.min_x), min(a.max_x, b.max_x)
            if hi - lo > eps:
                return ("x", line_a, lo, hi)
    return None


def _adjacent_pairs(rooms: tuple[RoomSpec, ...]) -> list[tuple[int, int]]:
    """Room index pairs whose shared wall is long enough for a doorway."""
    need = DOOR_WIDTH[0] + 2 * DOOR_MARGIN
    out = []
    for i in range(len(rooms)):
        for j in range(i + 1, len(rooms)):
            wall = _shared_wall(rooms[i], rooms[j])
            if wall is not None and wall[3] - wall[2] >= need:
                out.append((i, j))
    return out


def _spanning_pairs(rng: np.random.Generator, rooms: tuple[RoomSpec, ...], extra_p: float) -> list[tuple[int, int]]:
    """A random spanning tree of the adjacency graph plus each other adjacency with prob extra_p."""
    edges = _adjacent_pairs(rooms)
    order = rng.permutation(len(edges))
    parent = list(range(len(rooms)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    chosen = []
    for e in order:
        a, b = edges[e]
        if root(a) != root(b):
            parent[root(a)] = root(b)
            chosen.append((a, b))
        elif rng.random() < extra_p:
            chosen.append((a, b))
    return sorted(chosen)


def _place_doors(rng: np.random.Generator, rooms: tuple[RoomSpec, ...], pairs: list[tuple[int, int]]) -> tuple[DoorSpec, ...]:
    doors = []
    for a, b in pairs:
        wall = _shared_wall(rooms[a], rooms[b])
        assert wall is not None, (a, b)
        axis, line, lo, hi = wall
        width = min(rng.uniform(*DOOR_WIDTH), hi - lo - 2 * DOOR_MARGIN)
        centre = rng.uniform(lo + DOOR_MARGIN + width / 2, hi - DOOR_MARGIN - width / 2)
        doors.append(
            DoorSpec(f"d{len(doors)}", (rooms[a].room_id, rooms[b].room_id), axis, _r(line), _r(centre - width / 2), _r(centre + width / 2))
        )
    return tuple(doors)


# ---- furniture and landmarks ----------------------------------------------------------------
def _door_zones(spec: SceneSpec) -> list[tuple[float, float, float, float]]:
    """Rectangles [min_x, min_z, max_x, max_z] kept clear in front of each doorway (both sides)."""
    zones = []
    for d in spec.doors:
        lo, hi = d.lo - 0.3, d.hi + 0.3
        if d.axis == "x":
            zones.append((lo, d.line - DOOR_CLEAR_DEPTH, hi, d.line + DOOR_CLEAR_DEPTH))
        else:
            zones.append((d.line - DOOR_CLEAR_DEPTH, lo, d.line + DOOR_CLEAR_DEPTH, hi))
    return zones


def _rect(o: ObjectSpec, grow: float = 0.0) -> tuple[float, float, float, float]:
    hx, hz = o.half_extents
    x, z = o.position
    return (x - hx - grow, z - hz - grow, x + hx + grow, z + hz + grow)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class _ReachCheck:
    """Coarse-grid reachability for one bare layout; objects are added incrementally.

    The agent with PASSAGE_CLEARANCE must reach every room from every other, and few free cells
    may be cut off (pockets behind furniture)."""

    def __init__(self, bare: SceneSpec):
        min_x, max_x, min_z, max_z = bare.bounds
        xs = np.arange(min_x + CHECK_RESOLUTION / 2, max_x, CHECK_RESOLUTION)
        zs = np.arange(min_z + CHECK_RESOLUTION / 2, max_z, CHECK_RESOLUTION)
        self.gx, self.gz = np.meshgrid(xs, zs)  # (H, W): rows are z, columns are x
        self.points = np.stack([self.gx.ravel(), self.gz.ravel()], axis=1)
        self.clearance = CollisionWorld.from_scene(bare).clearance(self.points)  # walls and floors only
        self.rooms = bare.rooms
        self.inside = [
            ((self.gx >= r.min_x) & (self.gx <= r.max_x) & (self.gz >= r.min_z) & (self.gz <= r.max_z)) for r in bare.rooms
        ]

    def with_object(self, obj: ObjectSpec) -> np.ndarray:
        """Clearance with `obj` added (the current objects included)."""
        one = CollisionWorld(np.zeros((0, 2, 2)), *self._footprint(obj), np.array([[-1e9, -1e9, 1e9, 1e9]]))
        return np.minimum(self.clearance, one.clearance(self.points))

    @staticmethod
    def _footprint(obj: ObjectSpec) -> tuple[np.ndarray, np.ndarray]:
        hx, hz = obj.half_extents
        x, z = obj.position
        if obj.shape == "box":
            return np.array([[x - hx, z - hz, x + hx, z + hz]]), np.zeros((0, 3))
        return np.zeros((0, 4)), np.array([[x, z, hx]])

    def ok(self, clearance: np.ndarray) -> bool:
        from scipy import ndimage

        free = (clearance >= PASSAGE_CLEARANCE).reshape(self.gx.shape)
        labels, n = ndimage.label(free, structure=np.ones((3, 3)))
        if n == 0:
            return False
        sizes = np.bincount(labels.ravel())[1:]
        main = 1 + int(sizes.argmax())
        if sizes.max() < 0.95 * free.sum():
            return False
        cell_area = CHECK_RESOLUTION**2
        return all((labels[inside] == main).sum() * cell_area >= 1.0 for inside in self.inside)


def _reachable(spec: SceneSpec) -> bool:
    """True if the agent reaches every room of `spec` (see _ReachCheck)."""
    check = _ReachCheck(spec)
    clearance = check.clearance
    for o in spec.objects:
        clearance = np.minimum(clearance, check.with_object(o))
    return check.ok(clearance)


def _furnish(rng: np.random.Generator, bare: SceneSpec) -> tuple[ObjectSpec, ...]:
    zones = _door_zones(bare)
    check = _ReachCheck(bare)
    objects: list[ObjectSpec] = []
    names: set[str] = set()
    for room in bare.rooms:
        kind = ROOM_KINDS[room.kind]
        n_furniture = min(len(kind.furniture), int(rng.integers(1, 3)) + (1 if room.area > 16 else 0))
        # The room's signature piece first (bed, fridge, sofa ...), then a random pick of the rest.
        rest = list(kind.furniture[1:])
        picks = [kind.furniture[0]] + [rest[i] for i in rng.permutation(len(rest))[: n_furniture - 1]]
        picks += [LANDMARKS[i] for i in rng.choice(len(LANDMARKS), size=int(rng.integers(0, 3)), replace=False)]
        for kind_name in picks:
            obj = _place_object(rng, bare, room, kind_name, len(objects), objects, zones, names)
            if obj is None:
                continue
            clearance = check.with_object(obj)
            if check.ok(clearance):
                check.clearance = clearance
                objects.append(obj)
                names.add(obj.name)
    return tuple(objects)


def _place_object(
    rng: np.random.Generator,
    spec: SceneSpec,
    room: RoomSpec,
    kind_name: str,
    index: int,
    placed: list[ObjectSpec],
    zones: list[tuple[float, float, float, float]],
    names: set[str],
) -> ObjectSpec | None:
    kind = OBJECT_KINDS[kind_name]
    colors = [c for c in kind.colors if kind.display_name(c) not in names]
    if not colors:
        return None
    color = colors[int(rng.integers(len(colors)))]
    size = tuple(_r(rng.uniform(lo, hi)) if hi > lo else lo for lo, hi in zip(kind.size_min, kind.size_max))
    w, _h, d = size
    for _try in range(40):
        if kind.placement == "wall":
            # Walls: 0 north (z = min_z), 1 south (z = max_z), 2 west (x = min_x), 3 east (x = max_x).
            # The front (local +Z) faces into the room: yaw 0 faces +Z, 180 -Z, 90 +X, 270 -X.
            wall = int(rng.integers(4))
            if wall < 2:
                span = (room.min_x + w / 2 + 0.05, room.max_x - w / 2 - 0.05)
                off = d / 2 + 0.03
                z = room.min_z + off if wall == 0 else room.max_z - off
                if span[1] <= span[0]:
                    continue
                x = rng.uniform(*span)
                yaw = 0.0 if wall == 0 else 180.0
            else:
                span = (room.min_z + w / 2 + 0.05, room.max_z - w / 2 - 0.05)
                off = d / 2 + 0.03
                x = room.min_x + off if wall == 2 else room.max_x - off
                if span[1] <= span[0]:
                    continue
                z = rng.uniform(*span)
                yaw = 90.0 if wall == 2 else 270.0
        else:
            reach = max(w, d) / 2 + FREE_WALL_GAP
            if room.max_x - room.min_x <= 2 * reach or room.max_z - room.min_z <= 2 * reach:
                return None
            x = rng.uniform(room.min_x + reach, room.max_x - reach)
            z = rng.uniform(room.min_z + reach, room.max_z - reach)
            yaw = float(90 * int(rng.integers(4))) if kind.shape == "box" else float(int(rng.integers(360)))
        obj = ObjectSpec(
            object_id=f"o{index}",
            kind=kind_name,
            color=color,
            name=kind.display_name(color),
            room_id=room.room_id,
            position=(_r(x), _r(z)),
            yaw_deg=yaw,
            size=size,  # type: ignore[arg-type]
            shape=kind.shape,
        )
        box = _rect(obj)
        if not (room.min_x <= box[0] and box[2] <= room.max_x and room.min_z <= box[1] and box[3] <= room.max_z):
            continue
        if any(_overlap(box, z_) for z_ in zones):
            continue
        if any(_overlap(_rect(obj, OBJECT_GAP / 2), _rect(o, OBJECT_GAP / 2)) for o in placed):
            continue
        return obj
    return None


def describe(spec: SceneSpec) -> str:
    """One line per room: kind, size and what stands in it (for logs and the README)."""
    lines = [f"{spec.scene_id} (seed {spec.seed}): {len(spec.rooms)} rooms, {len(spec.doors)} doorways, {len(spec.objects)} objects"]
    for r in spec.rooms:
        things = ", ".join(o.name for o in spec.objects if o.room_id == r.room_id) or "empty"
        lines.append(f"  {r.room_id} {r.kind:<12} {r.max_x - r.min_x:4.1f} x {r.max_z - r.min_z:4.1f} m: {things}")
    return "\n".join(lines)

