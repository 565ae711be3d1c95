"""Top-down maps for trajectory plots: an RGB image plus the world -> pixel mapping.

Image axes: column = +X to the right, row = +Z downwards, so an agent at yaw 0 (facing -Z)
points up the image and left turns look like left turns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TopDownMap:
    """image: (H, W, 3) uint8 RGB; origin: world (x, z) of the image's top-left corner (m);
    meters_per_pixel: scale."""

    image: np.ndarray
    origin: tuple[float, float]
    meters_per_pixel: float

    def world_to_pixel(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) int pixel [col, row] of world points given as (N, 3) [x, y, z] or (N, 2) [x, z]."""
        p = np.asarray(points, dtype=np.float64)
        p = p.reshape(-1, p.shape[-1])
        xz = p[:, [0, 2]] if p.shape[1] == 3 else p[:, :2]
        px = (xz - np.asarray(self.origin)) / self.meters_per_pixel
        return np.floor(px).astype(np.int64)

    def pixel_to_world(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) world (x, z) of pixel centres [col, row]."""
        q = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        return (q + 0.5) * self.meters_per_pixel + np.asarray(self.origin)


def draw_scene_map(spec, free: np.ndarray | None = None, free_origin: tuple[float, float] = (0.0, 0.0), free_resolution: float = 0.05, meters_per_pixel: float = 0.025) -> TopDownMap:
    """Draw a scene spec: room floors tinted by kind, walls, doorway gaps, objects in their colours,
    room names; if `free` (H, W) bool is given, cells where the agent does not fit are shaded."""
    import cv2

    from vila_nav.scenes.collision import wall_segments
    from vila_nav.scenes.vocabulary import COLORS, ROOM_KINDS

    min_x, max_x, min_z, max_z = spec.bounds
    pad = 0.3
    origin = (min_x - pad, min_z - pad)
    w = int(np.ceil((max_x - min_x + 2 * pad) / meters_per_pixel))
    h = int(np.ceil((max_z - min_z + 2 * pad) / meters_per_pixel))
    img = np.full((h, w, 3), 40, dtype=np.uint8)
    m = TopDownMap(img, origin, meters_per_pixel)

    def px(x: float, z: float) -> tuple[int, int]:
        c, r = m.world_to_pixel(np.array([[x, z]]))[0]
        return int(c), int(r)

    for room in spec.rooms:
        tint = np.array(ROOM_KINDS[room.kind].wall_tint) if room.kind in ROOM_KINDS else np.ones(3)
        color = tuple(int(v) for v in (255 * (0.45 + 0.45 * tint)))
        cv2.rectangle(img, px(room.min_x, room.min_z), px(room.max_x, room.max_z), color, -1)
    if free is not None:
        rows, cols = np.mgrid[0:h, 0:w]
        centres = m.pixel_to_world(np.stack([cols.ravel(), rows.ravel()], axis=1))
        fc = np.floor((centres[:, 0] - free_origin[0]) / free_resolution).astype(int)
        fr = np.floor((centres[:, 1] - free_origin[1]) / free_resolution).astype(int)
        ok = (fr >= 0) & (fr < free.shape[0]) & (fc >= 0) & (fc < free.shape[1])
        blocked = np.zeros(h * w, dtype=bool)
        blocked[ok] = ~free[fr[ok], fc[ok]]
        blocked = blocked.reshape(h, w) & (img.sum(-1) > 3 * 40)
        img[blocked] = (img[blocked] * 0.75).astype(np.uint8)
    for obj in spec.objects:
        rgb = tuple(int(255 * v) for v in COLORS.get(obj.color, (0.5, 0.5, 0.5)))
        x, z = obj.position
        hx, hz = obj.half_extents
        if obj.shape == "circle":
            cv2.circle(img, px(x, z), max(2, int(hx / meters_per_pixel)), rgb, -1)
            cv2.circle(img, px(x, z), max(2, int(hx / meters_per_pixel)), (0, 0, 0), 1)
        else:
            cv2.rectangle(img, px(x - hx, z - hz), px(x + hx, z + hz), rgb, -1)
            cv2.rectangle(img, px(x - hx, z - hz), px(x + hx, z + hz), (0, 0, 0), 1)
    thick = max(2, int(round(0.06 / meters_per_pixel)))
    for (x0, z0), (x1, z1) in wall_segments(spec):
        cv2.line(img, px(x0, z0), px(x1, z1), (15, 15, 15), thick)
    for room in spec.rooms:
        cv2.putText(img, room.kind, px(room.min_x + 0.15, room.min_z + 0.35), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (20, 20, 20), 1, cv2.LINE_AA)
    return m
