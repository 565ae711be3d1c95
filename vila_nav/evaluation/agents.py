"""Agents the evaluator can run: the VILA policy and three baselines.

An agent answers one VLN-CE primitive per simulator step:

    agent.reset(episode)              # start of every episode (clears all per-episode state)
    primitive = agent.act(obs, env)   # obs: H x W x 3 uint8 RGB; returns "MOVE_FORWARD",
                                      # "TURN_LEFT", "TURN_RIGHT" or "STOP"
    agent.episode_log()               # JSON-able details for the per-episode row ({} for baselines)

Agents never touch metrics; `env` is passed so the oracle can ask the simulator's expert.

- RandomAgent: samples primitives with fixed weights from an RNG seeded per episode by
  (seed, episode_id), so results do not depend on sharding, order or resume.
- ForwardAgent: always MOVE_FORWARD and never STOP, so its SR is 0 by design (it runs until
  max_steps); it measures how far "just walk" gets (OS, NE) and is a sanity floor.
- OracleAgent: the simulator's shortest-path expert (`env.expert_action(goal, radius)`), which
  STOPs once within `radius` of the goal. radius defaults to 1.0 m, well inside the 3.0 m success
  distance, so the 0.25 m primitive quantisation and the geodesic grid cannot leave it at
  3.0 m or more: SR 100% on reachable goals. It is the upper bound and the speed benchmark.
- VilaAgent: NaVILA's loop. One model query per mid-level action; the answer is parsed, expanded
  into primitives; the first primitive runs now and the rest are replayed from a queue without
  querying. The frame history gets one frame per executed primitive (NaVILA's Habitat policy).
"""
from __future__ import annotations

import zlib
from collections import deque
from typing import Any, Sequence

import numpy as np

from vila_nav.episodes import Episode
from vila_nav.turn_guard import TurnGuard

PRIMITIVES = ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")  # VLN-CE id order


class Agent:
    """Base class: per-episode reset, one primitive per step, an optional per-episode log."""

    name = "agent"

    def reset(self, episode: Episode) -> None:
        """Start a new episode; every per-episode state must be cleared here."""

    def act(self, observation: np.ndarray, env: Any) -> str:
        """The next primitive for `observation` (H x W x 3 uint8); `env` is the NavEnv."""
        raise NotImplementedError

    def episode_log(self) -> dict[str, Any]:
        """JSON-able details of the current episode for the results row."""
        return {}


def episode_seed(seed: int, episode_id: str) -> list[int]:
    """RNG seed material for one episode: stable across processes (crc32, not hash())."""
    return [int(seed), zlib.crc32(episode_id.encode("utf-8"))]


class RandomAgent(Agent):
    """Random primitives with `weights` over (STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT).

    The defaults favour moving forward and rarely stop (VLN-CE's random baseline likewise
    samples from training-action frequencies rather than uniformly).
    """

    name = "random"

    def __init__(self, seed: int = 0, weights: Sequence[float] = (0.02, 0.68, 0.15, 0.15)):
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (4,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"RandomAgent weights must be 4 finite numbers >= 0 with a positive sum "
                             f"(STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT), got {list(weights)}")
        self.seed = int(seed)
        self.p = w / w.sum()
        self.rng = np.random.default_rng(self.seed)

    def reset(self, episode: Episode) -> None:
        self.rng = np.random.default_rng(episode_seed(self.seed, episode.episode_id))

    def act(self, observation: np.ndarray, env: Any) -> str:
        return PRIMITIVES[int(self.rng.choice(4, p=self.p))]


class ForwardAgent(Agent):
    """Always MOVE_FORWARD, never STOP: SR is 0 by design (the episode ends at max_steps)."""

    name = "forward"

    def act(self, observation: np.ndarray, env: Any) -> str:
        return "MOVE_FORWARD"


class OracleAgent(Agent):
    """The simulator's shortest-path expert towards the episode's (first) goal.

    radius (m): the expert STOPs once within it; 1.0 m (default) < 3.0 m success distance.
    """

    name = "oracle"

    def __init__(self, radius: float = 1.0):
        if not (np.isfinite(radius) and radius > 0):
            raise ValueError(f"OracleAgent radius must be a finite number > 0 m, got {radius}")
        self.radius = float(radius)
        self._goal: tuple[float, float, float] | None = None

    def reset(self, episode: Episode) -> None:
        self._goal = episode.goal.position

    def act(self, observation: np.ndarray, env: Any) -> str:
        if self._goal is None:
            raise RuntimeError("OracleAgent.act before reset")
        return env.expert_action(np.asarray(self._goal, dtype=np.float64), self.radius)


class VilaAgent(Agent):
    """NaVILA's policy loop around a loaded VILA model (see the module docstring).

    model: has generate(frames, instruction) -> str, reset(), num_frames.
    history_cfg: FrameHistoryConfig; its policy must be "per_primitive" in simulation and its
    num_frames must be 0 (the model's) or equal model.num_frames. parser_cfg: ParserConfig;
    unparseable text follows on_unparseable ("stop": STOP now; "requery": ask again up to
    max_requeries times, then STOP).
    blind: feed black frames instead of observations (the "blind" ablation).
    """

    name = "vila"

    def __init__(self, model: Any, history_cfg: Any = None, parser_cfg: Any = None,
                 forward_step: float = 0.25, turn_step: float = 15.0, blind: bool = False):
        from vila_nav.actions import ParserConfig
        from vila_nav.frames import FrameHistory, FrameHistoryConfig

        history_cfg = history_cfg if history_cfg is not None else FrameHistoryConfig(num_frames=0)
        if history_cfg.policy != "per_primitive":
            raise ValueError(f"in simulation the frame history records one frame per executed primitive: "
                             f"history.policy must be 'per_primitive', got {history_cfg.policy!r}")
        history_cfg = history_cfg.for_model(int(model.num_frames), "history.num_frames")  # 0 = the model's
        self.model = model
        self.history = FrameHistory(history_cfg)
        self.parser_cfg = parser_cfg if parser_cfg is not None else ParserConfig()
        self.forward_step, self.turn_step, self.blind = float(forward_step), float(turn_step), bool(blind)
        self.guard = TurnGuard(self.parser_cfg.on_turn_reversal, self.forward_step)
        self.queue: deque[str] = deque()
        self._instruction = ""
        self._step = 0
        self._log: dict[str, Any] = {}

    def reset(self, episode: Episode) -> None:
        self.model.reset()  # per-episode feature cache
        self.history.reset()
        self.queue.clear()  # NaVILA never cleared it between episodes; we always do
        self._instruction = episode.instruction.text
        self._step = 0
        self.guard.reset()
        self._log = {"queries": [], "unparseable": 0, "requeries": 0, "unparseable_stops": 0}

    def _decide(self, frames: list[np.ndarray]) -> list[str]:
        """Query the model (re-querying per the parser policy) and expand the answer."""
        from vila_nav.actions import NavAction, parse_action, resolve_unparseable, to_primitives

        attempts = 0
        while True:
            text = self.model.generate(frames, self._instruction)
            action = parse_action(text, self.parser_cfg)
            query = {"step": self._step, "text": text, "action": None if action is None else [action.kind, action.amount]}
            if action is not None:
                run = self.guard.apply(action)
                if run != action:  # a turn back in place, replaced (vila_nav.turn_guard)
                    query["ran"] = [run.kind, run.amount]
                action = run
            primitives = to_primitives(action, self.forward_step, self.turn_step) if action is not None else []
            self._log["queries"].append(query)
            if primitives:
                return primitives
            self._log["unparseable"] += 1
            if resolve_unparseable(self.parser_cfg, attempts) == "stop":
                self._log["unparseable_stops"] += 1
                return to_primitives(NavAction("stop"))
            attempts += 1
            self._log["requeries"] += 1

    def act(self, observation: np.ndarray, env: Any) -> str:
        obs = np.zeros_like(observation) if self.blind else observation
        if not self.queue:
            self.queue.extend(self._decide(self.history.sampled(current=obs)))
        primitive = self.queue.popleft()
        # This observation now becomes history: one frame per executed primitive.
        self.history.offer(obs, float(self._step), event="primitive")
        self._step += 1
        return primitive

    def episode_log(self) -> dict[str, Any]:
        return {**self._log, "turn_reversals": self.guard.overrides}
