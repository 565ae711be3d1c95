"""Natural-language instructions from a Route: R2R style (1-3 sentences) and RxR style (long,
step by step, describing what the agent sees).

Phrasing is drawn from small synonym banks with a seeded numpy Generator, so the same route and
seed give the same text. Everything named is visible in the embedded scenes: room kinds have
their own wall colours and floors (the RxR style says which), landmarks are "colour + noun".
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from vila_nav.episode_gen.route import Route, RouteEvent
from vila_nav.scenes.vocabulary import ROOM_KINDS

_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def turn_key(angle_deg: float) -> str:
    """'around', 'left', 'right', 'slightly left', 'slightly right' or '' (straight) for an angle (+ left)."""
    a = abs(angle_deg)
    side = "left" if angle_deg > 0 else "right"
    if a >= 135:
        return "around"
    if a >= 60:
        return side
    if a >= 35:
        return f"slightly {side}"
    return ""


def _turn_phrase(rng: np.random.Generator, key: str) -> str:
    if key == "around":
        return _pick(rng, ["turn around", "turn all the way around", "turn back"])
    if key.startswith("slightly"):
        side = key.split()[1]
        return _pick(rng, [f"turn slightly {side}", f"veer {side}", f"bear {side}"])
    return _pick(rng, [f"turn {key}", f"take a {key}", f"make a {key}", f"go {key}"])


def _the(room: str) -> str:
    return f"the {room}"


def _a(name: str) -> str:
    """'a stove', 'an office chair'."""
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def _exit_phrase(rng: np.random.Generator, room: str, to_room: str) -> str:
    verb = _pick(rng, ["exit", "leave", "walk out of", "go out of"])
    phrase = f"{verb} {_the(room)}"
    if rng.random() < 0.5:  # name the room you come out into
        phrase += f" and enter {_the(to_room)}" if verb == "leave" else f" into {_the(to_room)}"
    return phrase


def _enter_phrase(rng: np.random.Generator, room: str) -> str:
    if room == "hallway":
        return _pick(rng, ["step into the hallway", "go out into the hallway", "enter the hallway", "walk into the hallway"])
    return _pick(rng, [f"enter {_the(room)}", f"go into {_the(room)}", f"walk into {_the(room)}", f"go through the doorway into {_the(room)}"])


def _pass_phrase(rng: np.random.Generator, name: str) -> str:
    return _pick(rng, [f"walk past the {name}", f"go past the {name}", f"pass the {name}"])


def _stop_sentence_r2r(rng: np.random.Generator, route: Route) -> str:
    if route.goal_landmark:
        obj = route.goal_landmark
        return _pick(rng, [f"Stop next to the {obj}.", f"Wait by the {obj}.", f"Stop in front of the {obj}.",
                           f"Stop when you reach the {obj}.", f"Stop near the {obj}."])
    if route.goal_door_to:
        return _pick(rng, [f"Stop just inside {_the(route.goal_room)}.", f"Stop in {_the(route.goal_room)} near the doorway."])
    if route.goal_central:
        return _pick(rng, [f"Stop in the middle of {_the(route.goal_room)}.", f"Wait in the center of {_the(route.goal_room)}."])
    return _pick(rng, [f"Stop in {_the(route.goal_room)}.", f"Stop once you are inside {_the(route.goal_room)}."])


def _join(rng: np.random.Generator, clauses: list[str]) -> str:
    """Clauses -> one sentence: 'A, then B and C.'"""
    text = clauses[0]
    for k, c in enumerate(clauses[1:], start=1):
        last = k == len(clauses) - 1
        text += _pick(rng, [" and ", ", then "] if last else [", ", ", then "]) + c
    return text[0].upper() + text[1:] + "."


def _r2r_clauses(rng: np.random.Generator, route: Route) -> list[str]:
    events = [e for e in route.events if e.kind != "walk"]
    passes = [i for i, e in enumerate(events) if e.kind == "pass"]
    keep_pass = set(rng.permutation(passes)[: min(len(passes), 2)].tolist()) if passes else set()
    clauses: list[str] = []
    first = turn_key(route.initial_turn_deg)
    leaves_first = bool(events) and events[0].kind == "door" and events[0].from_room == route.start_room
    if first:
        clauses.append(_turn_phrase(rng, first))
    elif not leaves_first:
        clauses.append(_pick(rng, ["walk forward", "go straight ahead", "walk straight"]))
    exited = False
    for i, e in enumerate(events):
        if e.kind == "door":
            if not exited and e.from_room == route.start_room and e.from_room != "hallway":
                clauses.append(_exit_phrase(rng, e.from_room, e.to_room))
                exited = True
            else:
                clauses.append(_enter_phrase(rng, e.to_room))
        elif e.kind == "turn":
            phrase = _turn_phrase(rng, turn_key(e.angle_deg))
            if e.landmark and rng.random() < 0.7:
                phrase += f" at the {e.landmark}"
            clauses.append(phrase)
        elif e.kind == "pass" and i in keep_pass:
            clauses.append(_pass_phrase(rng, e.landmark))
    return clauses


def r2r_instruction(route: Route, rng: np.random.Generator) -> str:
    """A short R2R-style instruction (at most 3 sentences, the last one says where to stop)."""
    clauses = _r2r_clauses(rng, route)
    # Too many clauses for 2 sentences: drop "pass" clauses, then keep turns/doors.
    while len(clauses) > 8:
        passes = [k for k, c in enumerate(clauses) if " past " in c or c.startswith("pass ")]
        if not passes:
            break
        clauses.pop(passes[-1])
    sentences = []
    if clauses:
        if len(clauses) <= 3:
            sentences.append(_join(rng, clauses))
        else:
            cut = (len(clauses) + 1) // 2
            sentences += [_join(rng, clauses[:cut]), _join(rng, clauses[cut:])]
    sentences.append(_stop_sentence_r2r(rng, route))
    return " ".join(sentences)


# ---- RxR style --------------------------------------------------------------------------------
def _room_looks(room: str) -> tuple[str, str]:
    kind = ROOM_KINDS.get(room)
    return (kind.wall_words, kind.floor_words) if kind else ("plain walls", "a plain floor")


def _distance_sentence(rng: np.random.Generator, metres: float) -> str:
    if metres < 0.6:
        return ""
    if metres < 1.5:
        return _pick(rng, ["Take a few steps forward.", "Walk forward a little.", "Go ahead a couple of steps."])
    n = min(int(round(metres)), len(_NUMBERS) - 1)
    unit = "meter" if n == 1 else "meters"
    return _pick(rng, [f"Walk forward about {_NUMBERS[n]} {unit}.", f"Go straight for roughly {_NUMBERS[n]} {unit}.",
                       f"Continue straight for about {_NUMBERS[n]} {unit}."])


def _rxr_event(rng: np.random.Generator, e: RouteEvent, seen: set[str], route: Route) -> list[str]:
    out: list[str] = []
    if e.kind == "walk":
        s = _distance_sentence(rng, e.distance_m)
        if s:
            out.append(s)
    elif e.kind == "door":
        if e.to_room == "hallway":
            out.append(_pick(rng, ["Go through the doorway out into the hallway.", "Walk through the opening into the hallway."]))
        else:
            out.append(_pick(rng, [f"Go through the doorway into the {e.to_room}.", f"Walk through the doorway and enter the {e.to_room}.",
                                   f"Pass through the opening into the {e.to_room}."]))
        if e.to_room not in seen:
            walls, floor = _room_looks(e.to_room)
            out.append(_pick(rng, [f"This room has {walls} and {floor}.", f"You will see {walls} and {floor} here.",
                                   f"The {e.to_room} has {walls}."]))
            seen.add(e.to_room)
    elif e.kind == "turn":
        key = turn_key(e.angle_deg)
        if key == "around":
            s = _pick(rng, ["Turn around.", "Turn all the way around."])
        elif key.startswith("slightly"):
            side = key.split()[1]
            s = _pick(rng, [f"Veer slightly to your {side}.", f"Bear a little to the {side}."])
        else:
            s = _pick(rng, [f"Turn {key}.", f"Now take a {key}.", f"Turn to your {key}.", f"Make a {key} turn."])
        if e.landmark:
            s = s[:-1] + _pick(rng, [f" at the {e.landmark}.", f" when you reach the {e.landmark}.", f" next to the {e.landmark}."])
        out.append(s)
    elif e.kind == "pass":
        out.append(_pick(rng, [f"You will pass the {e.landmark} on your {e.side}.", f"Keep the {e.landmark} on your {e.side}.",
                               f"Walk past the {e.landmark}, which will be on your {e.side}.", f"There is {_a(e.landmark)} to your {e.side}; go past it."]))
    return out


def rxr_instruction(route: Route, rng: np.random.Generator) -> str:
    """A long RxR-style, step-by-step instruction that describes rooms and landmarks on the way."""
    walls, floor = _room_looks(route.start_room)
    room = route.start_room
    out = [_pick(rng, [f"You are starting in the {room}, a room with {walls} and {floor}.", f"You begin in a {room} with {walls}.",
                       f"You start out in the {room}, which has {walls} and {floor}."])]
    if route.start_facing:
        out.append(_pick(rng, [f"You are facing the {route.start_facing}.", f"Right in front of you is the {route.start_facing}.",
                               f"The {route.start_facing} is ahead of you."]))
    key = turn_key(route.initial_turn_deg)
    events = list(route.events)
    first_door = next((e for e in events if e.kind != "walk"), None)
    toward = " until you face the doorway" if first_door is not None and first_door.kind == "door" else ""
    if key == "around":
        side = "left" if route.initial_turn_deg > 0 else "right"
        out.append(_pick(rng, [f"Turn around to your {side}{toward}.", f"Turn all the way around{toward}."]))
    elif key.startswith("slightly"):
        out.append(f"Turn slightly to your {key.split()[1]}{toward}.")
    elif key:
        out.append(_pick(rng, [f"Turn {key}{toward}.", f"Turn to your {key}{toward}."]))
    elif not (events and events[0].kind == "walk" and events[0].distance_m >= 0.6):  # else the walk says it
        out.append(_pick(rng, ["Walk straight ahead.", "Start by walking forward.", "Go straight."]))
    seen = {route.start_room}
    for e in events:
        out += _rxr_event(rng, e, seen, route)
    if route.goal_landmark:
        obj = route.goal_landmark
        out.append(_pick(rng, [f"Stop right next to the {obj}. That is your destination.", f"Stop when you are beside the {obj}; you're done.",
                               f"Your goal is the {obj}: stop next to it.", f"Walk up to the {obj} and stop there. You have arrived."]))
    elif route.goal_door_to:
        out.append(_pick(rng, [f"Stop just inside the {route.goal_room}, near the doorway to the {route.goal_door_to}. You're done.",
                               f"Stop in the {route.goal_room} close to the doorway. That's the end."]))
    else:
        where = "in the middle of" if route.goal_central else "inside"
        out.append(_pick(rng, [f"Stop {where} the {route.goal_room}. You have reached the goal.",
                               f"Stop once you are {where} the {route.goal_room}. That's the end of the route."]))
    return " ".join(out)
