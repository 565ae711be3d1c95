"""Collision geometry of a scene: wall segments (with doorway gaps), object footprints, floor.

Pure numpy. Everything lives in the X-Z ground plane; points are (x, z) in metres. The agent is a
circle of radius r: a position is free when it lies on the floor of some room and its clearance
(distance to the nearest wall or object footprint) is >= r, the same test MiniWorld uses
(`intersect`: blocked when the distance is < r). The motion model, the free-space grid and the
scene generator all use this one definition, so what the expert plans is what the agent can do.
"""
from __future__ import annotations

import numpy as np

from vila_nav.scenes.spec import SceneSpec

_CHUNK = 8192  # points per vectorised batch (bounds memory at ~N x features x 8 bytes)


def wall_segments(spec: SceneSpec) -> np.ndarray:
    """Wall segments minus doorway openings: (S, 2, 2) float64, [[x0, z0], [x1, z1]] (m).

    Every room contributes its four walls; a wall two rooms share appears twice (harmless).
    """
    segs: list[tuple[tuple[float, float], tuple[float, float]]] = []
    for room in spec.rooms:
        doors = spec.doors_of(room.room_id)
        # (axis, line, span_lo, span_hi): walls along X at z = min_z / max_z, along Z at x = min_x / max_x
        walls = (
            ("x", room.min_z, room.min_x, room.max_x),
            ("x", room.max_z, room.min_x, room.max_x),
            ("z", room.min_x, room.min_z, room.max_z),
            ("z", room.max_x, room.min_z, room.max_z),
        )
        for axis, line, lo, hi in walls:
            gaps = sorted((d.lo, d.hi) for d in doors if d.axis == axis and abs(d.line - line) < 1e-6)
            cursor = lo
            pieces = []
            for g_lo, g_hi in gaps:
                if g_lo > cursor:
                    pieces.append((cursor, min(g_lo, hi)))
                cursor = max(cursor, g_hi)
            if cursor < hi:
                pieces.append((cursor, hi))
            for a, b in pieces:
                if b - a < 1e-6:
                    continue
                if axis == "x":
                    segs.append(((a, line), (b, line)))
                else:
                    segs.append(((line, a), (line, b)))
    return np.asarray(segs, dtype=np.float64).reshape(-1, 2, 2)


class CollisionWorld:
    """Clearance queries against walls, box footprints and circle footprints.

    segments: (S, 2, 2) wall segments; boxes: (B, 4) [min_x, min_z, max_x, max_z];
    circles: (C, 3) [x, z, radius]; floors: (R, 4) room rectangles [min_x, min_z, max_x, max_z].
    """

    def __init__(self, segments: np.ndarray, boxes: np.ndarray, circles: np.ndarray, floors: np.ndarray):
        self.segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2, 2)
        self.boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        self.circles = np.asarray(circles, dtype=np.float64).reshape(-1, 3)
        self.floors = np.asarray(floors, dtype=np.float64).reshape(-1, 4)
        if len(self.floors) == 0:
            raise ValueError("a collision world needs at least one floor rectangle")
        self._seg_a = self.segments[:, 0]  # (S, 2)
        self._seg_ab = self.segments[:, 1] - self.segments[:, 0]  # (S, 2)
        self._seg_len2 = np.maximum((self._seg_ab**2).sum(-1), 1e-12)  # (S,)

    @classmethod
    def from_scene(cls, spec: SceneSpec, objects: bool = True) -> "CollisionWorld":
        """Walls, floors and (unless objects=False) object footprints of a scene spec."""
        boxes, circles = [], []
        for o in spec.objects if objects else ():
            x, z = o.position
            hx, hz = o.half_extents
            if o.shape == "box":
                boxes.append((x - hx, z - hz, x + hx, z + hz))
            else:
                circles.append((x, z, hx))
        floors = [(r.min_x, r.min_z, r.max_x, r.max_z) for r in spec.rooms]
        return cls(wall_segments(spec), np.array(boxes), np.array(circles), np.array(floors))

    # ---- queries ----------------------------------------------------------------------------
    def on_floor(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: inside some room rectangle (borders included)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        f = self.floors
        inside = (
            (p[:, None, 0] >= f[None, :, 0]) & (p[:, None, 0] <= f[None, :, 2])
            & (p[:, None, 1] >= f[None, :, 1]) & (p[:, None, 1] <= f[None, :, 3])
        )
        return inside.any(axis=1)

    def nearest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance (N,) to the nearest wall/footprint surface and that surface point (N, 2).

        Distances are <= 0 inside a footprint (minus the depth); +inf with no geometry at all.
        """
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        dist = np.empty(len(p))
        closest = np.empty((len(p), 2))
        for s in range(0, len(p), _CHUNK):
            dist[s : s + _CHUNK], closest[s : s + _CHUNK] = self._nearest(p[s : s + _CHUNK])
        return dist, closest

    def _nearest(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        best = np.full(len(p), np.inf)
        point = np.zeros((len(p), 2))
        rows = np.arange(len(p))
        if len(self.segments):
            t = np.clip(((p[:, None, :] - self._seg_a[None]) * self._seg_ab[None]).sum(-1) / self._seg_len2[None], 0.0, 1.0)
            c = self._seg_a[None] + t[..., None] * self._seg_ab[None]  # (N, S, 2)
            d = np.sqrt(((p[:, None, :] - c) ** 2).sum(-1))  # (N, S)
            k = d.argmin(1)
            best, point = d[rows, k], c[rows, k]
        if len(self.boxes):
            lo, hi = self.boxes[None, :, :2], self.boxes[None, :, 2:]
            c = np.clip(p[:, None, :], lo, hi)  # closest point of the filled box, (N, B, 2)
            d = np.sqrt(((p[:, None, :] - c) ** 2).sum(-1))
            inside = d == 0.0
            if inside.any():  # inside a footprint: negative depth, closest point on the nearest side
                q = np.broadcast_to(p[:, None, :], c.shape)
                gaps = np.concatenate([q - lo, hi - q], axis=-1)  # (N, B, 4): x-lo_x, z-lo_z, hi_x-x, hi_z-z
                side = gaps.argmin(-1)
                d = np.where(inside, -gaps.min(-1), d)
                px = np.where(side == 0, lo[..., 0], np.where(side == 2, hi[..., 0], q[..., 0]))
                pz = np.where(side == 1, lo[..., 1], np.where(side == 3, hi[..., 1], q[..., 1]))
                c = np.where(inside[..., None], np.stack([px, pz], axis=-1), c)
            k = d.argmin(1)
            better = d[rows, k] < best
            best = np.where(better, d[rows, k], best)
            point = np.where(better[:, None], c[rows, k], point)
        if len(self.circles):
            v = p[:, None, :] - self.circles[None, :, :2]
            n = np.sqrt((v**2).sum(-1))
            d = n - self.circles[None, :, 2]
            u = v / np.maximum(n, 1e-12)[..., None]
            c = self.circles[None, :, :2] + u * self.circles[None, :, 2:3]
            k = d.argmin(1)
            better = d[rows, k] < best
            best = np.where(better, d[rows, k], best)
            point = np.where(better[:, None], c[rows, k], point)
        return best, point

    def clearance(self, points: np.ndarray) -> np.ndarray:
        """(N,) distance (m) to the nearest wall/footprint; -1 off every floor; <= 0 inside a footprint."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        dist, _ = self.nearest(p)
        return np.where(self.on_floor(p), dist, -1.0)

    def is_free(self, point: np.ndarray, radius: float) -> bool:
        """True if a circle of `radius` (m) centred at `point` (x, z) touches nothing."""
        return bool(self.clearance(point)[0] >= radius)
