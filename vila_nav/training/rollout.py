"""Expert and perturbed rollouts: where the SFT decision points and their labels come from.

A rollout runs one episode in a NavEnv (`vila_nav.envs`) and records

- frames: the observation at the start and after every executed primitive (NaVILA's
  "per_primitive" history: frames[i] is what the agent saw after i primitives), H x W x 3 uint8;
- decisions: the points where the policy is queried, i.e. the start of every mid-level action.
  A decision at step t (t primitives executed so far) sees frames 0..t (current = frames[t]) and
  is labelled with the expert's next mid-level action: the next <= max_merge equal expert
  primitives merged into one NaVILA answer (25/50/75 cm, 15/30/45 degree), or the stop
  sentence when the expert says STOP (within `expert_radius_m` of the goal).

With `face_goal_deg` > 0 the expert, once within the stop radius, first turns in place toward
the goal point until it is within `face_goal_deg` of straight ahead, and only then stops. The
goal of a "stop next to the X" instruction lies next to X, so the frame the stop answer is
learnt from shows the named landmark ahead instead of, as often, beside or behind the agent.

Expert rollout: the expert's chunks are executed as labelled, so concatenating the primitives
of the recorded answers gives back exactly the expert's primitive sequence (ending in STOP).
The expert is asked exactly once per executed primitive (plus once for the answer that ends a
chunk, which then starts the next one): it is stateful (it remembers its last answer to avoid
dithering), so asking twice in the same state is not guaranteed to give the same answer.

Perturbed rollout (DAgger-style recovery data): at a decision point the rollout may, with
probability perturb_prob, execute a random mid-level action instead (direction uniform over
forward / left / right, 1..max_primitives primitives; decided with the rollout's RNG *before*
the expert is asked, so the stateful expert is not told about an action that never ran). From
then on the expert acts again from wherever the agent really is, and every decision after the
first perturbation is recorded with the expert's label (source "recovery"): the states a
policy reaches after its own mistakes, with the action that recovers. Decisions at the
perturbations themselves are not recorded (their label would need a look-ahead).

Policy rollout (DAgger proper, source "dagger"): the same, but the deviating action is the
learner's own (`policy(frames) -> NavAction | None`, asked at a decision point with probability
`policy_prob`), so the recorded states are the ones the trained model really drives itself
into (spinning in place, stopping short, walking into a wall) with the expert's way out. A
policy answer of stop, or one that does not parse, hands the decision back to the expert and
that state is recorded: it teaches the model where not to stop.

With `label_policy`, the decisions the learner takes itself are recorded too, so a learner
that drives itself into a loop (say, turning left and right in place) is told at every state
of the loop what the expert would do there. Their label needs a look-ahead: the environment's
state is saved (`NavEnv.save_state`: pose, counters and the stateful expert's memory), the
expert's chunk is run from there, and the state is restored before the learner's own action
runs; the look-ahead's frames are discarded. A stop label is recorded only within
`expert_radius_m` of the goal. Such a rollout that runs out of steps still has valid labels
(each is the expert's answer for a state it really reached): callers may keep it.

A rollout whose expert does not stop within `expert_radius_m` of the goal (unreachable goal,
stuck, or out of steps) is marked failed and its decisions must not be used: its "stop" would
teach stopping anywhere.

Pure numpy + vila_nav.actions (and the pose arithmetic of vila_nav.envs.pose); the environment
is passed in.
"""
from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Any, Callable

import numpy as np

from vila_nav.actions import NavAction, format_action, merge_primitives, to_primitives
from vila_nav.envs.pose import bearing

MOTIONS = ("MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")
# Slack on the goal check of a STOP (m): the expert's own geodesic and ours may round differently.
_STOP_SLACK_M = 1e-3
# Closer than this (m, straight line) to the goal point, the expert does not turn to face it.
_FACE_MIN_M = 0.3


@dataclasses.dataclass(frozen=True)
class Decision:
    """One query of the policy: at `step` (primitives executed so far), answer `answer`.

    primitives: the expert primitives the answer stands for (["STOP"] for the stop sentence).
    goal_distance_m: geodesic distance (m) from the agent to the goal at the decision, before
    the answer is executed (the target of the training's progress loss).
    visible_objects: {object name: distance (m)} of the named objects in the current view
    (`NavEnv.visible_objects`; the target of the training's object loss), None when the
    simulator does not know them.
    """

    step: int
    answer: str
    action: NavAction
    primitives: tuple[str, ...]
    source: str  # "expert" | "recovery" | "dagger"
    goal_distance_m: float = math.nan
    visible_objects: dict[str, float] | None = None


@dataclasses.dataclass
class Rollout:
    """Frames and decisions of one run of one episode."""

    frames: list[np.ndarray]  # frames[i]: observation after i primitives, H x W x 3 uint8
    decisions: list[Decision]
    executed: list[str]  # every primitive executed, in order (STOP included when reached)
    perturbed_steps: list[int]  # steps at which a perturbation started
    ok: bool  # the expert stopped within expert_radius_m of the goal
    reason: str  # "" when ok, else why not ("max_steps", "stopped_far", ...)
    final_distance_m: float


@dataclasses.dataclass(frozen=True)
class Perturbation:
    """How a perturbed rollout deviates from the expert (see RecoveryConfig)."""

    prob: float = 0.25
    max_count: int = 2
    max_primitives: int = 3
    min_decisions_before: int = 1


def rollout_rng(seed: int, episode_id: str, index: int) -> np.random.Generator:
    """RNG of the index-th rollout of an episode: independent of episode order and sharding."""
    return np.random.default_rng([int(seed), zlib.crc32(episode_id.encode("utf-8")), int(index)])


def run_rollout(
    env: Any,
    episode: Any,
    *,
    expert_radius_m: float,
    max_steps: int,
    max_merge: int = 3,
    forward_step: float = 0.25,
    turn_step: float = 15.0,
    perturbation: Perturbation | None = None,
    rng: np.random.Generator | None = None,
    policy: Callable[[list[np.ndarray]], NavAction | None] | None = None,
    policy_prob: float = 0.5,
    face_goal_deg: float = 0.0,
    label_policy: bool = False,
) -> Rollout:
    """Run `episode` in `env` with the expert (and perturbations when given); see the module doc.

    env: a NavEnv (reset(episode) -> obs, step(primitive) -> obs, expert_action(goal, radius),
    position, geodesic_distance(a, b)). max_steps: primitive budget including STOP (VLN-CE: 500).
    policy: the learner for a DAgger rollout; it gets every frame so far (frames[i] after i
    primitives, current last) and returns its action; asked at a decision point with
    probability policy_prob (rng). Not combined with perturbation.
    label_policy: also record the learner's own decisions, labelled by an expert look-ahead
    (module doc; needs env.save_state / restore_state).
    face_goal_deg: > 0 turns the expert toward the goal before it stops (module doc); 0 = off.
    """
    if (perturbation is not None or policy is not None) and rng is None:
        raise ValueError("a perturbed or policy rollout needs an rng")
    if perturbation is not None and policy is not None:
        raise ValueError("a rollout deviates by perturbation or by policy, not both")
    if not 0.0 <= policy_prob <= 1.0:
        raise ValueError(f"policy_prob must be in [0, 1], got {policy_prob!r}")
    if label_policy and policy is None:
        raise ValueError("label_policy labels a learner's decisions: it needs a policy")
    check_face_goal_deg(face_goal_deg, turn_step)
    goal = np.asarray(episode.goal.position, dtype=np.float64)
    frames = [np.asarray(env.reset(episode), dtype=np.uint8)]
    executed: list[str] = []
    decisions: list[Decision] = []
    perturbed: list[int] = []
    source = "recovery" if perturbation is not None else "dagger" if policy is not None else "expert"
    recording = source == "expert"  # the others record only after their first deviation
    n_decisions = 0
    pending: str | None = None  # the expert's answer that ended the previous chunk (not yet run)

    def step(primitive: str) -> None:
        executed.append(primitive)
        frames.append(np.asarray(env.step(primitive), dtype=np.uint8))

    def distance() -> float:
        return float(env.geodesic_distance(np.asarray(env.position, dtype=np.float64), goal))

    def expert() -> str:
        action = env.expert_action(goal, expert_radius_m)
        if action != "STOP" or face_goal_deg <= 0.0:
            return action
        x, _, z = (float(v) for v in env.position)
        if math.hypot(goal[0] - x, goal[2] - z) < _FACE_MIN_M:
            return action  # on top of the goal point: its direction means nothing
        off = math.degrees(bearing(goal[0] - x, goal[2] - z, float(env.heading)))  # + = to the left
        if abs(off) <= face_goal_deg:
            return action
        return "TURN_LEFT" if off > 0 else "TURN_RIGHT"

    def decision(t: int, chunk: list[str], here: float, seen: dict[str, float] | None) -> Decision:
        """The record of the expert's chunk at step t: ["STOP"] or <= max_merge equal motions."""
        (action,) = merge_primitives(chunk, max_merge, forward_step=forward_step, turn_step=turn_step)
        return Decision(t, format_action(action), action, tuple(chunk), source, here, seen)

    def chunk_from(first: str, run: Callable[[str], Any]) -> list[str]:
        """The expert's mid-level action that starts with `first`: run it and the next equal
        answers (<= max_merge primitives); returns the chunk and leaves its end in `pending`."""
        nonlocal pending
        chunk = [first]
        run(first)
        while len(chunk) < max_merge and len(executed) < max_steps:
            nxt = expert()
            if nxt != first:
                pending = nxt  # starts the next mid-level action
                break
            chunk.append(nxt)
            run(nxt)
        return chunk

    def lookahead(t: int, first: str | None) -> Decision | None:
        """The expert's label for the current state (first: its answer here, if already asked),
        found by running its chunk and then restoring the environment; None for a stop label
        out of the expert's stop radius."""
        nonlocal pending
        saved = env.save_state()
        kept = pending
        try:
            here, seen = distance(), env.visible_objects()
            first = first if first is not None else expert()
            if first == "STOP":
                return decision(t, ["STOP"], here, seen) if here < expert_radius_m + _STOP_SLACK_M else None
            return decision(t, chunk_from(first, env.step), here, seen)  # frames of the trial are not kept
        finally:
            env.restore_state(saved)
            pending = kept

    while len(executed) < max_steps:
        t = len(executed)
        if perturbation is not None and _perturb_now(perturbation, rng, n_decisions, len(perturbed)):
            pending = None  # never executed; the expert re-plans from the perturbed state
            primitive = MOTIONS[int(rng.integers(len(MOTIONS)))]
            count = int(rng.integers(1, perturbation.max_primitives + 1))
            perturbed.append(t)
            recording = True
            for _ in range(min(count, max_steps - t)):
                step(primitive)
            n_decisions += 1
            continue
        if policy is not None and rng.random() < policy_prob:
            action = policy(frames)  # asked before the expert: the stateful expert never hears of it
            motions = [p for p in (to_primitives(action, forward_step, turn_step) if action is not None else [])
                       if p != "STOP"]
            recording = True
            if motions:
                if label_policy:
                    label = lookahead(t, pending)
                    if label is not None:
                        decisions.append(label)
                pending = None  # the expert re-plans from wherever the learner took the agent
                perturbed.append(t)
                for primitive in motions[: max_steps - t]:
                    step(primitive)
                n_decisions += 1
                continue
            # stop or unreadable: the expert decides this state, and it is recorded
        first = pending if pending is not None else expert()
        pending = None
        here = distance()  # m; the agent has not moved since frames[t]
        seen = env.visible_objects() if recording else None  # what frames[t] shows
        if first == "STOP":
            executed.append("STOP")
            final = here
            if not final < expert_radius_m + _STOP_SLACK_M:
                return Rollout(frames, decisions, executed, perturbed, False, "stopped_far", final)
            if recording:
                decisions.append(decision(t, ["STOP"], final, seen))
            return Rollout(frames, decisions, executed, perturbed, True, "", final)
        # One mid-level action: the expert's next <= max_merge equal primitives.
        chunk = chunk_from(first, step)
        if recording:
            decisions.append(decision(t, chunk, here, seen))
        n_decisions += 1
    return Rollout(frames, decisions, executed, perturbed, False, "max_steps", distance())


def check_face_goal_deg(face_goal_deg: float, turn_step: float, turn_name: str = "turn_step") -> None:
    """ValueError unless face_goal_deg is 0 (off) or in [turn_step / 2, 180) degrees: below half
    a turn step the expert could turn back and forth across the goal forever."""
    if not (math.isfinite(face_goal_deg) and (face_goal_deg == 0.0 or turn_step / 2 <= face_goal_deg < 180.0)):
        raise ValueError(f"face_goal_deg must be 0 (off) or in [{turn_name} / 2 = {turn_step / 2:g}, 180) degrees, "
                         f"got {face_goal_deg!r}")


def _perturb_now(p: Perturbation, rng: np.random.Generator, n_decisions: int, n_done: int) -> bool:
    if n_done >= p.max_count or n_decisions < p.min_decisions_before:
        return False
    return bool(rng.random() < p.prob)
