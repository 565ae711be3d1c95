"""TurnGuard: the decision-time rule that replaces a turn back in place by a forward step."""
from __future__ import annotations

import pytest

from vila_nav.actions import NavAction, ParserConfig
from vila_nav.turn_guard import TurnGuard

L45, R45, R15 = NavAction("turn_left", 45.0), NavAction("turn_right", 45.0), NavAction("turn_right", 15.0)
F75, STOP = NavAction("forward", 0.75), NavAction("stop")
STEP = NavAction("forward", 0.25)


def run(guard: TurnGuard, actions: list[NavAction]) -> list[NavAction]:
    return [guard.apply(a) for a in actions]


def test_allow_runs_every_answer_as_given():
    g = TurnGuard("allow")
    seq = [L45, R45, L45, R15, F75, STOP]
    assert run(g, seq) == seq and g.overrides == 0


def test_forward_replaces_only_a_turn_back_in_place():
    g = TurnGuard("forward")
    # left, then right at once: replaced; the step clears the memory, so the next left runs
    assert run(g, [L45, R45, L45, L45, R15]) == [L45, STEP, L45, L45, STEP]
    assert g.overrides == 2
    # a forward move in between means the robot is somewhere else: the turn back runs
    g.reset()
    assert g.overrides == 0
    assert run(g, [R45, F75, L45, STOP, R45]) == [R45, F75, L45, STOP, R45]
    # reset forgets the last turn (new episode / instruction)
    g.apply(L45)
    g.reset()
    assert g.apply(R45) == R45
    # a zero turn moves nothing: it neither counts as a turn nor is replaced
    g.reset()
    assert run(g, [L45, NavAction("turn_right", 0.0), R45]) == [L45, NavAction("turn_right", 0.0), STEP]


def test_step_length_and_bad_policies():
    assert TurnGuard("forward", forward_m=0.5).forward == NavAction("forward", 0.5)
    with pytest.raises(ValueError, match="on_turn_reversal"):
        TurnGuard("spin")
    with pytest.raises(ValueError, match="on_turn_reversal"):
        ParserConfig(on_turn_reversal="spin")


def test_the_rule_is_the_default_of_the_evaluator_the_node_and_the_guard():
    """One default everywhere (README "Turning back in place"): the evaluator's preset, the
    node's parameter file (checked against the declared defaults in test_ros_launch) and the
    guard itself; `allow` (NaVILA's exact policy) is one override away."""
    from vila_nav.config import compose
    from vila_nav.evaluation.config import EvalConfig

    assert ParserConfig().on_turn_reversal == "forward" and TurnGuard().policy == "forward"
    assert compose(EvalConfig, "eval", []).parser.on_turn_reversal == "forward"
    assert compose(EvalConfig, "eval", ["parser.on_turn_reversal=allow"]).parser.on_turn_reversal == "allow"
    assert run(TurnGuard(), [L45, R45]) == [L45, STEP]
