"""Expert next action: a shortest-path follower on the free-space grid that walks a route like a
person would, in long straight runs and decisive turns (the role of habitat-sim's
GreedyGeodesicFollower / VLN-CE's ShortestPathFollower, with cleaner action sequences).

Each call:
1. STOP if the geodesic distance to the goal is below `goal_radius` (or the goal is unreachable).
2. Aim point (string pulling): follow steepest descent of the goal's distance field, planned
   with an extra wall margin, for up to `lookahead_m` metres; the aim point is the last point of
   that path's prefix in straight, collision-free sight from the agent (checked with the agent
   radius plus half the margin), i.e. the next corner of the taut path, or the goal itself when
   it is in sight. While the agent walks towards a corner the aim point stays put, so the
   heading error barely changes and the agent keeps walking straight.
3. Hysteresis on the heading error to the aim point (turns are `turn_angle_deg` steps):
   - walking: keep moving forward while the error is at most `start_turn_deg` (one turn step by
     default) or the heading passes within `miss_m` of the aim point (for the goal: close enough
     to end inside `goal_radius`), as long as the next step stays clear of walls; else turn.
     Before its first forward move the agent faces the aim point within half a step instead;
   - turning: keep turning the same way until the error is within half a step, then walk.
   The follower never answers the opposite of a turn it just made in place. A 90 deg
   corner is one run of six turns (answers 45 + 45 deg), not a turn-step-turn staircase.
4. Safety: a forward step that would come closer than the agent radius + 2 cm to a wall (swept
   over `forward_step_m`) is replaced by a turn towards the aim point whenever the error is over
   half a step. A forward step that did not move the agent at all (wedged in a corner) is
   followed by turns away from it, always the same way, until a step is clear.
5. Fallbacks: when the margin-keeping plan cannot lead from the agent to the goal (the agent
   stands inside the margin with no straight way out, or only a passage narrower than the
   margin leads to the goal), the path is planned with the agent radius + 2 cm, then with the
   bare radius (geodesic distances use that grid too).

The follower is stateful (the turn it is committed to, its last answer, the way it escapes a
corner). The turn commitment only holds while the agent is where the follower expects it (same
place, heading advanced by exactly the turn it asked for), so a caller that executes something
else (a perturbed rollout) gets a fresh decision. The same sequence of calls always gives the
same answers.

goal_radius: the episode generator uses a small radius (0.25 m) so reference routes end at the
goal; an oracle agent in evaluation may pass the success distance (3.0 m): it then stops as soon
as success is guaranteed (geodesic distance < 3.0 m, strict like VLN-CE's success test).
"""
from __future__ import annotations

import math

import numpy as np

from vila_nav.envs.navgrid import DistanceField, NavGrid
from vila_nav.envs.pose import bearing, forward_vector, wrap_angle

_TURNS = ("TURN_LEFT", "TURN_RIGHT")
_SAFETY_M = 0.02  # clearance (m) a forward step keeps from walls beyond the agent radius
_YAW_EPS = 1e-6  # rad: "the heading is the one the last turn produced"
_MOVED_M = 1e-3  # m: a smaller displacement counts as not having moved
_DETOUR_M = 0.5  # m: a plan whose goal is this much farther (walking) than straight from the real goal is cut off


def _copied(value: object) -> object:
    """An independent copy of one remembered value (arrays are mutable; the rest is immutable)."""
    return value.copy() if isinstance(value, np.ndarray) else value


class ShortestPathFollower:
    """Stateful expert for one agent; call reset() at the start of every episode.

    plan_grid: free-space grid with the planning clearance (agent radius + margin): the path;
    move_grid: grid with the agent's true radius: forward-step safety (sight lines use the
    radius plus half the margin); turn_angle_deg: the TURN_* step (deg); lookahead_m: how far
    along the path (m) the aim point may lie (the path is read this far);
    start_turn_deg: heading error (deg) that starts a turn while walking (default: one turn
    step; at least half a step); miss_m: a heading passing within this distance (m) of the aim
    point needs no turn; forward_step_m: the MOVE_FORWARD length (m) the safety check sweeps.
    """

    def __init__(self, plan_grid: NavGrid, move_grid: NavGrid, turn_angle_deg: float, lookahead_m: float = 8.0, *,
                 start_turn_deg: float | None = None, miss_m: float = 0.15, forward_step_m: float = 0.25):
        start_deg = float(turn_angle_deg if start_turn_deg is None else start_turn_deg)
        for name, value in (("turn_angle_deg", turn_angle_deg), ("lookahead_m", lookahead_m), ("forward_step_m", forward_step_m)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ShortestPathFollower: {name} must be a finite number > 0, got {value}")
        if not (math.isfinite(miss_m) and miss_m >= 0):
            raise ValueError(f"ShortestPathFollower: miss_m must be a finite number >= 0, got {miss_m}")
        if not (turn_angle_deg / 2 <= start_deg < 180):
            raise ValueError(f"ShortestPathFollower: start_turn_deg must be in [half a turn step ({turn_angle_deg / 2}), 180), got {start_deg}")
        self.plan = plan_grid
        self.move = move_grid
        self.sight = move_grid.with_radius((move_grid.radius + plan_grid.radius) / 2)
        safe = move_grid.with_radius(move_grid.radius + _SAFETY_M)
        self._planners = ((plan_grid, self.sight), (safe, safe))  # (path grid, sight grid), best first
        self.turn = math.radians(turn_angle_deg)  # rad per TURN_*
        self.half = self.turn / 2 + 1e-6  # rad: done turning once |error| is within half a step
        self.start = math.radians(start_deg) + 1e-6  # rad: error that starts a turn while walking
        self.lookahead = float(lookahead_m)
        self.miss = float(miss_m)
        self.forward_step = float(forward_step_m)
        self.reset()

    def reset(self) -> None:
        """Forget the turn commitment and the last answer (new episode)."""
        self._last_action = ""
        self._last_position: np.ndarray | None = None
        self._last_yaw = 0.0
        self._turning = ""  # "TURN_LEFT" | "TURN_RIGHT" while committed to a turn
        self._moved = False  # the agent moved since the last answer
        self._turned_as_told = False  # ... and the last answer was a turn the agent made exactly
        self._stuck = False  # a forward move made no progress and the agent has not moved since
        self._escape = ""  # the way it turns to get unstuck (kept until it moves)
        self._escape_left = 0  # escape turns left before trying a forward step anyway

    _STATE = ("_last_action", "_last_position", "_last_yaw", "_turning", "_moved", "_turned_as_told", "_stuck",
              "_escape", "_escape_left")

    def state(self) -> dict:
        """A copy of what the follower remembers between answers (set_state puts it back): lets a
        caller ask it ahead along a trial path and then return to where it was."""
        return {k: _copied(getattr(self, k)) for k in self._STATE}

    def set_state(self, state: dict) -> None:
        """Restore a state() taken from this follower."""
        if set(state) != set(self._STATE):
            raise ValueError(f"ShortestPathFollower.set_state: expected the keys {sorted(self._STATE)}, got {sorted(state)}")
        for k in self._STATE:
            setattr(self, k, _copied(state[k]))

    def next_action(self, position: np.ndarray, yaw: float, goal: np.ndarray, goal_radius: float, distance: float) -> str:
        """The next action for an agent at `position` (x, z) with heading `yaw` (rad) towards
        `goal` (x, z); `distance` is the current geodesic distance to the goal (m)."""
        p = np.asarray(position, dtype=np.float64)[:2]
        yaw = float(yaw)
        if not math.isfinite(distance) or distance < goal_radius:
            return self._answer("STOP", p, yaw)
        self._observe(p, yaw)
        goal = np.asarray(goal, dtype=np.float64)[:2]
        target = self._target(p, goal)
        error = bearing(*(target - p), yaw)  # rad, + = the aim point is to the left
        if self._stuck and (self._last_action == "MOVE_FORWARD" or self._escape):
            return self._escape_turn(p, yaw, error)
        if self._turning:
            remaining = error if self._turning == "TURN_LEFT" else -error  # still to turn that way
            if remaining > self.half:
                return self._answer(self._turning, p, yaw)
            self._turning = ""  # done: |error| <= half a step (the aim point is fixed while turning)
        if abs(error) <= self.half:
            return self._answer("MOVE_FORWARD", p, yaw)
        if self._keeps_walking(p, yaw, target, error, goal, goal_radius) and self._step_clear(p, yaw):
            return self._answer("MOVE_FORWARD", p, yaw)
        action = "TURN_LEFT" if error > 0 else "TURN_RIGHT"
        if self._turned_as_told and action != self._last_action:
            return self._answer("MOVE_FORWARD", p, yaw)  # never undo our own turn in place
        self._turning = action
        return self._answer(action, p, yaw)

    # ---- decisions --------------------------------------------------------------------------
    def _escape_turn(self, p: np.ndarray, yaw: float, error: float) -> str:
        """The agent is wedged (its last forward step did not move it at all): turn away from the
        blocked heading, towards the aim and always the same way until it moves, until a step is
        clear again (at most a full circle); then try a forward step."""
        if not self._escape:
            self._escape = "TURN_LEFT" if error >= 0 else "TURN_RIGHT"
            self._escape_left = int(math.ceil(2 * math.pi / self.turn))
        elif self._last_action == self._escape and (self._escape_left <= 0 or self._step_clear(p, yaw)):
            self._escape_left = int(math.ceil(2 * math.pi / self.turn))
            return self._answer("MOVE_FORWARD", p, yaw)
        self._escape_left -= 1
        self._turning = ""
        return self._answer(self._escape, p, yaw)

    def _keeps_walking(self, p: np.ndarray, yaw: float, target: np.ndarray, error: float, goal: np.ndarray, goal_radius: float) -> bool:
        """Hysteresis while walking: a small error, or a heading that passes close to the aim.
        Before the first forward move of an episode the agent faces its aim properly instead."""
        if abs(error) <= self.start and self._last_action == "MOVE_FORWARD":
            return True
        if abs(error) >= math.pi / 2:
            return False
        miss = float(np.hypot(*(target - p))) * math.sin(abs(error))  # m between the aim and the heading line
        tolerance = self.miss
        if float(np.hypot(*(target - goal))) < 1e-9:
            # Steps of forward_step along a line passing `miss` from the goal come within
            # hypot(miss, step / 2) of it: inside goal_radius (with 20% slack) is good enough.
            reach = goal_radius ** 2 - (self.forward_step / 2) ** 2
            tolerance = max(tolerance, 0.8 * math.sqrt(reach) if reach > 0 else 0.0)
        return miss <= tolerance

    def _step_clear(self, p: np.ndarray, yaw: float) -> bool:
        """True if a forward step from p at yaw keeps the agent radius + 2 cm from walls, or at
        least gets no closer to them than the agent already is."""
        q = p + self.forward_step * forward_vector(yaw)
        need = min(self.move.radius + _SAFETY_M, float(self.move.clearance_at(p[None])[0]) - 1e-9)
        return self.move.segment_clearance(p, q) >= need

    # ---- state ------------------------------------------------------------------------------
    def _observe(self, p: np.ndarray, yaw: float) -> None:
        """Update what happened since the last answer; keep the turn commitment only if the agent
        is where that answer put it."""
        last = self._last_position
        self._moved = last is not None and float(np.hypot(*(p - last))) > _MOVED_M
        if self._last_action == "MOVE_FORWARD" and not self._moved and abs(wrap_angle(yaw - self._last_yaw)) <= _YAW_EPS:
            self._stuck = True  # the step was taken and blocked completely
        elif self._moved:
            self._stuck, self._escape = False, ""
        self._turned_as_told = False  # the last answer was a turn and the agent did exactly that
        if self._last_action in _TURNS and not self._moved:
            sign = 1.0 if self._last_action == "TURN_LEFT" else -1.0
            self._turned_as_told = abs(wrap_angle(yaw - self._last_yaw - sign * self.turn)) <= _YAW_EPS
        if self._turning and not (self._turned_as_told and self._last_action == self._turning):
            self._turning = ""

    def _answer(self, action: str, p: np.ndarray, yaw: float) -> str:
        self._last_action = action
        self._last_position = p.copy()
        self._last_yaw = yaw
        if action not in _TURNS:
            self._turning = ""
        return action

    # ---- geometry ---------------------------------------------------------------------------
    def _target(self, p: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The aim point (x, z): the end of the planned path's prefix in straight sight within
        lookahead_m (string pulling), the goal when in sight; after a blocked forward move, the
        path point ~3 cells ahead."""
        field, sight = self._planner(p, goal)
        res = field.grid.resolution
        if self._stuck:
            path = field.descend(p, max_cells=3)
            return path[-1] if len(path) > 1 else goal
        if float(np.hypot(*(goal - p))) <= self.lookahead and sight.line_free(p, goal, skip=res):
            return goal
        path = field.descend(p, max_cells=int(math.ceil(self.lookahead / res)))
        along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])  # m along the path
        path = path[along <= self.lookahead]
        if len(path) < 2:
            return goal
        best = path[self._visible_prefix(sight, p, path)]
        return goal if float(np.hypot(*(best - p))) < 1e-6 else best

    def _planner(self, p: np.ndarray, goal: np.ndarray) -> tuple[DistanceField, NavGrid]:
        """The distance field to descend and the grid for sight lines: the margin-keeping plan
        (sight with half the margin) if it leads from p to the goal, else the same with a small
        safety clearance only, else the agent's radius. A plan does not lead there when p's
        nearest cell of it is not in straight reach, or when only a passage narrower than its
        clearance leads to the goal (its goal cell is then a long walk from the real goal)."""
        move_field = self.move.field(goal)
        for grid, sight in self._planners:
            field = grid.field(goal)
            start = grid.centers(*grid.snap_cell(p))
            if not math.isfinite(field.at(start)) or not self.move.line_free(p, start, skip=grid.resolution):
                continue
            snapped = field.goal  # the nearest cell to the goal with this clearance
            if move_field.at(snapped) <= float(np.hypot(*(snapped - goal))) + _DETOUR_M:
                return field, sight
        return move_field, self.move

    @staticmethod
    def _visible_prefix(grid: NavGrid, p: np.ndarray, path: np.ndarray) -> int:
        """Index (>= 1) of the last point of `path` (K, 2) before the first one out of straight
        sight from p on `grid`: exponential search, then bisection (about 2 log2 K sight checks)."""
        res = grid.resolution

        def visible(i: int) -> bool:
            return grid.line_free(p, path[i], skip=res)  # skip: the agent's own cell may be blocked

        n, lo, hi = len(path), 0, 1
        while hi < n and visible(hi):
            lo = hi
            hi = n if hi == n - 1 else min(2 * hi, n - 1)
        while hi - lo > 1:  # lo: in sight (or 0); hi: out of sight (or past the end)
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if visible(mid) else (lo, mid)
        return max(lo, 1)  # nothing in sight (hugging a corner): the next path cell
