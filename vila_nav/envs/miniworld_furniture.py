"""MiniWorld entities for scene objects: furniture drawn from coloured boxes, or bundled meshes.

Each object kind is a list of boxes in the object's local frame (x: width, y: up, z: depth with
the front at +z; metres), coloured from vila_nav.scenes.vocabulary.COLORS, drawn with lighting
and compiled into the scene's display list (static). Imported only by the MiniWorld renderer,
after pyglet has been put into headless mode.
"""
from __future__ import annotations

import math
from typing import Callable

from miniworld.entity import Entity, MeshEnt
from miniworld.opengl import drawBox
from pyglet.gl import GL_TEXTURE_2D, glColor3f, glDisable, glPopMatrix, glPushMatrix, glRotatef, glTranslatef

from vila_nav.scenes.spec import ObjectSpec
from vila_nav.scenes.vocabulary import COLORS, OBJECT_KINDS

RGB = tuple[float, float, float]
Part = tuple[float, float, float, float, float, float, RGB]  # x0, x1, y0, y1, z0, z1, colour

WOOD: RGB = (0.45, 0.28, 0.12)
DARK: RGB = (0.12, 0.12, 0.12)
STEEL: RGB = (0.6, 0.6, 0.62)
WHITE: RGB = (0.95, 0.95, 0.95)


def _shade(c: RGB, k: float) -> RGB:
    return (c[0] * k, c[1] * k, c[2] * k)


def _bed(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    return [
        (-x, x, 0.0, 0.3, -z, z, WOOD),  # frame
        (-x + 0.03, x - 0.03, 0.3, 0.46, -z + 0.08, z - 0.03, WHITE),  # mattress
        (-x + 0.02, x - 0.02, 0.3, h, -z + 0.6, z - 0.01, c),  # blanket
        (-x + 0.15, x - 0.15, 0.46, 0.58, -z + 0.12, -z + 0.5, WHITE),  # pillow
        (-x, x, 0.0, 1.0, -z, -z + 0.08, WOOD),  # headboard
    ]


def _wardrobe(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    return [
        (-x, x, 0.0, h, -z, z, c),
        (-0.01, 0.01, 0.05, h - 0.05, z, z + 0.01, DARK),  # gap between the doors
        (-0.08, -0.04, 0.9, 1.2, z, z + 0.03, STEEL),
        (0.04, 0.08, 0.9, 1.2, z, z + 0.03, STEEL),
    ]


def _sofa(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    k = _shade(c, 0.8)
    return [
        (-x, x, 0.0, 0.45, -z, z, c),  # seat
        (-x, x, 0.0, h, -z, -z + 0.22, k),  # back
        (-x, -x + 0.18, 0.0, 0.65, -z, z, k),  # arms
        (x - 0.18, x, 0.0, 0.65, -z, z, k),
    ]


def _tv(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    return [
        (-x, x, 0.0, 0.5, -z, z, WOOD),  # stand
        (-x + 0.05, x - 0.05, 0.55, h, -0.04, 0.02, DARK),  # bezel
        (-x + 0.09, x - 0.09, 0.59, h - 0.04, 0.02, 0.03, (0.15, 0.25, 0.45)),  # screen
        (-0.05, 0.05, 0.5, 0.56, -0.05, 0.05, DARK),
    ]


def _bookshelf(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    parts: list[Part] = [(-x, x, 0.0, h, -z, -z + 0.03, c), (-x, -x + 0.04, 0.0, h, -z, z, c), (x - 0.04, x, 0.0, h, -z, z, c)]
    books = [COLORS["red"], COLORS["blue"], COLORS["yellow"], COLORS["green"], WHITE, COLORS["orange"]]
    levels = 5
    for i in range(levels + 1):
        y = i * (h - 0.04) / levels
        parts.append((-x, x, y, y + 0.04, -z, z, c))
        if i < levels:
            inner = w - 0.08
            for j in range(6):
                bx = -x + 0.04 + inner * j / 6
                tall = 0.2 + 0.06 * ((i + j) % 3)
                parts.append((bx + 0.01, bx + inner / 6 - 0.01, y + 0.04, y + 0.04 + tall, -z + 0.04, z - 0.04, books[(i * 2 + j) % 6]))
    return parts


def _fridge(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    return [
        (-x, x, 0.0, h, -z, z, c),
        (-x, x, 1.18, 1.2, z, z + 0.01, DARK),  # freezer door gap
        (x - 0.1, x - 0.06, 0.6, 1.1, z, z + 0.04, STEEL),
        (x - 0.1, x - 0.06, 1.3, 1.6, z, z + 0.04, STEEL),
    ]


def _counter(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    parts: list[Part] = [(-x, x, 0.0, h - 0.04, -z, z - 0.02, c), (-x, x, h - 0.04, h, -z, z, (0.25, 0.25, 0.27))]
    n = max(1, int(round(w / 0.6)))
    for i in range(1, n):
        cx = -x + w * i / n
        parts.append((cx - 0.005, cx + 0.005, 0.05, h - 0.08, z - 0.02, z - 0.01, DARK))
    return parts


def _stove(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    parts: list[Part] = [(-x, x, 0.0, h, -z, z, c), (-x + 0.08, x - 0.08, 0.15, 0.6, z, z + 0.01, (0.3, 0.3, 0.32))]
    for bx in (-0.17, 0.17):
        for bz in (-0.15, 0.15):
            parts.append((bx - 0.1, bx + 0.1, h, h + 0.015, bz - 0.1, bz + 0.1, STEEL))
    return parts


def _bathtub(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z, t = w / 2, d / 2, 0.07
    return [
        (-x, x, 0.0, 0.2, -z, z, WHITE),
        (-x + t, x - t, 0.2, 0.25, -z + t, z - t, (0.55, 0.75, 0.95)),  # water
        (-x, x, 0.2, h, -z, -z + t, WHITE),
        (-x, x, 0.2, h, z - t, z, WHITE),
        (-x, -x + t, 0.2, h, -z, z, WHITE),
        (x - t, x, 0.2, h, -z, z, WHITE),
        (-x + 0.1, -x + 0.14, h, h + 0.2, -0.03, 0.03, STEEL),  # tap
    ]


def _toilet(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    return [
        (-x, x, 0.0, h, -z, -z + 0.2, WHITE),  # tank
        (-0.18, 0.18, 0.0, 0.38, -z + 0.2, z, WHITE),  # bowl
        (-0.19, 0.19, 0.38, 0.42, -z + 0.2, z, (0.85, 0.85, 0.88)),  # seat
    ]


def _sink(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    return [
        (-x, x, 0.0, h - 0.1, -z, z - 0.02, c),
        (-x, x, h - 0.1, h, -z, z, WHITE),
        (-0.02, 0.02, h, h + 0.2, -z + 0.05, -z + 0.1, STEEL),
        (-0.3, 0.3, h - 0.02, h + 0.001, -z + 0.15, z - 0.05, (0.75, 0.8, 0.85)),  # basin
        (-0.3, 0.3, h + 0.3, h + 0.9, -z, -z + 0.02, (0.8, 0.9, 0.95)),  # mirror
    ]


def _washer(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    return [
        (-x, x, 0.0, h, -z, z, c),
        (-0.2, 0.2, 0.2, 0.6, z, z + 0.01, (0.25, 0.3, 0.4)),  # door window
        (-x + 0.05, x - 0.05, h - 0.12, h - 0.04, z, z + 0.01, DARK),  # panel
    ]


def _bench(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    return [
        (-x, x, h - 0.06, h, -z, z, c),
        (-x + 0.05, -x + 0.12, 0.0, h - 0.06, -z + 0.03, z - 0.03, DARK),
        (x - 0.12, x - 0.05, 0.0, h - 0.06, -z + 0.03, z - 0.03, DARK),
    ]


def _table(w: float, h: float, d: float, c: RGB) -> list[Part]:
    x, z = w / 2, d / 2
    leg = _shade(c, 0.7)
    parts: list[Part] = [(-x, x, h - 0.05, h, -z, z, c)]
    for lx in (-x + 0.05, x - 0.11):
        for lz in (-z + 0.05, z - 0.11):
            parts.append((lx, lx + 0.06, 0.0, h - 0.05, lz, lz + 0.06, leg))
    return parts


def _lamp(w: float, h: float, d: float, c: RGB) -> list[Part]:
    r = w / 2
    return [
        (-0.15, 0.15, 0.0, 0.03, -0.15, 0.15, DARK),
        (-0.02, 0.02, 0.03, h - 0.35, -0.02, 0.02, STEEL),
        (-r, r, h - 0.4, h, -r, r, c),
    ]


def _box(w: float, h: float, d: float, c: RGB) -> list[Part]:
    return [(-w / 2, w / 2, 0.0, h, -d / 2, d / 2, c)]


BUILDERS: dict[str, Callable[[float, float, float, RGB], list[Part]]] = {
    "bed": _bed,
    "wardrobe": _wardrobe,
    "sofa": _sofa,
    "armchair": _sofa,
    "tv": _tv,
    "bookshelf": _bookshelf,
    "fridge": _fridge,
    "counter": _counter,
    "stove": _stove,
    "bathtub": _bathtub,
    "toilet": _toilet,
    "sink": _sink,
    "washing machine": _washer,
    "bench": _bench,
    "dining table": _table,
    "floor lamp": _lamp,
    "box": _box,
}


class PartsEntity(Entity):
    """A static object drawn as coloured boxes (local frame, yaw about +Y in degrees)."""

    def __init__(self, parts: list[Part], position: tuple[float, float], yaw_deg: float, radius: float, height: float):
        super().__init__()
        self.parts = parts
        self.pos = [position[0], 0.0, position[1]]
        self.dir = math.radians(yaw_deg)
        self.yaw_deg = yaw_deg
        self.radius = radius
        self.height = height

    @property
    def is_static(self) -> bool:
        return True

    def render(self) -> None:
        glDisable(GL_TEXTURE_2D)
        glPushMatrix()
        glTranslatef(*self.pos)
        glRotatef(self.yaw_deg, 0, 1, 0)
        for x0, x1, y0, y1, z0, z1, rgb in self.parts:
            glColor3f(*rgb)
            drawBox(x_min=x0, x_max=x1, y_min=y0, y_max=y1, z_min=z0, z_max=z1)
        glPopMatrix()


def make_entity(obj: ObjectSpec) -> Entity:
    """The MiniWorld entity that draws `obj` (position and yaw set; static)."""
    import numpy as np

    kind = OBJECT_KINDS.get(obj.kind)
    if kind is None:
        raise ValueError(f"object {obj.object_id}: unknown kind {obj.kind!r}; known: {sorted(OBJECT_KINDS)}")
    w, h, d = obj.size
    if kind.mesh:
        ent = MeshEnt(kind.mesh.format(color=obj.color), height=h, static=True)
        ent.pos = np.array([obj.position[0], 0.0, obj.position[1]])
        ent.dir = math.radians(obj.yaw_deg)  # MeshEnt draws glRotatef(dir in deg) about +Y
        return ent
    if obj.color not in COLORS:
        raise ValueError(f"object {obj.object_id}: unknown colour {obj.color!r}; known: {sorted(COLORS)}")
    return PartsEntity(BUILDERS[obj.kind](w, h, d, COLORS[obj.color]), obj.position, obj.yaw_deg, obj.radius, h)
