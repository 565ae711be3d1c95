"""Agents: the VILA policy loop (queue, history, unparseable policy, per-episode reset) and the
baselines' determinism; the VILA agent end to end in the simulator.

The VILA agent always runs real tiny checkpoints through the full model code (SigLIP tower,
projector, prompt, KV-cached greedy decoding, detokenisation): answering checkpoints
(vila_nav.model.testing.make_answering_checkpoint: hand-set LM weights so greedy decoding always
spells one known sentence) give exact queue/history bookkeeping, and the random tiny checkpoint
gives garbage text for the unparseable policy. `Recorder` wraps the real model only to record
what it was asked (frames by fill value, instruction) and its last_stats; the answers are the
model's own.

Not tested here: "requery recovers when a later answer parses". A re-query sends the same frames
and instruction to a deterministic greedy model, so a real model answers the same text again; the
recovery path needs answers that change between identical inputs, which only a scripted stand-in
could give (the parser policy itself is covered by the unparseable tests below).
"""
from __future__ import annotations

import numpy as np
import pytest

from vila_nav.actions import ParserConfig
from vila_nav.episodes import Episode, Goal, Instruction
from vila_nav.evaluation.agents import ForwardAgent, RandomAgent, VilaAgent
from vila_nav.frames import FrameHistoryConfig
from vila_nav.model.testing import AlternatingModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FORWARD = "The next action is move forward 75 cm."  # 3 primitives of 0.25 m
TURN_LEFT = "The next action is turn left 30 degree."  # 2 primitives of 15 deg
TURN_RIGHT = "The next action is turn right 15 degree."  # 1 primitive
STOP = "I think I should stop."
HISTORY = FrameHistoryConfig(num_frames=4, blank_shape=(8, 8, 3))


def _episode(eid: str = "1", text: str = "Go to the kitchen.") -> Episode:
    return Episode(eid, eid, "house_0050", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0), (Goal((1.0, 0.0, 1.0)),),
                   Instruction(text), ((0.0, 0.0, 0.0), (1.0, 0.0, 1.0)))


def _obs(i: int) -> np.ndarray:
    return np.full((8, 8, 3), i, dtype=np.uint8)  # frame i is filled with value i


class Recorder:
    """A real VilaModel with a record of its calls: generate and reset delegate to the model."""

    def __init__(self, model):
        self.model = model
        self.calls = []  # (frame fill values, instruction) per generate
        self.stats = []  # the model's last_stats after each generate
        self.resets = 0

    @property
    def num_frames(self) -> int:
        return self.model.num_frames

    def generate(self, frames, instruction):
        self.calls.append(([int(f[0, 0, 0]) for f in frames], instruction))
        text = self.model.generate(frames, instruction)
        self.stats.append(dict(self.model.last_stats))
        return text

    def reset(self):
        self.resets += 1
        self.model.reset()


@pytest.fixture(scope="module")
def model_for(answering_checkpoint, tiny_checkpoint):
    """Factory: a freshly loaded real 4-frame tiny model answering `answer` (None: random weights,
    garbage text), wrapped in a Recorder."""
    import vila_nav.model as vm

    garbage = []

    def make(answer: str | None) -> Recorder:
        if answer is None:
            if not garbage:
                garbage.append(tiny_checkpoint(num_video_frames=4))
            path = garbage[0]
        else:
            path = answering_checkpoint(answer, num_video_frames=4)
        return Recorder(vm.load(str(path)))

    return make


def test_vila_agent_queues_primitives_and_samples_history(model_for):
    model = model_for(FORWARD)
    agent = VilaAgent(model, HISTORY, ParserConfig())
    agent.reset(_episode())
    got = [agent.act(_obs(i + 1), env=None) for i in range(9)]
    assert got == ["MOVE_FORWARD"] * 9
    # One query per mid-level action (3 primitives each); history = one frame per executed
    # primitive, current last. 3rd query (step 6): N = 7 frames, slots
    # int(linspace(0, 6, 3, endpoint=False)) = 0, 2, 4 -> frames 1, 3, 5, then current 7.
    assert [c[0] for c in model.calls] == [[0, 0, 0, 1], [1, 2, 3, 4], [1, 3, 5, 7]]
    assert {c[1] for c in model.calls} == {"Go to the kitchen."}
    assert len(agent.history) == 9
    # The real model encoded the sampled frames: new ones through the tower, seen ones from its cache.
    assert [(s["vision_calls"], s["cache_hits"]) for s in model.stats] == [(2, 2), (3, 1), (2, 2)]
    log = agent.episode_log()
    assert [q["step"] for q in log["queries"]] == [0, 3, 6] and log["unparseable"] == 0
    assert all(q["text"] == FORWARD and q["action"] == ["forward", 0.75] for q in log["queries"])


def test_vila_agent_turn_guard_replaces_a_turn_back_in_place(model_for):
    left, right = model_for(TURN_LEFT), model_for(TURN_RIGHT)  # 30 degrees left, 15 right
    got = {}
    for policy in ("allow", "forward"):
        agent = VilaAgent(AlternatingModel(left, right), HISTORY, ParserConfig(on_turn_reversal=policy))
        agent.reset(_episode())
        got[policy] = [agent.act(_obs(i + 1), None) for i in range(7)]
        log = agent.episode_log()
    assert got["allow"] == ["TURN_LEFT"] * 2 + ["TURN_RIGHT"] + ["TURN_LEFT"] * 2 + ["TURN_RIGHT"] + ["TURN_LEFT"]
    # every right turn comes straight after a left one: each becomes one forward step
    assert got["forward"] == ["TURN_LEFT"] * 2 + ["MOVE_FORWARD"] + ["TURN_LEFT"] * 2 + ["MOVE_FORWARD"] + ["TURN_LEFT"]
    assert log["turn_reversals"] == 2
    replaced = [q for q in log["queries"] if "ran" in q]
    assert [(q["step"], q["action"], q["ran"]) for q in replaced] == [(2, ["turn_right", 15.0], ["forward", 0.25]),
                                                                     (5, ["turn_right", 15.0], ["forward", 0.25])]


@pytest.mark.parametrize("answer, primitive, per_query, action", [
    (TURN_LEFT, "TURN_LEFT", 2, ["turn_left", 30.0]),
    (TURN_RIGHT, "TURN_RIGHT", 1, ["turn_right", 15.0]),
])
def test_vila_agent_expands_turns(model_for, answer, primitive, per_query, action):
    model = model_for(answer)
    agent = VilaAgent(model, HISTORY)
    agent.reset(_episode())
    assert [agent.act(_obs(i + 1), None) for i in range(4)] == [primitive] * 4
    log = agent.episode_log()
    assert [q["step"] for q in log["queries"]] == list(range(0, 4, per_query))
    assert all(q["action"] == action for q in log["queries"])


def test_vila_agent_stops_on_the_stop_answer(model_for):
    agent = VilaAgent(model_for(STOP), HISTORY)
    agent.reset(_episode())
    assert agent.act(_obs(1), None) == "STOP"
    log = agent.episode_log()
    assert log["queries"][0]["action"][0] == "stop" and log["unparseable"] == 0 and log["unparseable_stops"] == 0


def test_vila_agent_reset_clears_queue_history_and_model_cache(model_for):
    model = model_for(FORWARD)
    agent = VilaAgent(model, HISTORY)
    agent.reset(_episode("1"))
    assert agent.act(_obs(9), None) == "MOVE_FORWARD" and len(agent.queue) == 2
    assert len(model.model.cache) == 2  # black and frame 9
    agent.reset(_episode("2", "Another instruction."))
    assert not agent.queue and len(agent.history) == 0 and model.resets == 2
    assert len(model.model.cache) == 0 and model.model.cache.hits == 0
    assert agent.act(_obs(1), None) == "MOVE_FORWARD" and len(model.calls) == 2  # queried again, not the old queue
    assert model.calls[-1] == ([0, 0, 0, 1], "Another instruction.")
    # The black frame is encoded again: nothing was served from the first episode's cache.
    assert model.stats[-1]["vision_calls"] == 2 and model.stats[-1]["cache_hits"] == 2
    assert agent.episode_log()["queries"][0]["step"] == 0


@pytest.mark.parametrize("policy, max_requeries, queries", [("stop", 2, 1), ("requery", 2, 3), ("requery", 0, 1)])
def test_unparseable_output_follows_the_parser_policy(model_for, policy, max_requeries, queries):
    model = model_for(None)  # random weights: garbage text
    agent = VilaAgent(model, HISTORY, ParserConfig(on_unparseable=policy, max_requeries=max_requeries))
    agent.reset(_episode())
    assert agent.act(_obs(1), None) == "STOP"
    log = agent.episode_log()
    assert len(model.calls) == queries and len(log["queries"]) == queries
    assert all(q["action"] is None for q in log["queries"]) and log["unparseable"] == queries
    assert log["requeries"] == queries - 1 and log["unparseable_stops"] == 1
    assert len({q["text"] for q in log["queries"]}) == 1  # greedy: the same inputs give the same text


def test_vila_agent_checks_frames_and_policy(model_for):
    model = model_for(FORWARD)
    with pytest.raises(ValueError, match="history.num_frames=8 but the model takes 4"):
        VilaAgent(model, FrameHistoryConfig(num_frames=8))
    with pytest.raises(ValueError, match="per_primitive"):
        VilaAgent(model, FrameHistoryConfig(num_frames=4, policy="per_action"))
    # num_frames 0 (the evaluator's default) takes the model's 4; so does no history config at all
    for cfg in (FrameHistoryConfig(num_frames=0, blank_shape=(8, 8, 3)), None):
        agent = VilaAgent(model, cfg)
        agent.reset(_episode())
        assert agent.history.cfg.num_frames == 4 and agent.act(_obs(1), None) == "MOVE_FORWARD"
        assert [len(c[0]) for c in model.calls[-1:]] == [4]


def test_blind_agent_sees_black_frames(model_for):
    model = model_for(FORWARD)
    agent = VilaAgent(model, HISTORY, blind=True)
    agent.reset(_episode())
    assert [agent.act(_obs(i + 7), None) for i in range(4)] == ["MOVE_FORWARD"] * 4
    assert [c[0] for c in model.calls] == [[0, 0, 0, 0], [0, 0, 0, 0]]
    assert model.stats[1]["vision_calls"] == 0  # only the black frame was ever encoded


def test_random_agent_is_deterministic_per_episode_whatever_the_order():
    a, b = RandomAgent(seed=5), RandomAgent(seed=5)
    a.reset(_episode("1"))
    first = [a.act(None, None) for _ in range(50)]
    b.reset(_episode("2"))
    [b.act(None, None) for _ in range(7)]
    b.reset(_episode("1"))
    assert [b.act(None, None) for _ in range(50)] == first
    assert set(first) <= {"STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT"}
    assert ForwardAgent().act(None, None) == "MOVE_FORWARD"
    with pytest.raises(ValueError, match="4 finite numbers"):
        RandomAgent(weights=(1, 2))


def test_vila_agent_with_a_tiny_random_checkpoint_in_the_simulator(tmp_path):
    """The real loop: tiny random VILA checkpoint -> mostly garbage text -> parser policy."""
    import torch
    from test_eval_runner import _generate_split

    from vila_nav.config import compose
    from vila_nav.evaluation.config import EvalConfig
    from vila_nav.evaluation.runner import evaluate
    from vila_nav.model.testing import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "tiny")
    root = _generate_split(tmp_path / "episodes", 2, seed=7)
    cfg = compose(EvalConfig, "eval", [f"dataset.path={root}", f"output_dir={tmp_path / 'out'}",
                                       "agent.name=vila", f"agent.model={ckpt}", "sim.max_steps=6",
                                       "parser.on_unparseable=requery", "parser.max_requeries=1", "progress=false",
                                       "agent.num_threads=1"])
    before = torch.get_num_threads()
    try:
        report = evaluate(cfg)
        assert torch.get_num_threads() == 1  # agent.num_threads reached torch
    finally:
        torch.set_num_threads(before)
    assert report.summary["aggregate"]["evaluated"] == 2
    for row in report.rows:
        log = row["agent"]
        assert log["queries"] and all(isinstance(q["text"], str) for q in log["queries"])
        assert log["unparseable"] == sum(q["action"] is None for q in log["queries"])
        assert 1 <= row["steps"] <= 6
        if log["unparseable_stops"]:
            assert row["actions"][-1] == 0 and row["stop_called"]


def test_agent_num_threads_must_be_a_count():
    from vila_nav.evaluation.config import AgentConfig

    assert AgentConfig(num_threads=2).num_threads == 2
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="agent.num_threads"):
            AgentConfig(num_threads=bad)
