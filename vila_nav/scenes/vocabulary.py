"""The visual vocabulary of generated scenes: room kinds, object kinds and colour names.

Every room kind has its own floor and wall look (a MiniWorld texture tinted by a colour), and
objects carry a colour that instructions mention ("the blue sofa"), so what an instruction says
is what a camera sees. Textures are names that MiniWorld 2.1 loads (`<name>_1.png` in its
textures folder). Sizes are metres.
"""
from __future__ import annotations

from dataclasses import dataclass

# Colour name -> linear RGB in [0, 1] (multiplied with lighting when drawn).
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.08, 0.08),
    "orange": (1.0, 0.5, 0.05),
    "yellow": (0.95, 0.85, 0.1),
    "green": (0.12, 0.62, 0.2),
    "blue": (0.1, 0.28, 0.9),
    "purple": (0.5, 0.2, 0.72),
    "pink": (1.0, 0.5, 0.72),
    "brown": (0.5, 0.3, 0.12),
    "white": (0.95, 0.95, 0.95),
    "black": (0.08, 0.08, 0.08),
    "grey": (0.5, 0.5, 0.5),
}


@dataclass(frozen=True)
class RoomKind:
    """How a kind of room looks and how instructions describe it."""

    name: str  # "living room"
    floor_tex: str
    floor_tint: tuple[float, float, float]
    wall_tex: str
    wall_tint: tuple[float, float, float]
    floor_words: str  # "a black and white checkered floor"
    wall_words: str  # "yellow walls"
    furniture: tuple[str, ...]  # object kinds typical of this room (first ones are more likely)


ROOM_KINDS: dict[str, RoomKind] = {
    k.name: k
    for k in (
        RoomKind("kitchen", "floor_tiles_bw", (1.0, 1.0, 1.0), "white", (1.0, 0.88, 0.4),
                 "a black and white checkered floor", "yellow walls", ("fridge", "counter", "stove", "dining table")),
        RoomKind("bathroom", "ceiling_tiles", (0.9, 0.97, 1.0), "concrete_tiles", (0.55, 0.8, 1.0),
                 "a white tiled floor", "light blue tiled walls", ("bathtub", "toilet", "sink")),
        RoomKind("bedroom", "wood", (1.0, 1.0, 1.0), "stucco", (0.62, 0.88, 0.55),
                 "a light wooden floor", "green walls", ("bed", "wardrobe", "floor lamp")),
        RoomKind("living room", "wood_planks", (1.0, 1.0, 1.0), "drywall", (1.0, 0.72, 0.5),
                 "a dark wooden floor", "orange walls", ("sofa", "tv", "armchair", "bookshelf")),
        RoomKind("office", "cardboard", (0.55, 0.58, 0.68), "cinder_blocks", (0.9, 0.9, 0.95),
                 "a grey carpet", "grey block walls", ("desk", "office chair", "bookshelf")),
        RoomKind("dining room", "marble", (1.0, 1.0, 1.0), "white", (0.82, 0.62, 0.92),
                 "a marble floor", "purple walls", ("dining table", "bookshelf", "floor lamp")),
        RoomKind("laundry room", "concrete_tiles", (1.0, 1.0, 1.0), "white", (1.0, 0.66, 0.78),
                 "a grey tiled floor", "pink walls", ("washing machine", "counter", "bench")),
        RoomKind("hallway", "concrete", (0.95, 0.95, 0.95), "brick_wall", (1.0, 1.0, 1.0),
                 "a concrete floor", "red brick walls", ("bench", "potted plant", "floor lamp")),
    )
}
CEILING_TEX = "ceiling_tile_noborder"


@dataclass(frozen=True)
class ObjectKind:
    """A kind of object: its noun, colours, size range, footprint and placement.

    size_min/size_max: (width, height, depth) ranges (m); equal ends give a fixed size.
    placement: "wall" (back against a wall, front facing the room) or "free" (anywhere inside).
    mesh: a MiniWorld mesh name ("{color}" is replaced by the colour) or "" for furniture drawn
    from coloured boxes by the renderer. color_in_name: whether instructions say the colour.
    """

    noun: str
    colors: tuple[str, ...]
    size_min: tuple[float, float, float]
    size_max: tuple[float, float, float]
    shape: str  # "box" or "circle"
    placement: str
    mesh: str = ""
    color_in_name: bool = True

    def display_name(self, color: str) -> str:
        """How instructions call an object of this kind and colour ("blue sofa")."""
        return f"{color} {self.noun}" if self.color_in_name else self.noun


_FURNITURE_COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink")

OBJECT_KINDS: dict[str, ObjectKind] = {
    # Room furniture (against walls).
    "bed": ObjectKind("bed", _FURNITURE_COLORS, (1.4, 0.55, 2.0), (1.6, 0.55, 2.1), "box", "wall"),
    "wardrobe": ObjectKind("wardrobe", ("brown", "white", "blue"), (1.0, 2.0, 0.6), (1.4, 2.0, 0.6), "box", "wall"),
    "sofa": ObjectKind("sofa", _FURNITURE_COLORS + ("grey",), (1.8, 0.85, 0.9), (2.2, 0.85, 0.9), "box", "wall"),
    "tv": ObjectKind("TV", ("black",), (1.2, 1.15, 0.45), (1.4, 1.15, 0.45), "box", "wall", color_in_name=False),
    "armchair": ObjectKind("armchair", _FURNITURE_COLORS + ("grey",), (0.9, 0.85, 0.9), (0.9, 0.85, 0.9), "box", "wall"),
    "bookshelf": ObjectKind("bookshelf", ("brown", "white", "black"), (1.0, 1.9, 0.35), (1.2, 1.9, 0.35), "box", "wall"),
    "fridge": ObjectKind("fridge", ("white", "grey", "red"), (0.75, 1.85, 0.7), (0.8, 1.85, 0.7), "box", "wall"),
    "counter": ObjectKind("counter", ("white", "brown", "blue", "green"), (1.6, 0.92, 0.6), (2.4, 0.92, 0.6), "box", "wall"),
    "stove": ObjectKind("stove", ("black",), (0.7, 0.92, 0.65), (0.7, 0.92, 0.65), "box", "wall", color_in_name=False),
    "bathtub": ObjectKind("bathtub", ("white",), (1.6, 0.55, 0.75), (1.7, 0.55, 0.75), "box", "wall", color_in_name=False),
    "toilet": ObjectKind("toilet", ("white",), (0.45, 0.8, 0.7), (0.45, 0.8, 0.7), "box", "wall", color_in_name=False),
    "sink": ObjectKind("sink", ("white", "brown"), (0.8, 0.9, 0.5), (0.9, 0.9, 0.5), "box", "wall"),
    "washing machine": ObjectKind("washing machine", ("white",), (0.65, 0.9, 0.65), (0.65, 0.9, 0.65), "box", "wall", color_in_name=False),
    "bench": ObjectKind("bench", ("brown", "green", "blue", "red"), (1.2, 0.45, 0.4), (1.5, 0.45, 0.4), "box", "wall"),
    # office_desk.obj spans 66.9 x 63.6 x 32.9 units (x, y, z); scaled to 1.0 m high.
    "desk": ObjectKind("desk", ("brown",), (1.05, 1.0, 0.52), (1.05, 1.0, 0.52), "box", "wall", mesh="office_desk", color_in_name=False),
    # Free-standing furniture and landmarks.
    "dining table": ObjectKind("dining table", ("brown", "white", "black"), (1.4, 0.76, 0.9), (1.8, 0.76, 1.0), "box", "free"),
    # office_chair.obj: 28.9 x 47.3 x 27.5 units; 1.0 m high -> about 0.62 m across.
    "office chair": ObjectKind("office chair", ("black",), (0.62, 1.0, 0.62), (0.62, 1.0, 0.62), "circle", "free", mesh="office_chair", color_in_name=False),
    "floor lamp": ObjectKind("floor lamp", ("yellow", "white", "red", "blue"), (0.45, 1.7, 0.45), (0.45, 1.7, 0.45), "circle", "free"),
    # tree_pine.obj: 3.68 x 7.54 x 3.68 units, its trunk 0.3 units off the origin; 1.4 m high.
    "potted plant": ObjectKind("potted plant", ("green",), (0.72, 1.4, 0.72), (0.72, 1.4, 0.72), "circle", "free", mesh="tree_pine", color_in_name=False),
    "box": ObjectKind("box", tuple(c for c in COLORS if c not in ("black", "grey", "brown")), (0.5, 0.5, 0.5), (0.7, 0.7, 0.7), "box", "free"),
    "ball": ObjectKind("ball", ("red", "green", "blue", "purple", "yellow"), (0.55, 0.55, 0.55), (0.65, 0.65, 0.65), "circle", "free", mesh="ball_{color}"),
    # barrel.obj: 0.61 x 0.88 x 0.61 units (blue metal drum).
    "barrel": ObjectKind("barrel", ("blue",), (0.62, 0.9, 0.62), (0.62, 0.9, 0.62), "circle", "free", mesh="barrel"),
    "traffic cone": ObjectKind("traffic cone", ("orange",), (0.45, 0.7, 0.45), (0.45, 0.7, 0.45), "circle", "free", mesh="cone"),
    # duckie.obj: 1.66 x 1.52 x 1.39 units; 0.6 m high -> about 0.65 m across.
    "rubber duck": ObjectKind("rubber duck", ("yellow",), (0.66, 0.6, 0.66), (0.66, 0.6, 0.66), "circle", "free", mesh="duckie"),
}

# Landmarks that may stand in any room (besides its typical furniture).
LANDMARKS: tuple[str, ...] = ("box", "ball", "barrel", "traffic cone", "rubber duck", "floor lamp", "potted plant")
