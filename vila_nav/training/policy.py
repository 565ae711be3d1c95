"""A loaded VILA model as the learner of a DAgger rollout (rollout.run_rollout(policy=...)).

    policy = ModelPolicy(load(path))
    policy.start(episode.instruction.text)      # per rollout: clears the model's frame cache
    action = policy(frames)                     # frames[i]: view after i primitives, current last

It sees exactly what the evaluator's VilaAgent sees: NaVILA's sampling of the per-primitive
history (vila_nav.frames.sample_indices, black padding), the episode instruction, greedy
decoding, and the robot's parser (None for unreadable text). With
`parser_cfg.on_turn_reversal="forward"` its answers go through the same turn-reversal rule as
the evaluator's and the node's (vila_nav.turn_guard), so data built with a model that will be
deployed with the rule shows the states the deployed model reaches. The rule remembers the
learner's last action only while the learner acts in a row: when the expert (or a perturbation)
has moved the agent since, the frame count says so and the rule starts afresh (it cannot see the
expert's turns, so it never replaces a turn because of one).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from vila_nav.actions import FORWARD_STEP_M, TURN_STEP_DEG, NavAction, ParserConfig, parse_action, to_primitives
from vila_nav.frames import sample_indices
from vila_nav.turn_guard import TurnGuard


class ModelPolicy:
    """frames so far -> the model's parsed action (see the module docstring)."""

    def __init__(self, model: Any, parser_cfg: ParserConfig | None = None, forward_step: float = FORWARD_STEP_M,
                 turn_step: float = TURN_STEP_DEG):
        self.model = model
        self.parser_cfg = parser_cfg if parser_cfg is not None else ParserConfig()
        self.forward_step, self.turn_step = float(forward_step), float(turn_step)  # m, degrees per primitive
        self.guard = TurnGuard(self.parser_cfg.on_turn_reversal, self.forward_step)
        self.instruction = ""
        self.answers: list[str] = []  # raw texts of the current rollout (for inspection)
        self._next_len = -1  # len(frames) at the next call if the learner's last action runs uninterrupted

    def start(self, instruction: str) -> None:
        """A new rollout of an episode with this instruction."""
        self.model.reset()
        self.instruction = str(instruction)
        self.answers = []
        self.guard.reset()
        self._next_len = -1

    def __call__(self, frames: list[np.ndarray]) -> NavAction | None:
        if not frames:
            raise ValueError("ModelPolicy needs at least the current frame")
        black = np.zeros_like(frames[-1])
        shown = [black if i is None else frames[i] for i in sample_indices(len(frames), int(self.model.num_frames))]
        text = self.model.generate(shown, self.instruction)
        self.answers.append(text)
        action = parse_action(text, self.parser_cfg)
        if len(frames) != self._next_len:  # someone else moved the agent since the learner's last action
            self.guard.forget()
        if action is None:
            self._next_len = -1
            return None
        action = self.guard.apply(action)
        motions = [p for p in to_primitives(action, self.forward_step, self.turn_step) if p != "STOP"]
        self._next_len = len(frames) + len(motions) if motions else -1
        return action
