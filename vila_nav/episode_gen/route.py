"""What a route does, in words-to-be: rooms, doorways, turns and landmarks along an expert path.

Pure functions of a scene spec and the expert's dense path (the start plus the position after
every forward move). The path is simplified (OpenCV's Douglas-Peucker) into straight legs; turns
are the heading changes between legs (jogs through doorways merged, small wiggles dropped);
doorway crossings are where the room under the path changes; a landmark is "passed" when the path
comes within reach of it in its own room; the goal is described by the nearest landmark or, failing
that, by its room. Headings follow Habitat: positive angles turn left.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vila_nav.envs.pose import forward_vector, heading_of, wrap_angle
from vila_nav.scenes.spec import ObjectSpec, SceneSpec

SIMPLIFY_M = 0.3  # Douglas-Peucker tolerance (m)
MERGE_LEG_M = 0.8  # turns separated by a shorter leg are one manoeuvre (m)
MIN_TURN_DEG = 35.0  # smaller heading changes are "keep going" (deg)
PASS_REACH_M = 1.3  # a landmark this close to the path (footprint distance) is passed (m)
TURN_LANDMARK_M = 1.5  # a landmark this close to a turn names the turn (m)
GOAL_LANDMARK_M = 1.5  # a landmark this close to the goal names the goal (m)
FACING_HALF_ANGLE_DEG = 40.0  # "you are facing X": X within this of the start heading (deg)


@dataclass(frozen=True)
class RouteEvent:
    """One thing that happens along the route, at dense-path index `index`.

    kind "turn": angle_deg (+ left) and optionally the landmark at the turn;
    kind "door": from_room / to_room are room kinds ("bedroom" -> "hallway");
    kind "pass": landmark and side ("left" / "right");
    kind "walk": distance_m of straight walking before the next event (RxR detail).
    """

    kind: str
    index: int
    angle_deg: float = 0.0
    from_room: str = ""
    to_room: str = ""
    landmark: str = ""
    side: str = ""
    distance_m: float = 0.0


@dataclass(frozen=True)
class Route:
    """A route summarised for instruction writing."""

    start_room: str  # room kind
    start_facing: str  # landmark name the agent faces at the start ("" if none)
    initial_turn_deg: float  # net turn before the first forward step (+ left)
    events: tuple[RouteEvent, ...]
    goal_room: str
    goal_landmark: str  # "" if no landmark near the goal
    goal_door_to: str  # room kind behind a doorway right at the goal ("" if none)
    goal_central: bool  # the goal is near the middle of its room (within 1 m of the centre)
    length_m: float
    waypoints: tuple[tuple[float, float], ...] = field(default=())  # (x, z): start, turns, doorways, goal

    @property
    def rooms(self) -> list[str]:
        """Room kinds in visiting order, start room first."""
        return [self.start_room] + [e.to_room for e in self.events if e.kind == "door"]


def footprint_distance(obj: ObjectSpec, points: np.ndarray) -> np.ndarray:
    """(N,) distance (m) from (N, 2) points to an object's footprint (0 inside)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    c = np.asarray(obj.position)
    hx, hz = obj.half_extents
    if obj.shape == "circle":
        return np.maximum(np.hypot(*(p - c).T) - hx, 0.0)
    d = np.maximum(np.abs(p - c) - np.array([hx, hz]), 0.0)
    return np.hypot(d[:, 0], d[:, 1])


def simplify(path: np.ndarray, tolerance: float = SIMPLIFY_M) -> np.ndarray:
    """Indices of the dense path kept by Douglas-Peucker (first and last always kept)."""
    import cv2

    if len(path) <= 2:
        return np.arange(len(path))
    curve = np.ascontiguousarray(path, dtype=np.float32).reshape(-1, 1, 2)
    kept = cv2.approxPolyDP(curve, tolerance, False).reshape(-1, 2)
    # map kept points back to indices (approxPolyDP returns input points, in order)
    idx, j = [], 0
    for q in kept:
        while j < len(path) and not np.allclose(path[j], q, atol=1e-4):
            j += 1
        idx.append(min(j, len(path) - 1))
    idx[0], idx[-1] = 0, len(path) - 1
    return np.array(sorted(set(idx)))


def _turns(path: np.ndarray) -> list[tuple[int, float]]:
    """(dense index, angle deg, + left) of the route's turns after merging and filtering."""
    keep = simplify(path)
    if len(keep) < 3:
        return []
    legs = [(keep[i], keep[i + 1]) for i in range(len(keep) - 1)]
    heads = [heading_of(*(path[b] - path[a])) for a, b in legs]
    lengths = [float(np.hypot(*(path[b] - path[a]))) for a, b in legs]
    turns = [[int(keep[i + 1]), math.degrees(wrap_angle(heads[i + 1] - heads[i]))] for i in range(len(legs) - 1)]
    # turn k sits between leg k and leg k+1; merge turns joined by a short leg
    merged: list[list[float]] = []
    for k, t in enumerate(turns):
        if merged and lengths[k] < MERGE_LEG_M:
            prev = merged[-1]
            prev[0] = (prev[0] + t[0]) / 2
            prev[1] = math.degrees(wrap_angle(math.radians(prev[1] + t[1])))
        else:
            merged.append(list(t))
    return [(int(round(i)), a) for i, a in merged if abs(a) >= MIN_TURN_DEG]


def _side(path: np.ndarray, i: int, target: np.ndarray) -> str:
    """'left' or 'right': where `target` lies relative to the walking direction at index i."""
    a, b = path[max(i - 1, 0)], path[min(i + 1, len(path) - 1)]
    if np.allclose(a, b):
        return "left"
    yaw = heading_of(*(b - a))
    left = forward_vector(yaw + math.pi / 2)
    return "left" if float((target - path[i]) @ left) > 0 else "right"


def describe_route(spec: SceneSpec, path: np.ndarray, start_yaw: float, initial_turn_deg: float, goal: np.ndarray) -> Route:
    """Summarise an expert route.

    path: (N, 2) dense (x, z) positions, the start first; start_yaw: heading at the start (rad);
    initial_turn_deg: the net turn the expert made before its first forward step (+ left);
    goal: (x, z) of the episode goal.
    """
    path = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    goal = np.asarray(goal, dtype=np.float64)
    rooms = [spec.room_at(float(x), float(z)) for x, z in path]
    room_ids = [r.room_id if r else "" for r in rooms]
    kind = {r.room_id: r.kind for r in spec.rooms}
    start_room = room_ids[0]
    events: list[RouteEvent] = []
    waypoint_idx = {0, len(path) - 1}

    # doorways: where the room under the path changes
    for i in range(1, len(path)):
        if room_ids[i] and room_ids[i - 1] and room_ids[i] != room_ids[i - 1]:
            events.append(RouteEvent("door", i, from_room=kind[room_ids[i - 1]], to_room=kind[room_ids[i]]))
            waypoint_idx.add(i)

    # the landmark that names the goal (the nearest one in the goal's room)
    goal_room = spec.room_at(float(goal[0]), float(goal[1]))
    goal_room_id = goal_room.room_id if goal_room else room_ids[-1]
    goal_near = [(float(footprint_distance(o, goal[None])[0]), o) for o in spec.objects if o.room_id == goal_room_id]
    goal_near = [(d, o) for d, o in goal_near if d < GOAL_LANDMARK_M]
    goal_obj = min(goal_near, key=lambda t: t[0])[1] if goal_near else None

    # turns, named by a landmark standing at the corner when there is one (not the goal's)
    for i, angle in _turns(path):
        corner = path[i]
        name = ""
        near = [(float(footprint_distance(o, corner[None])[0]), o) for o in spec.objects if o.room_id == room_ids[i] and o is not goal_obj]
        near = [(d, o) for d, o in near if d < TURN_LANDMARK_M]
        if near:
            name = min(near, key=lambda t: t[0])[1].name
        events.append(RouteEvent("turn", i, angle_deg=angle, landmark=name))
        waypoint_idx.add(i)

    # landmarks passed on the way (not the one at the goal)
    turn_names = {e.landmark for e in events if e.kind == "turn" and e.landmark}
    for o in spec.objects:
        if o is goal_obj or o.name in turn_names:
            continue
        d = footprint_distance(o, path)
        i = int(np.argmin(d))
        if d[i] < PASS_REACH_M and 0 < i < len(path) - 2 and room_ids[i] == o.room_id:
            events.append(RouteEvent("pass", i, landmark=o.name, side=_side(path, i, np.asarray(o.position))))

    events.sort(key=lambda e: (e.index, {"door": 0, "turn": 1, "pass": 2}[e.kind]))
    # straight walking between consecutive events (and to the goal)
    marks = [0] + [e.index for e in events] + [len(path) - 1]
    seg = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])
    walks = [RouteEvent("walk", a, distance_m=float(seg[b] - seg[a])) for a, b in zip(marks[:-1], marks[1:]) if seg[b] - seg[a] > 0.05]
    events = sorted(events + walks, key=lambda e: (e.index, {"walk": 3, "door": 0, "turn": 1, "pass": 2}[e.kind]))

    # what the agent faces at the start
    facing = ""
    fwd = forward_vector(start_yaw)
    best = math.inf
    for o in spec.objects:
        if o.room_id != start_room:
            continue
        v = np.asarray(o.position) - path[0]
        dist = float(np.hypot(*v))
        if dist < 1e-6:
            continue
        angle = math.degrees(math.acos(max(-1.0, min(1.0, float(v @ fwd) / dist))))
        if angle <= FACING_HALF_ANGLE_DEG and dist < best:
            best, facing = dist, o.name

    door_to = ""
    for d in spec.doors:
        if goal_room_id in d.rooms and float(np.hypot(*(np.asarray(d.center) - goal))) < 1.0:
            other = d.rooms[1] if d.rooms[0] == goal_room_id else d.rooms[0]
            door_to = kind[other]
    return Route(
        start_room=kind.get(start_room, ""),
        start_facing=facing,
        initial_turn_deg=float(initial_turn_deg),
        events=tuple(events),
        goal_room=kind.get(goal_room_id, ""),
        goal_landmark=goal_obj.name if goal_obj else "",
        goal_door_to=door_to,
        goal_central=bool(goal_room is not None and float(np.hypot(*(np.asarray(goal_room.center) - goal))) < 1.0),
        length_m=float(seg[-1]),
        waypoints=tuple((float(path[i][0]), float(path[i][1])) for i in sorted(waypoint_idx)),
    )
