"""Navigation SFT data: expert / recovery rollouts in the real embedded simulator, the on-disk
format (round trip, hashes, re-sampling), and label rebalancing."""
from __future__ import annotations

import json
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vila_nav.actions import CANONICAL_OUTPUTS, STOP_SENTENCE, format_action, merge_primitives, parse_action, to_primitives
from vila_nav.frames import sample_indices
from vila_nav.training.rebalance import histogram, rebalance_weights
from vila_nav.training.rollout import Decision, Perturbation, rollout_rng, run_rollout
from vila_nav.training.sampler import BatchPlan
from vila_nav.training.store import SftDataset, SftFormatError, SftWriter, read_manifest, resize_frame

N_EPISODES = 3
RADIUS = 1.0  # m, the expert's stop radius in the SFT data


# ---- fixtures: a small generated train split and one build of it --------------------------------


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    from vila_nav.episode_gen.config import EpisodeGenConfig
    from vila_nav.episode_gen.dataset import generate_split, write_split

    root = tmp_path_factory.mktemp("episodes")
    cfg = EpisodeGenConfig(formats=["r2r"], splits=["train"], r2r_episodes={"train": N_EPISODES},
                           r2r_geodesic_m=[4.0, 7.0], seed=3, workers=0)
    write_split(root, "r2r", "train", generate_split(cfg, "r2r", "train", progress=False))
    return root / "r2r"


@pytest.fixture(scope="module")
def env():
    from vila_nav.envs import SimConfig, make_env

    with make_env(SimConfig()) as e:
        yield e


@pytest.fixture(scope="module")
def episodes(split):
    from vila_nav.episodes import load_r2r

    return load_r2r(split, "train")


@pytest.fixture(scope="module")
def built(split, env, episodes, tmp_path_factory):
    """build_sft over the split (1 expert + 1 recovery rollout per episode), with the shared env."""
    from vila_nav.config import compose
    from vila_nav.training.sft_builder import build_sft
    from vila_nav.training.sft_config import SftConfig

    out = tmp_path_factory.mktemp("sft") / "r2r-train"
    return build_sft(compose(SftConfig, "sft", built_args(split, out)), episodes=episodes, env=env)


def built_args(split: Path, out: Path) -> list[str]:
    """The overrides of `built`: the plain expert (stop radius RADIUS, no turn to face the goal:
    what _expert_replay replays, whatever config/sft.yaml ships) and perturb_prob 0.5."""
    return [f"dataset.path={split}", f"output_dir={out}", "progress=false", "recovery.perturb_prob=0.5",
            "frame_size=64", "shard_rollouts=2", f"expert_radius_m={RADIUS}", "face_goal_deg=0"]


# ---- rollouts -------------------------------------------------------------------------------------


def _expert_replay(env, episode, distances: list[float] | None = None,
                   seen: list[dict] | None = None) -> tuple[list[str], list[np.ndarray]]:
    """The expert run step by step, independently of the builder: primitives and observations
    (and, into `distances` / `seen`, the geodesic distance to the goal and the named objects in
    view before each primitive)."""
    obs = [env.reset(episode)]
    goal = np.asarray(episode.goal.position)
    prims: list[str] = []
    while len(prims) < 500:
        if distances is not None:
            distances.append(env.geodesic_distance(np.asarray(env.position), goal))
        if seen is not None:
            seen.append(env.visible_objects())
        a = env.expert_action(goal, RADIUS)
        prims.append(a)
        if a == "STOP":
            break
        obs.append(env.step(a))
    return prims, obs


def test_expert_rollout_answers_are_the_merged_expert_primitives(env, episodes):
    for ep in episodes:
        r = run_rollout(env, ep, expert_radius_m=RADIUS, max_steps=500)
        prims, obs = _expert_replay(env, ep)
        assert r.ok and r.executed == prims and prims[-1] == "STOP"
        answers = [d.answer for d in r.decisions]
        assert answers == [format_action(a) for a in merge_primitives(prims)]
        assert answers[-1] == STOP_SENTENCE and set(answers) <= set(CANONICAL_OUTPUTS)
        # Each answer, parsed and expanded like the agent does, replays the expert exactly.
        replay = [p for a in answers for p in to_primitives(parse_action(a))]
        assert replay == prims
        # Decisions sit at the start of every mid-level action; frames are one per primitive.
        steps = [d.step for d in r.decisions]
        assert steps == list(np.cumsum([0] + [len(d.primitives) for d in r.decisions[:-1]]))
        assert len(r.frames) == len(prims) == len(obs)  # start frame + one per motion primitive
        assert all(np.array_equal(a, b) for a, b in zip(r.frames, obs))


def test_expert_that_faces_the_goal_turns_toward_it_before_it_stops(env, episodes):
    import math

    from vila_nav.envs.pose import heading_of, wrap_angle

    turned = 0
    for ep in episodes:
        plain = run_rollout(env, ep, expert_radius_m=2.0, max_steps=500)
        r = run_rollout(env, ep, expert_radius_m=2.0, max_steps=500, face_goal_deg=20.0)
        assert r.ok and r.executed[-1] == "STOP"
        # The same walk up to the stop radius, then only turns in place, all to one side.
        n = len(plain.executed) - 1
        assert r.executed[:n] == plain.executed[:n]
        extra = r.executed[n:-1]
        assert set(extra) <= {"TURN_LEFT"} or set(extra) <= {"TURN_RIGHT"}
        turned += bool(extra)
        # Where it stops (the last frame is what the stop answer is learnt from), the goal is ahead.
        x, _, z = env.position
        goal = ep.goal.position
        off = math.degrees(wrap_angle(heading_of(goal[0] - x, goal[2] - z) - env.heading))
        assert abs(off) <= 20.0 + 1e-6
        assert r.final_distance_m == pytest.approx(plain.final_distance_m)
        replay = [p for d in r.decisions for p in to_primitives(parse_action(d.answer))]
        assert replay == r.executed  # the turns are labelled like any expert turn
    assert turned  # the episodes exercise the turn, not only already-facing stops
    for bad in (-1.0, 5.0, 180.0):  # 5: under half a 15-degree turn, it could turn back and forth forever
        with pytest.raises(ValueError, match="face_goal_deg"):
            run_rollout(env, episodes[0], expert_radius_m=2.0, max_steps=500, face_goal_deg=bad)


def test_recovery_rollout_is_seeded_and_relabelled_by_the_expert(env, episodes):
    p = Perturbation(prob=0.5, max_count=2, max_primitives=3, min_decisions_before=1)
    ep = episodes[0]
    r1 = run_rollout(env, ep, expert_radius_m=RADIUS, max_steps=500, perturbation=p, rng=rollout_rng(0, ep.episode_id, 1))
    r2 = run_rollout(env, ep, expert_radius_m=RADIUS, max_steps=500, perturbation=p, rng=rollout_rng(0, ep.episode_id, 1))
    assert r1.executed == r2.executed and [d.answer for d in r1.decisions] == [d.answer for d in r2.decisions]
    assert r1.ok and 1 <= len(r1.perturbed_steps) <= 2 and r1.perturbed_steps[0] > 0
    assert r1.decisions and all(d.source == "recovery" for d in r1.decisions)
    assert r1.decisions[0].step > r1.perturbed_steps[0]  # recorded only after the first perturbation
    assert r1.decisions[-1].answer == STOP_SENTENCE and r1.final_distance_m < RADIUS
    for d in r1.decisions:  # every label is the expert chunk executed from that state
        assert tuple(r1.executed[d.step : d.step + len(d.primitives)]) == d.primitives
        assert d.step not in r1.perturbed_steps


@pytest.fixture(scope="module")
def learners(tmp_path_factory):
    """Real tiny checkpoints as DAgger learners: one always turns left 45 degrees, one right 45, one stops."""
    from vila_nav.model import load
    from vila_nav.model.testing import make_answering_checkpoint

    root = tmp_path_factory.mktemp("learners")
    turn = make_answering_checkpoint(root / "turn", "The next action is turn left 45 degree.")
    stop = make_answering_checkpoint(root / "stop", "I think I should stop.")
    right = make_answering_checkpoint(root / "right", "The next action is turn right 45 degree.")
    return {"turn": turn, "turn_model": load(turn), "stop_model": load(stop), "right_model": load(right)}


def test_dagger_rollout_runs_the_learner_and_is_relabelled_by_the_expert(env, episodes, learners):
    from vila_nav.training.policy import ModelPolicy

    ep = episodes[0]
    policy = ModelPolicy(learners["turn_model"])
    runs = []
    for _ in range(2):
        policy.start(ep.instruction.text)
        runs.append(run_rollout(env, ep, expert_radius_m=RADIUS, max_steps=500, policy=policy, policy_prob=0.3,
                                rng=rollout_rng(0, ep.episode_id, 1000)))
    r1, r2 = runs
    assert r1.executed == r2.executed and [d.answer for d in r1.decisions] == [d.answer for d in r2.decisions]
    assert r1.ok and r1.perturbed_steps and r1.decisions and all(d.source == "dagger" for d in r1.decisions)
    assert set(policy.answers) == {"The next action is turn left 45 degree."}  # the real model ran
    for t in r1.perturbed_steps:  # the learner's action ran there: three left turns
        assert r1.executed[t : t + 3] == ["TURN_LEFT"] * 3
    assert r1.decisions[0].step > r1.perturbed_steps[0]
    for d in r1.decisions:  # every label is the expert chunk executed from that state
        assert tuple(r1.executed[d.step : d.step + len(d.primitives)]) == d.primitives
    assert r1.decisions[-1].answer == STOP_SENTENCE and r1.final_distance_m < RADIUS


def test_dagger_learner_that_stops_hands_the_state_to_the_expert(env, episodes, learners):
    from vila_nav.training.policy import ModelPolicy

    ep = episodes[0]
    policy = ModelPolicy(learners["stop_model"])
    policy.start(ep.instruction.text)
    r = run_rollout(env, ep, expert_radius_m=RADIUS, max_steps=500, policy=policy, policy_prob=1.0,
                    rng=rollout_rng(0, ep.episode_id, 1000))
    clean = run_rollout(env, ep, expert_radius_m=RADIUS, max_steps=500)
    # a premature stop never runs: the expert acts at every state, and every one is recorded
    assert r.executed == clean.executed and not r.perturbed_steps
    assert [d.answer for d in r.decisions] == [d.answer for d in clean.decisions]
    assert all(d.source == "dagger" for d in r.decisions) and len(policy.answers) == len(r.decisions)
    with pytest.raises(ValueError, match="not both"):
        run_rollout(env, ep, expert_radius_m=RADIUS, max_steps=500, policy=policy, rng=rollout_rng(0, "x", 0),
                    perturbation=Perturbation())


def _expert_chunk_after(env, episode, primitives: list[str]) -> tuple[str, ...]:
    """The expert's next mid-level action after replaying `primitives` from the episode start
    (with an expert that was asked nothing before: what a look-ahead from a learner-only rollout
    sees), found independently of rollout.py."""
    env.reset(episode)
    for p in primitives:
        env.step(p)
    goal = np.asarray(episode.goal.position)
    chunk = [env.expert_action(goal, RADIUS)]
    while chunk[-1] != "STOP" and len(chunk) < 3:
        env.step(chunk[-1])
        nxt = env.expert_action(goal, RADIUS)
        if nxt != chunk[0]:
            break
        chunk.append(nxt)
    return tuple(chunk)


def test_dagger_labels_the_learners_own_decisions_by_an_expert_lookahead(env, episodes, learners):
    from vila_nav.training.policy import ModelPolicy

    ep = episodes[0]
    policy = ModelPolicy(learners["turn_model"])
    runs = {}
    for label in (False, True):
        policy.start(ep.instruction.text)
        runs[label] = run_rollout(env, ep, expert_radius_m=RADIUS, max_steps=60, policy=policy, policy_prob=1.0,
                                  rng=rollout_rng(0, ep.episode_id, 1000), label_policy=label)
    plain, r = runs[False], runs[True]
    # The learner alone drives (it spins in place until the step limit); the look-aheads change nothing.
    assert r.executed == plain.executed == ["TURN_LEFT"] * 60 and not r.ok and r.reason == "max_steps"
    assert not plain.decisions  # without labels nothing the learner did is recorded
    assert [d.step for d in r.decisions] == r.perturbed_steps == list(range(0, 60, 3))
    assert all(d.source == "dagger" for d in r.decisions)
    for d in r.decisions:  # each label is the expert's chunk from the state the learner reached
        assert d.primitives == _expert_chunk_after(env, ep, r.executed[: d.step])
        assert d.answer == format_action(merge_primitives(list(d.primitives))[0])
    assert {d.primitives[0] for d in r.decisions} == {"TURN_LEFT", "TURN_RIGHT"}  # the spin passes its way
    with pytest.raises(ValueError, match="needs a policy"):
        run_rollout(env, ep, expert_radius_m=RADIUS, max_steps=60, label_policy=True)


def test_dagger_learner_follows_the_deployed_turn_rule(env, episodes, learners):
    from vila_nav.actions import NavAction, ParserConfig
    from vila_nav.model.testing import AlternatingModel
    from vila_nav.training.policy import ModelPolicy

    ep = episodes[0]
    spin = AlternatingModel(learners["turn_model"], learners["right_model"])  # left 45, right 45, left 45, ...
    executed = {}
    for rule in ("allow", "forward"):
        policy = ModelPolicy(spin, ParserConfig(on_turn_reversal=rule))
        policy.start(ep.instruction.text)
        r = run_rollout(env, ep, expert_radius_m=RADIUS, max_steps=16, policy=policy, policy_prob=1.0,
                        rng=rollout_rng(0, ep.episode_id, 1000))
        executed[rule] = r.executed
        assert policy.answers[:2] == ["The next action is turn left 45 degree.",
                                      "The next action is turn right 45 degree."]  # the real models ran
    assert executed["allow"] == (["TURN_LEFT"] * 3 + ["TURN_RIGHT"] * 3) * 2 + ["TURN_LEFT"] * 3 + ["TURN_RIGHT"]
    # every right turn comes straight after the left one: it runs as one forward step
    assert executed["forward"] == (["TURN_LEFT"] * 3 + ["MOVE_FORWARD"]) * 4
    # When something else moved the agent between two of its answers (fewer or more frames than its
    # own last action made), the rule forgets that action: a right turn after a gap runs as given.
    policy = ModelPolicy(spin, ParserConfig(on_turn_reversal="forward"))
    policy.start(ep.instruction.text)
    frame = np.zeros((32, 32, 3), np.uint8)
    got = [policy([frame] * n) for n in (1, 4, 5, 12)]
    assert got == [NavAction("turn_left", 45.0), NavAction("forward", 0.25), NavAction("turn_left", 45.0),
                   NavAction("turn_right", 45.0)]
    assert policy.guard.overrides == 1


def test_build_sft_with_a_dagger_model(split, env, episodes, learners, tmp_path):
    from vila_nav.config import compose
    from vila_nav.training.sft_builder import build_sft
    from vila_nav.training.sft_config import SftConfig

    cfg = compose(SftConfig, "sft", [f"dataset.path={split}", f"output_dir={tmp_path / 'dagger'}", "progress=false",
                                     "expert=false", "recovery.rollouts_per_episode=0", "frame_size=32",
                                     f"dagger.model={learners['turn']}", "dagger.policy_prob=0.3"])
    report = build_sft(cfg, episodes=episodes, env=env)
    man = report.manifest
    assert set(man["sources"]) == {"dagger"} and man["stats"]["rollouts"]["dagger"] >= 1
    assert man["stats"]["perturbations"]["dagger"] >= 1 and man["config"]["dagger"]["policy_prob"] == 0.3
    ds = SftDataset(report.out_dir)
    assert len(ds) > 0 and all(s.source == "dagger" for s in ds.samples)
    with pytest.raises(ValueError, match="nothing to record"):
        compose(SftConfig, "sft", ["expert=false", "recovery.rollouts_per_episode=0"])
    # With label_model_decisions the learner's own decisions are recorded too, and its rollouts
    # that run out of steps are kept: here it only spins, so every sample is one of its decisions.
    cfg = compose(SftConfig, "sft", [f"dataset.path={split}", f"output_dir={tmp_path / 'labelled'}", "progress=false",
                                     "expert=false", "recovery.rollouts_per_episode=0", "frame_size=32",
                                     "sim.max_steps=30", f"dagger.model={learners['turn']}", "dagger.policy_prob=1.0",
                                     "dagger.label_model_decisions=true"])
    man = build_sft(cfg, episodes=episodes, env=env).manifest
    assert man["stats"]["rollouts"] == {"dagger": N_EPISODES} and not man["stats"]["dropped"]
    assert man["config"]["dagger"]["label_model_decisions"] is True
    ds = SftDataset(tmp_path / "labelled")
    assert len(ds) == N_EPISODES * 10 and all(s.source == "dagger" for s in ds.samples)
    with pytest.raises(ValueError, match="save and restore"):
        compose(SftConfig, "sft", ["sim.backend=habitat", f"dagger.model={learners['turn']}",
                                   "dagger.label_model_decisions=true"])
    with pytest.raises(ValueError, match="dagger.on_turn_reversal must be one of"):
        compose(SftConfig, "sft", [f"dagger.model={learners['turn']}", "dagger.on_turn_reversal=spin"])


# ---- the builder and the on-disk dataset -----------------------------------------------------------


def test_build_sft_writes_the_documented_format(built, env, episodes):
    out = built.out_dir
    man = read_manifest(out)
    assert not (out.parent / (out.name + ".partial")).exists()
    ds = SftDataset(out)
    ds.verify()
    c = man["counts"]
    assert c["samples"] == len(ds) and c["episodes"] == N_EPISODES and c["rollouts"] >= N_EPISODES
    assert sum(man["labels"].values()) == len(ds) and sum(man["labels_weighted"].values()) == c["weighted_samples"]
    assert man["sources"]["expert"] > 0 and man["sources"]["recovery"] > 0
    assert man["frame_shape"] == [64, 64, 3] and man["num_frames"] == 8 and man["generator"].startswith("vila_nav.training")
    assert man["config"]["recovery"]["perturb_prob"] == 0.5 and len(man["shards"]) >= 2
    rows = [json.loads(line) for s in man["shards"] for line in (out / s["dir"] / "samples.jsonl").read_text().splitlines()]
    assert set(rows[0]) == {"id", "rollout", "episode_id", "scene_id", "instruction", "step", "frames", "answer", "source",
                            "weight", "goal_distance_m", "visible_objects"}
    assert len({r["id"] for r in rows}) == len(rows)
    # The stored expert answers of each episode replay the expert's primitives, and the stored
    # frames are the simulator's observations squashed to 64 px.
    for ep in episodes:
        expert = sorted((s for s in ds.samples if s.episode_id == ep.episode_id and s.source == "expert"), key=lambda s: s.step)
        distances: list[float] = []
        seen: list[dict] = []
        prims, obs = _expert_replay(env, ep, distances, seen)
        assert [p for s in expert for p in to_primitives(parse_action(s.answer))] == prims
        # Each decision records the geodesic distance to the goal where it was taken (mm).
        assert [s.goal_distance_m for s in expert] == pytest.approx([distances[s.step] for s in expert], abs=1e-3)
        assert expert[-1].goal_distance_m < RADIUS < expert[0].goal_distance_m
        # ... and the named objects its current frame shows, with their distances (cm).
        for s in expert:
            want = seen[s.step]
            assert set(s.visible_objects) == set(want)
            assert [s.visible_objects[k] for k in sorted(want)] == pytest.approx([want[k] for k in sorted(want)], abs=0.006)
        assert any(s.visible_objects for s in expert)
        for s in expert[:: max(1, len(expert) // 4)]:
            assert list(s.frames) == sample_indices(s.step + 1, 8)
            frames = ds.frames(s)
            for idx, frame in zip(s.frames, frames):
                want = np.zeros((64, 64, 3), np.uint8) if idx is None else resize_frame(obs[idx], 64)
                assert np.array_equal(frame, want)


def test_dataset_resamples_other_frame_counts_and_detects_tampering(built, tmp_path):
    ds4 = SftDataset(built.out_dir, num_frames=4)
    s = max(ds4.samples, key=lambda s: s.step)
    assert ds4.frame_indices(s) == sample_indices(s.step + 1, 4) and len(ds4.frames(s)) == 4
    assert SftDataset(built.out_dir, limit=5).samples == ds4.samples[:5]
    # A modified shard fails verification; a missing manifest is a clear error.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built.out_dir, copy)
    samples = copy / "shard-00000" / "samples.jsonl"
    samples.write_text(samples.read_text().replace("The next action", "The next  action", 1))
    with pytest.raises(SftFormatError, match="SHA-256"):
        SftDataset(copy).verify()
    # A recorded goal distance must be a finite number >= 0.
    text = samples.read_text()
    samples.write_text(text.replace('"goal_distance_m": ', '"goal_distance_m": -', 1))
    with pytest.raises(SftFormatError, match="goal_distance_m"):
        SftDataset(copy)
    # Recorded objects must map names to distances >= 0 (m).
    samples.write_text(text.replace('"visible_objects": {', '"visible_objects": {"bad": -1}, "was": {', 1))
    with pytest.raises(SftFormatError, match="visible_objects"):
        SftDataset(copy)
    samples.write_text(text)
    (copy / "manifest.json").unlink()
    with pytest.raises(SftFormatError, match="no manifest.json"):
        SftDataset(copy)


def test_writer_raw_and_png_round_trip_and_refuses_to_overwrite(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(5)]
    ep = types.SimpleNamespace(episode_id="7", scene_id="house_0000", instruction=types.SimpleNamespace(text="Go."))
    decisions = [Decision(0, CANONICAL_OUTPUTS[2], None, (), "expert"), Decision(4, STOP_SENTENCE, None, (), "expert")]
    for enc in ("raw", "png"):
        w = SftWriter(tmp_path / enc, num_frames=3, frame_size=0, encoding=enc)
        w.add_rollout(ep, frames, decisions)
        w.finish([1, 2])
        ds = SftDataset(tmp_path / enc)
        assert [s.weight for s in ds.samples] == [1, 2]
        got = ds.frames(ds.samples[1])  # step 4, K=3: frames [0, 2, 4]
        assert all(np.array_equal(g, frames[i]) for g, i in zip(got, [0, 2, 4]))
        assert [f.sum() for f in ds.frames(ds.samples[0])][:2] == [0, 0]  # black padding
        with pytest.raises(FileExistsError):
            SftWriter(tmp_path / enc, num_frames=3, frame_size=0)


# ---- rebalancing -------------------------------------------------------------------------------------


def test_rebalancing_reaches_the_documented_histogram():
    counts = {"fwd75": 300, "fwd50": 120, "left15": 60, "left45": 9, "stop": 40}
    labels = [k for k, n in counts.items() for _ in range(n)]
    rng = np.random.default_rng(1)
    labels = [labels[i] for i in rng.permutation(len(labels))]
    w = rebalance_weights(labels, target_ratio=0.5, max_repeat=8, seed=0)
    target = 150  # ceil(0.5 * 300)
    want = {k: (n if n >= target else min(target, n * 8)) for k, n in counts.items()}
    assert histogram(labels, w) == dict(sorted(want.items()))  # fwd50 -> 150, left45 capped at 72
    assert all(isinstance(x, int) and x >= 1 for x in w)
    assert all(w[i] == 1 for i, lab in enumerate(labels) if lab == "fwd75")  # nothing dropped or repeated
    per = Counter(w[i] for i, lab in enumerate(labels) if lab == "left15")
    assert per == Counter({3: 30, 2: 30})  # 150 copies of 60 samples: 2 each, 30 get a third
    assert w == rebalance_weights(labels, 0.5, 8, seed=0) and w != rebalance_weights(labels, 0.5, 8, seed=1)
    assert rebalance_weights(labels, 0.0, 8) == [1] * len(labels)
    # The trainer's epoch holds each sample exactly `weight` times.
    plan = BatchPlan(w, batch_size=4)
    assert Counter(plan.epoch_order(0).tolist()) == Counter({i: x for i, x in enumerate(w)})
    assert sorted(plan.epoch_order(0).tolist()) == sorted(plan.epoch_order(1).tolist())
    assert plan.epoch_order(0).tolist() != plan.epoch_order(1).tolist()


def test_built_dataset_is_rebalanced(built):
    man = built.manifest
    before, after = man["labels"], man["labels_weighted"]
    target = int(np.ceil(0.5 * max(before.values())))
    for answer, n in before.items():
        assert after[answer] == (n if n >= target else min(target, 8 * n)), answer


def test_build_sft_command_reports_bad_config(capsys):
    from vila_nav.cli import main

    assert main(["build-sft", "frame_encoding=jpeg"]) == 2
    assert "frame_encoding" in capsys.readouterr().err
    assert main(["build-sft", "face_goal_deg=5"]) == 2
    assert "face_goal_deg must be 0 (off) or in [sim.turn_angle_deg / 2 = 7.5, 180)" in capsys.readouterr().err


def test_parallel_build_writes_the_same_bytes(built, split, episodes, tmp_path):
    from vila_nav.config import compose
    from vila_nav.training.sft_builder import build_sft
    from vila_nav.training.sft_config import SftConfig

    par = build_sft(compose(SftConfig, "sft", [*built_args(split, tmp_path / "par"), "workers=2"]), episodes=episodes)
    a, b = dict(built.manifest), dict(par.manifest)
    assert a.pop("config")["output_dir"] != b.pop("config")["output_dir"]
    assert a == b, f"serial and parallel builds differ at: {differences(a, b)}"  # counts, histograms, stats, SHA-256s


def differences(a, b, path: str = "") -> list[str]:
    """Where two JSON-like values differ (paths, at most 20): what a failure message needs."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += differences(a.get(k), b.get(k), f"{path}.{k}") if k in a and k in b else [f"{path}.{k} (only one side)"]
        return out[:20]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")][:20]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"[:300]]
