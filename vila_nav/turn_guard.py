"""Turn-reversal guard: a decision-time rule against turning back and forth in place.

    guard = TurnGuard(cfg.on_turn_reversal)     # "forward" (the default) | "allow" (NaVILA's policy)
    guard.reset()                               # per episode / instruction
    guard.forget()                              # another controller moved the robot in between
    action = guard.apply(model_action)          # the action to execute instead

A greedy policy that sees few frames can alternate between two headings forever: at heading A
it answers "turn left 45 degree", at the heading that turn leads to it answers "turn right 45
degree", and so on until the step limit (NaVILA's history spreads its frames over the whole
episode, so after a few dozen primitives it no longer sees the turn it just made). With
"forward", a turn answered right after a turn in place the other way (no forward motion in
between) is replaced by one forward step of `forward_m`: the rule the shortest-path expert
follows ("never undo your own turn in place"). The new position gives new views, and the
next decision is the model's again. With "allow" every answer runs as given, as in NaVILA.

"forward" is the default of the evaluator and the node: it raises the shipped model's val_unseen
SR, and a robot that turns back and forth until someone notices is a failure of the product
(README "Turning back in place" has the figures).

Pure Python (vila_nav.actions only): the evaluator's VilaAgent, the ROS node and the DAgger learner
(vila_nav.training.policy) share it.
"""
from __future__ import annotations

from vila_nav.actions import FORWARD_STEP_M, NavAction, check_turn_reversal

_TURNS = ("turn_left", "turn_right")


class TurnGuard:
    """See the module docstring. overrides: answers replaced since the last reset()."""

    def __init__(self, policy: str = "forward", forward_m: float = FORWARD_STEP_M):
        self.policy = check_turn_reversal(policy)
        self.forward = NavAction("forward", forward_m)
        self.overrides = 0
        self._last_turn = ""  # "turn_left" | "turn_right": the last action, a turn in place; "" otherwise

    def reset(self) -> None:
        self.overrides = 0
        self._last_turn = ""

    def forget(self) -> None:
        """Forget the last action (something this guard did not see has moved the robot since);
        the count of overrides stays."""
        self._last_turn = ""

    def apply(self, action: NavAction) -> NavAction:
        """The action to execute for the model's `action` (and remember it)."""
        if (self.policy == "forward" and action.kind in _TURNS and action.amount > 0
                and self._last_turn and action.kind != self._last_turn):
            action = self.forward
            self.overrides += 1
        if action.kind == "stop" or action.amount > 0:  # a zero motion leaves the robot where it was
            self._last_turn = action.kind if action.kind in _TURNS else ""
        return action
