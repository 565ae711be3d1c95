"""A loaded VILA model as the learner of a DAgger rollout (rollout.run_rollout(policy=...)).

    policy = ModelPolicy(load(path))
    policy.start(episode.instruction.text)      # per rollout: clears the model's frame cache
    action = policy(frames)                     # frames[i]: view after i primitives, current last

It sees exactly what the evaluator's VilaAgent sees: NaVILA's sampling of the per-primitive
history (vila_nav.frames.sample_indices, black padding), the episode instruction, greedy
decoding, and the robot's parser (None for unreadable text).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from vila_nav.actions import NavAction, ParserConfig, parse_action
from vila_nav.frames import sample_indices


class ModelPolicy:
    """frames so far -> the model's parsed action (see the module docstring)."""

    def __init__(self, model: Any, parser_cfg: ParserConfig | None = None):
        self.model = model
        self.parser_cfg = parser_cfg if parser_cfg is not None else ParserConfig()
        self.instruction = ""
        self.answers: list[str] = []  # raw texts of the current rollout (for inspection)

    def start(self, instruction: str) -> None:
        """A new rollout of an episode with this instruction."""
        self.model.reset()
        self.instruction = str(instruction)
        self.answers = []

    def __call__(self, frames: list[np.ndarray]) -> NavAction | None:
        if not frames:
            raise ValueError("ModelPolicy needs at least the current frame")
        black = np.zeros_like(frames[-1])
        shown = [black if i is None else frames[i] for i in sample_indices(len(frames), int(self.model.num_frames))]
        text = self.model.generate(shown, self.instruction)
        self.answers.append(text)
        return parse_action(text, self.parser_cfg)
