"""Which named objects the camera sees: ground truth for a vision-side training target.

Pure numpy, geometry only (no rendering). An object counts as in view when at least one of its
probe points (the footprint centre and four points 80% of the way to the footprint's edge) is

- inside the horizontal field of view (|bearing from the heading| <= hfov / 2),
- at most max_range_m away (straight line, m), and
- not hidden behind a wall: the sight line from the camera to the point crosses no wall segment
  (doorway gaps are open; `wall_segments`).

Other objects do not occlude (furniture is lower than the camera; a table in front of a sofa
hides little of it), and height is ignored (every object stands on the floor and the camera
looks straight ahead). Probe points stay inside the footprint so that an object backed against
a wall is not hidden by the wall it touches.

The result maps each visible object's name (how instructions call it, e.g. "green box";
`ObjectSpec.name`, unique in a scene) to the straight-line distance (m) from the camera to its
footprint centre.
"""
from __future__ import annotations

import math

import numpy as np

from vila_nav.scenes.spec import ObjectSpec, SceneSpec

_PROBE_FRACTION = 0.8  # probe points sit this far from the footprint centre towards its edge
_EPS = 1e-9


def probe_points(obj: ObjectSpec) -> np.ndarray:
    """(5, 2) points (x, z) (m) that stand for the object: centre + four inside its footprint."""
    cx, cz = obj.position
    hx, hz = (_PROBE_FRACTION * h for h in obj.half_extents)
    return np.array([[cx, cz], [cx - hx, cz], [cx + hx, cz], [cx, cz - hz], [cx, cz + hz]], dtype=np.float64)


def sight_blocked(origin: np.ndarray, points: np.ndarray, walls: np.ndarray) -> np.ndarray:
    """(P,) bool: whether the segment origin -> points[i] crosses any wall segment.

    origin (2,), points (P, 2), walls (S, 2, 2) (m). Proper crossings only: segments that merely
    touch at an end point or run parallel do not block.
    """
    if len(walls) == 0 or len(points) == 0:
        return np.zeros(len(points), dtype=bool)
    d = points - origin  # (P, 2) sight directions
    a, b = walls[:, 0], walls[:, 1]  # (S, 2) wall ends
    e = b - a  # (S, 2) wall directions

    def cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    denom = cross(d[:, None, :], e[None, :, :])  # (P, S); 0 = parallel
    w = a[None, :, :] - origin  # (1, S, 2): origin -> wall start
    safe = np.where(np.abs(denom) < _EPS, 1.0, denom)
    t = cross(w, e[None]) / safe  # (P, S) position along the sight line, 0..1 inside it
    u = cross(w, d[:, None, :]) / safe  # (P, S) position along the wall, 0..1 inside it
    hit = (np.abs(denom) >= _EPS) & (t > _EPS) & (t < 1 - _EPS) & (u > _EPS) & (u < 1 - _EPS)
    return hit.any(axis=1)


def visible_objects(spec: SceneSpec, walls: np.ndarray, x: float, z: float, yaw: float, hfov_deg: float,
                    max_range_m: float = 8.0) -> dict[str, float]:
    """{object name: distance (m)} of the objects a camera at (x, z) facing `yaw` sees.

    walls: `vila_nav.scenes.collision.wall_segments(spec)` (S, 2, 2). yaw: rad, Habitat's
    convention (vila_nav.envs.pose; + = left). hfov_deg: horizontal field of view (deg).
    Distance: straight line from (x, z) to the footprint centre, rounded to the centimetre.
    """
    if not max_range_m > 0 or not 0 < hfov_deg < 360:
        raise ValueError(f"need max_range_m > 0 and hfov_deg in (0, 360), got {max_range_m}, {hfov_deg}")
    origin = np.array([x, z], dtype=np.float64)
    half_fov = math.radians(hfov_deg) / 2
    out: dict[str, float] = {}
    for obj in spec.objects:
        pts = probe_points(obj)  # (5, 2)
        rel = pts - origin
        dist = np.hypot(rel[:, 0], rel[:, 1])
        bearing = (np.arctan2(-rel[:, 0], -rel[:, 1]) - yaw + math.pi) % (2 * math.pi) - math.pi  # + = left
        candidate = (np.abs(bearing) <= half_fov) & (dist <= max_range_m)
        if not candidate.any():
            continue
        if sight_blocked(origin, pts[candidate], walls).all():
            continue
        out[obj.name] = round(float(dist[0]), 2)
    return out
