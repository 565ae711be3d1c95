"""Free-space grid and geodesic distances (scikit-fmm fast marching).

The grid covers the scene at `resolution` (default 5 cm); a cell is free when the agent fits at
its centre (CollisionWorld clearance >= radius: walls and footprints eroded by the agent radius).
The geodesic distance to a goal is the fast-marching travel distance from the goal over free
cells (scikit-fmm, second order), interpolated bilinearly at a query point; cells the goal
cannot reach hold +inf. A point that falls on a blocked cell is snapped to the nearest free cell
(plus the straight distance to it), as habitat snaps to its navmesh. Distance fields are cached
per goal (LRU), so metrics and the expert ask for them freely.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from vila_nav.scenes.collision import CollisionWorld

_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


class DistanceField:
    """Geodesic distance (m) from one goal to every cell, shape (H, W), +inf where unreachable,
    plus the steepest-descent successor of every cell (flat index; itself at a minimum)."""

    def __init__(self, grid: "NavGrid", goal: np.ndarray, values: np.ndarray):
        self.grid = grid
        self.goal = goal  # (x, z) the field was computed for (snapped onto free space)
        self.values = values
        h, w = values.shape
        padded = np.pad(values, 1, constant_values=np.inf)
        best = values.copy()
        succ = np.arange(h * w).reshape(h, w)
        rows, cols = np.mgrid[0:h, 0:w]
        for dr, dc in _NEIGHBOURS:
            cand = padded[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
            better = cand < best
            best = np.where(better, cand, best)
            succ = np.where(better, (rows + dr) * w + (cols + dc), succ)
        self.successor = succ.ravel()

    def at(self, point: np.ndarray) -> float:
        """Geodesic distance (m) from `point` (x, z) to the goal; inf if unreachable."""
        return self.grid.interpolate(self.values, point)

    def descend(self, point: np.ndarray, max_cells: int) -> np.ndarray:
        """Cell centres (K, 2) along steepest descent from the cell of `point` towards the goal."""
        g = self.grid
        r, c = g.snap_cell(point)
        idx = r * g.shape[1] + c
        out = [idx]
        for _ in range(max_cells):
            nxt = int(self.successor[idx])
            if nxt == idx:
                break
            idx = nxt
            out.append(idx)
        flat = np.array(out)
        return g.centers(flat // g.shape[1], flat % g.shape[1])


class NavGrid:
    """Free-space grid of one scene for an agent of `radius` (m).

    clearance: (H, W) clearance (m) at cell centres; cell (row, col) has its centre at
    x = origin[0] + (col + 0.5) * resolution, z = origin[1] + (row + 0.5) * resolution.
    """

    def __init__(self, clearance: np.ndarray, origin: tuple[float, float], resolution: float, radius: float, cache_size: int = 32):
        self.clearance = clearance
        self.origin = (float(origin[0]), float(origin[1]))
        self.resolution = float(resolution)
        self.radius = float(radius)
        self.free = clearance >= radius  # (H, W) bool
        self.shape = clearance.shape
        self._cache_size = cache_size
        self._fields: OrderedDict[tuple[float, float], DistanceField] = OrderedDict()
        self._nearest_free: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    @classmethod
    def from_world(cls, world: CollisionWorld, bounds: tuple[float, float, float, float], resolution: float, radius: float) -> "NavGrid":
        """Grid over bounds (min_x, max_x, min_z, max_z) plus one cell of padding."""
        min_x, max_x, min_z, max_z = bounds
        ox, oz = min_x - resolution, min_z - resolution
        w = int(math.ceil((max_x - ox) / resolution)) + 1
        h = int(math.ceil((max_z - oz) / resolution)) + 1
        xs = ox + (np.arange(w) + 0.5) * resolution
        zs = oz + (np.arange(h) + 0.5) * resolution
        gx, gz = np.meshgrid(xs, zs)
        clearance = world.clearance(np.stack([gx.ravel(), gz.ravel()], axis=1)).reshape(h, w)
        return cls(clearance, (ox, oz), resolution, radius)

    def with_radius(self, radius: float) -> "NavGrid":
        """The same grid for a different agent radius (shares the clearance map)."""
        return NavGrid(self.clearance, self.origin, self.resolution, radius, self._cache_size)

    # ---- cells ----------------------------------------------------------------------------
    def cell(self, point: np.ndarray) -> tuple[int, int]:
        """(row, col) of the cell holding `point` (x, z), clipped to the grid."""
        x, z = float(point[0]), float(point[1])
        col = int(np.clip(math.floor((x - self.origin[0]) / self.resolution), 0, self.shape[1] - 1))
        row = int(np.clip(math.floor((z - self.origin[1]) / self.resolution), 0, self.shape[0] - 1))
        return row, col

    def centers(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(K, 2) cell centres (x, z) of cells (rows, cols)."""
        rows, cols = np.asarray(rows), np.asarray(cols)
        return np.stack([self.origin[0] + (cols + 0.5) * self.resolution, self.origin[1] + (rows + 0.5) * self.resolution], axis=-1)

    def snap_cell(self, point: np.ndarray) -> tuple[int, int]:
        """The free cell nearest to the cell of `point` (itself when free)."""
        r, c = self.cell(point)
        if self.free[r, c]:
            return r, c
        if self._nearest_free is None:
            from scipy import ndimage

            if not self.free.any():
                raise ValueError("the free-space grid has no free cell (scene too small for the agent?)")
            self._nearest_free = ndimage.distance_transform_edt(~self.free, return_distances=False, return_indices=True)
        return int(self._nearest_free[0, r, c]), int(self._nearest_free[1, r, c])

    def is_free(self, point: np.ndarray) -> bool:
        """True if the cell holding `point` is free."""
        r, c = self.cell(point)
        return bool(self.free[r, c])

    def components(self) -> np.ndarray:
        """(H, W) int labels of 8-connected free regions (0 = blocked), largest region first = 1."""
        if self._labels is None:
            from scipy import ndimage

            labels, n = ndimage.label(self.free, structure=np.ones((3, 3)))
            sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
            order = np.argsort(-sizes, kind="stable")  # label k -> rank
            remap = np.zeros(n + 1, dtype=np.int64)
            remap[1 + order] = np.arange(1, n + 1)
            self._labels = remap[labels]
        return self._labels

    def line_free(self, a: np.ndarray, b: np.ndarray, skip: float = 0.0) -> bool:
        """True if every cell along segment a -> b (sampled every half cell) is free, ignoring the
        first `skip` metres (the agent's own cell may be blocked by discretisation)."""
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        length = float(np.hypot(*(b - a)))
        n = max(1, int(math.ceil(length / (self.resolution / 2))))
        ts = np.linspace(0.0, 1.0, n + 1)
        if length > 0:
            ts = ts[ts * length >= skip]
        pts = a[None] + ts[:, None] * (b - a)[None]
        cols = np.clip(np.floor((pts[:, 0] - self.origin[0]) / self.resolution).astype(int), 0, self.shape[1] - 1)
        rows = np.clip(np.floor((pts[:, 1] - self.origin[1]) / self.resolution).astype(int), 0, self.shape[0] - 1)
        return bool(self.free[rows, cols].all())

    def clearance_at(self, points: np.ndarray) -> np.ndarray:
        """(N,) clearance (m) at (N, 2) points (x, z), bilinear between cell centres (clamped at
        the grid's border)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        h, w = self.shape
        fx = np.clip((pts[:, 0] - self.origin[0]) / self.resolution - 0.5, 0.0, w - 1.0)
        fz = np.clip((pts[:, 1] - self.origin[1]) / self.resolution - 0.5, 0.0, h - 1.0)
        c0 = np.minimum(np.floor(fx).astype(int), max(w - 2, 0))
        r0 = np.minimum(np.floor(fz).astype(int), max(h - 2, 0))
        c1, r1 = np.minimum(c0 + 1, w - 1), np.minimum(r0 + 1, h - 1)
        tx, tz = fx - c0, fz - r0
        g = self.clearance
        top = g[r0, c0] * (1 - tx) + g[r0, c1] * tx
        bottom = g[r1, c0] * (1 - tx) + g[r1, c1] * tx
        return top * (1 - tz) + bottom * tz

    def segment_clearance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Smallest clearance (m) along segment a -> b (x, z), sampled every half cell."""
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        n = max(1, int(math.ceil(float(np.hypot(*(b - a))) / (self.resolution / 2))))
        ts = np.linspace(0.0, 1.0, n + 1)[1:]
        return float(self.clearance_at(a[None] + ts[:, None] * (b - a)[None]).min())

    # ---- geodesics ------------------------------------------------------------------------
    def field(self, goal: np.ndarray) -> DistanceField:
        """Distance field to `goal` (x, z) (cached; the goal snaps to free space first)."""
        key = (round(float(goal[0]), 4), round(float(goal[1]), 4))
        hit = self._fields.get(key)
        if hit is not None:
            self._fields.move_to_end(key)
            return hit
        import skfmm

        g = np.array(key)
        r, c = self.cell(g)
        if not self.free[r, c]:
            g = self.centers(*self.snap_cell(g))
        rows, cols = np.mgrid[0 : self.shape[0], 0 : self.shape[1]]
        centres = self.centers(rows, cols)
        r0 = self.resolution  # zero contour: a circle of one cell around the goal
        phi = np.hypot(centres[..., 0] - g[0], centres[..., 1] - g[1]) - r0
        travel = skfmm.distance(np.ma.MaskedArray(phi, ~self.free), dx=self.resolution)
        values = np.where(np.ma.getmaskarray(travel), np.inf, np.ma.getdata(travel) + r0)
        values = np.where(self.free, values, np.inf)
        out = DistanceField(self, g, values)
        self._fields[key] = out
        if len(self._fields) > self._cache_size:
            self._fields.popitem(last=False)
        return out

    def interpolate(self, values: np.ndarray, point: np.ndarray) -> float:
        """Bilinear value of a field at `point` (x, z); near blocked cells, the best finite
        corner plus the straight distance to it; on a blocked cell, the nearest free cell's value
        plus the straight distance to it; inf if none is finite."""
        p = np.asarray(point, dtype=np.float64)[:2]
        fx = (p[0] - self.origin[0]) / self.resolution - 0.5
        fz = (p[1] - self.origin[1]) / self.resolution - 0.5
        c0, r0 = int(math.floor(fx)), int(math.floor(fz))
        h, w = self.shape
        if 0 <= r0 < h - 1 and 0 <= c0 < w - 1:
            quad = values[r0 : r0 + 2, c0 : c0 + 2]
            if np.isfinite(quad).all():
                tx, tz = fx - c0, fz - r0
                top = quad[0, 0] * (1 - tx) + quad[0, 1] * tx
                bottom = quad[1, 0] * (1 - tx) + quad[1, 1] * tx
                return float(top * (1 - tz) + bottom * tz)
            rr, cc = np.mgrid[r0 : r0 + 2, c0 : c0 + 2]
            finite = np.isfinite(quad)
            if finite.any():
                d = np.hypot(*(self.centers(rr[finite], cc[finite]) - p).T)
                return float((quad[finite] + d).min())
        r, c = self.snap_cell(p)
        v = values[r, c]
        if not np.isfinite(v):
            return math.inf
        return float(v + np.hypot(*(self.centers(r, c) - p)))

    def geodesic(self, a: np.ndarray, b: np.ndarray) -> float:
        """Geodesic distance (m) from a (x, z) to b (x, z); inf if unreachable."""
        return self.field(b).at(a)
