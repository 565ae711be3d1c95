"""`vila-nav probe-instruction` on a tiny real model and a real on-disk SFT dataset: P(answer) is the
model's own sequence probability, the groups are the right decisions, and the CLI prints them."""
from __future__ import annotations

import math
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from vila_nav.actions import CANONICAL_OUTPUTS, STOP_SENTENCE
from vila_nav.training.rollout import Decision
from vila_nav.training.store import SftDataset, SftWriter

SIZE = 42  # px: the tiny preset's input


def _data(path: Path, episodes: int = 3) -> Path:
    """Per episode: turn left 15 (step 0), move forward 75 (step 1), stop (step 2); the
    instruction says "left", but "right" in episode 2."""
    writer = SftWriter(path, num_frames=8, frame_size=0, encoding="png", shard_rollouts=2)
    left, forward = CANONICAL_OUTPUTS[3], CANONICAL_OUTPUTS[2]
    for e in range(episodes):
        ep = types.SimpleNamespace(episode_id=str(e), scene_id="house_0000",
                                   instruction=types.SimpleNamespace(text=f"Turn {'right' if e == 2 else 'left'} and stop by box {e}."))
        frames = [np.full((SIZE, SIZE, 3), (40 * (e + i)) % 256, np.uint8) for i in range(3)]
        decisions = [Decision(0, left, None, (), "expert"), Decision(1, forward, None, (), "expert"),
                     Decision(2, STOP_SENTENCE, None, (), "expert")]
        writer.add_rollout(ep, frames, decisions)
    return writer.finish([1] * (3 * episodes), config={}, generator="tests/test_probe")


def test_answer_probability_is_the_models_sequence_probability(tmp_path):
    from vila_nav.model.prompt import stop_token_ids
    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.probe import answer_probabilities

    model = build_model(TINY, seed=4)
    store = SftDataset(_data(tmp_path / "d"))
    s = store.samples[1]
    answers = sorted(set(store.answers))
    got = answer_probabilities(model, store.frames(s), s.instruction, answers)
    eot = stop_token_ids(model.template, model.tokenizer)[0]
    scores = []
    with torch.no_grad():  # by hand: one unpadded forward per answer through the inference path
        prompt = model.inputs_embeds(store.frames(s), s.instruction)
        for a in answers:
            ids = list(model.tokenizer(a, add_special_tokens=False).input_ids) + [eot]
            x = torch.cat([prompt, model.llm.get_input_embeddings()(torch.tensor(ids))[None]], 1)
            logp = torch.log_softmax(model.llm(inputs_embeds=x).logits[0], -1)
            lp = prompt.shape[1]
            scores.append(sum(float(logp[lp - 1 + k, t]) for k, t in enumerate(ids)))
    want = torch.softmax(torch.tensor(scores), 0)
    torch.testing.assert_close(got, want.float(), rtol=1e-4, atol=1e-6)
    assert float(got.sum()) == pytest.approx(1.0)


def test_probe_groups_and_cli(tmp_path, capsys):
    from vila_nav.cli import main
    from vila_nav.model import load
    from vila_nav.model.testing import make_tiny_checkpoint
    from vila_nav.training.probe import run_probe

    data = _data(tmp_path / "d")
    ckpt = make_tiny_checkpoint(tmp_path / "m", seed=1)
    store = SftDataset(data)
    (first, stop), mirror = run_probe(load(ckpt), store, decisions=2)
    assert len(first.own) == len(first.swapped) == 2  # the first decisions of two rollouts
    assert len(stop.own) == len(stop.swapped) == len(stop.before) == 2
    assert all(0 < p < 1 for p in first.own + first.swapped + stop.own + stop.swapped + stop.before)
    assert first.own != first.swapped  # the tiny LM does see the instruction
    # Both first decisions turn left, the side the instruction names first: both are mirror-tested.
    assert mirror.decisions == 2 and 0 <= mirror.follows_own <= 2 and 0 <= mirror.follows_mirrored <= 2
    assert main(["probe-instruction", str(ckpt), str(data), "--decisions", "3"]) == 0
    out = capsys.readouterr().out
    assert "| first | 3 |" in out and "| stop | 3 |" in out and "own higher" in out
    assert "mirror test (2 first decisions that turn to the side the instruction names first)" in out  # not episode 2
    # One episode: nothing to swap with; a missing dataset: a clear error, exit code 2.
    assert main(["probe-instruction", str(ckpt), str(_data(tmp_path / "one", episodes=1))]) == 2
    assert "2 episodes or more" in capsys.readouterr().err
    assert main(["probe-instruction", str(ckpt), str(tmp_path / "nothing")]) == 2
    assert "not an SFT dataset" in capsys.readouterr().err


def test_mirrored_exchanges_left_and_right_only_as_words():
    from vila_nav.training.probe import mirrored

    assert mirrored("Left at the door, then turn right. Stop by the rightmost box on your left.") == \
        "Right at the door, then turn left. Stop by the rightmost box on your right."


def test_auc_counts_ordered_pairs():
    from vila_nav.training.probe import auc

    assert auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auc([0.1, 0.8, 0.9, 0.2], [1, 1, 0, 0]) == 0.25
    assert auc([0.5, 0.5], [1, 0]) == 0.5  # ties count half


def test_goal_match_probe_scores_the_training_heads_logit(tmp_path, capsys):
    """--match-head: the head's logit at the state where the answer starts, own and swapped
    instruction; its BCE against the own labels is the training objective's goal-match loss."""
    import torch.nn.functional as F
    from safetensors.torch import save_file

    from vila_nav.cli import main
    from vila_nav.model import load
    from vila_nav.model.testing import make_tiny_checkpoint
    from vila_nav.training.collate import DecisionDataset, SftCollator
    from vila_nav.training.objective import SftObjective
    from vila_nav.training.probe import load_match_head, run_match_probe

    writer = SftWriter(tmp_path / "d", num_frames=8, frame_size=0, encoding="png", shard_rollouts=2)
    forward = CANONICAL_OUTPUTS[2]
    for e in range(3):  # the red box 1 + e, 3.5 + e, 6 + e m away along episode e; the blue ball at 6 m
        goal = "blue ball" if e == 2 else "red box"
        ep = types.SimpleNamespace(episode_id=str(e), scene_id="house_0000",
                                   instruction=types.SimpleNamespace(text=f"Walk ahead. Stop by the {goal}."))
        frames = [np.full((SIZE, SIZE, 3), 30 * (e + i), np.uint8) for i in range(3)]
        decisions = [Decision(i, forward, None, (), "expert", 1.0, {"red box": 1.0 + 2.5 * i + e, "blue ball": 6.0})
                     for i in range(3)]
        writer.add_rollout(ep, frames, decisions)
    data = writer.finish([1] * 9, config={}, generator="tests/test_probe")
    model = load(make_tiny_checkpoint(tmp_path / "m", seed=2))
    step = tmp_path / "run" / "checkpoints" / "step-0000004"
    (step / "trainer_state").mkdir(parents=True)
    head = torch.nn.Linear(model.llm.config.hidden_size, 1)
    save_file(head.state_dict(), str(step / "trainer_state" / "match_head.safetensors"))
    store = SftDataset(data)
    got = run_match_probe(model, store, load_match_head(str(step), model.llm.config.hidden_size), range_m=3.0)
    assert got.labels == [1, 0, 0, 1, 0, 0, 0, 0, 0]  # the red box within 3 m; never the blue ball
    assert got.own != got.swapped  # another episode's instruction changes the state
    # The objective's goal-match loss on the same decisions, through the training path.
    obj = SftObjective(model, match_weight=1.0, object_names=["blue ball", "red box"], match_range_m=3.0)
    obj.match_head.load_state_dict(head.state_dict())
    ds = DecisionDataset(store)
    batch = SftCollator(model.tokenizer, model.image_processor, model.num_frames)([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        want = obj(batch)["match_loss"]
    probe_loss = F.binary_cross_entropy_with_logits(torch.tensor(got.own), torch.tensor(got.labels, dtype=torch.float))
    torch.testing.assert_close(probe_loss, want, rtol=1e-4, atol=1e-5)
    ckpt = tmp_path / "m"
    assert main(["probe-instruction", str(ckpt), str(data), "--match-head", str(step)]) == 0
    assert "goal-match head (9 decisions naming a recorded object, goal in view and near in 2): AUC" in capsys.readouterr().out
    # A run without the head, or data without visible_objects: clear errors, exit code 2.
    assert main(["probe-instruction", str(ckpt), str(data), "--match-head", str(tmp_path)]) == 2
    assert "aux.match_weight > 0" in capsys.readouterr().err
    assert main(["probe-instruction", str(ckpt), str(_data(tmp_path / "old")), "--match-head", str(step)]) == 2
    assert "visible_objects" in capsys.readouterr().err


def test_training_heads_load_strictly_with_clear_errors(tmp_path):
    """One loader for the heads in trainer_state/ (resume and --match-head): exact round trip,
    a missing file and a head of the wrong shape each name the file."""
    from vila_nav.training.probe import load_match_head
    from vila_nav.training.state import STATE_DIR, TrainStateError, head_file, load_head, save_heads

    folder = tmp_path / "step-0000001" / STATE_DIR
    folder.mkdir(parents=True)
    head = torch.nn.Linear(8, 1)
    save_heads(folder, {"match_head": head})
    back = torch.nn.Linear(8, 1)
    load_head(back, folder, "match_head")
    assert all(torch.equal(a, b) for a, b in zip(head.state_dict().values(), back.state_dict().values()))
    with pytest.raises(FileNotFoundError) as missing:
        load_head(back, folder, "objects_head")
    assert missing.value.filename == str(head_file(folder, "objects_head"))
    with pytest.raises(TrainStateError, match=r"match_head.safetensors holds .*the head needs"):
        load_head(torch.nn.Linear(9, 1), folder, "match_head")
    assert torch.equal(load_match_head(str(folder.parent), 8).weight, head.weight)
    with pytest.raises(ValueError, match="not a goal-match head for this model"):
        load_match_head(str(folder.parent), 9)
    with pytest.raises(FileNotFoundError, match="aux.match_weight > 0"):
        load_match_head(str(tmp_path), 8)


def test_stop_profile_scores_every_decision_by_distance_to_the_stop(tmp_path, capsys):
    from vila_nav.cli import main
    from vila_nav.model import load
    from vila_nav.model.testing import make_tiny_checkpoint
    from vila_nav.training.probe import answer_probabilities, run_stop_profile

    data = _data(tmp_path / "d")
    ckpt = make_tiny_checkpoint(tmp_path / "m", seed=1)
    model, store = load(ckpt), SftDataset(data)
    profile = run_stop_profile(model, store, rollouts=2)
    assert profile.to_end == [2, 1, 0, 2, 1, 0]  # two rollouts of turn, forward, stop
    answers = sorted(set(store.answers))
    s = store.samples[2]  # episode 0's stop
    p = answer_probabilities(model, store.frames(s), s.instruction, answers)
    assert profile.p_stop[2] == pytest.approx(float(p[answers.index(STOP_SENTENCE)]))
    assert profile.argmax_stop[2] == (int(p.argmax()) == answers.index(STOP_SENTENCE))
    assert main(["probe-instruction", str(ckpt), str(data), "--stop-profile", "5"]) == 0
    out = capsys.readouterr().out
    assert "P(stop) along 3 expert rollouts" in out and "| 0 | 3 |" in out and "| 2-3 | 3 |" in out
    assert "| 16+ | 0 | - | - | - |" in out
    with pytest.raises(SystemExit) as exc:
        main(["probe-instruction", str(ckpt), str(data), "--stop-profile", "-1"])
    assert exc.value.code == 2 and "--stop-profile must be >= 0" in capsys.readouterr().err
    # Data without a stop (every rollout cut before its end): a clear error, exit code 2.
    nostop = SftWriter(tmp_path / "nostop", num_frames=8, frame_size=0, encoding="png", shard_rollouts=2)
    for e in range(2):
        ep = types.SimpleNamespace(episode_id=str(e), scene_id="house_0000",
                                   instruction=types.SimpleNamespace(text=f"Turn left to box {e}."))
        nostop.add_rollout(ep, [np.full((SIZE, SIZE, 3), 9 * e, np.uint8)] * 2,
                           [Decision(0, CANONICAL_OUTPUTS[3], None, (), "expert"),
                            Decision(1, CANONICAL_OUTPUTS[2], None, (), "expert")])
    nostop = nostop.finish([1] * 4, config={}, generator="tests/test_probe")
    assert main(["probe-instruction", str(ckpt), str(nostop), "--stop-profile", "5"]) == 2
    assert "expert rollouts that end in the stop" in capsys.readouterr().err


def test_stop_profile_table_groups_and_counts():
    from vila_nav.training.probe import StopProfile

    table = StopProfile([0, 1, 2, 3, 20], [0.5, 0.25, 0.1, 0.3, 0.0], [True, False, False, False, False]).table()
    assert "| 0 | 1 | 0.500 | 0.500 | 1 (100%) |" in table
    assert "| 2-3 | 2 | 0.200 | 0.300 | 0 (0%) |" in table
    assert "| 4-7 | 0 | - | - | - |" in table and "| 16+ | 1 | 0.000 | 0.000 | 0 (0%) |" in table


def test_token_parts_expands_every_image_slot():
    from vila_nav.training.routing import token_parts

    parts = token_parts([5, -200, 7, -200, 9], tokens_per_frame=2, image_index=-200)
    assert parts.tolist() == [0, 1, 1, 0, 2, 2, 0]  # text, history frame, text, current frame, text


def test_answer_attention_is_the_lms_own_layer_0_attention(tmp_path):
    """Layer 0 by hand: RMSNorm -> q/k projections -> RoPE -> causal softmax of the last row,
    summed over the positions of each part (found here from the slot positions, not token_parts)."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    from vila_nav.model.prompt import IMAGE_TOKEN_INDEX
    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.routing import PARTS, answer_routing, eager_attention

    model = build_model(TINY, seed=3)
    store = SftDataset(_data(tmp_path / "d"))
    s = store.samples[1]
    before = model.llm.config._attn_implementation
    with eager_attention(model.llm):
        shares, current, state = answer_routing(model, store.frames(s), s.instruction)
    assert model.llm.config._attn_implementation == before  # restored
    cfg = model.llm.config
    assert shares.shape == (cfg.num_hidden_layers, len(PARTS) + 1)
    np.testing.assert_allclose(shares[:, :3].sum(axis=1), 1.0, rtol=1e-5)  # every layer's row sums to 1

    ids = model.prompt_ids(s.instruction)
    with torch.no_grad():
        visual = [model.encode_frame(f) for f in store.frames(s)]
        x = model.embed(ids, visual)  # (1, L, H)
        layer = model.llm.model.layers[0]
        h = layer.input_layernorm(x)
        n, d = x.shape[1], cfg.head_dim
        q = layer.self_attn.q_proj(h).view(1, n, -1, d).transpose(1, 2)
        k = layer.self_attn.k_proj(h).view(1, n, -1, d).transpose(1, 2)
        cos, sin = model.llm.model.rotary_emb(x, torch.arange(n)[None])
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = repeat_kv(k, cfg.num_attention_heads // cfg.num_key_value_heads)
        # the last row of the causal mask masks nothing: (heads, L)
        last = torch.softmax(torch.einsum("hd,hnd->hn", q[0, :, -1], k[0]) / math.sqrt(d), dim=-1)
    t = visual[0].shape[0]
    slots, pos, where = [i for i, tok in enumerate(ids) if tok == IMAGE_TOKEN_INDEX], 0, {}
    for i, tok in enumerate(ids):  # expanded position of every prompt id
        where[i] = pos
        pos += t if tok == IMAGE_TOKEN_INDEX else 1
    current_pos = list(range(where[slots[-1]], where[slots[-1]] + t))
    history_pos = [p for j in slots[:-1] for p in range(where[j], where[j] + t)]
    text_pos = sorted(set(range(n)) - set(current_pos) - set(history_pos))
    want = [float(last[:, idx].sum(1).mean()) for idx in (text_pos, history_pos, current_pos)]
    np.testing.assert_allclose(shares[0, :3], want, rtol=1e-4, atol=1e-6)
    assert shares[0, 3] == pytest.approx(float(last.max(1).values.mean()), rel=1e-4)
    torch.testing.assert_close(current, visual[-1].float())
    with torch.no_grad():
        hidden = model.llm(inputs_embeds=x, output_hidden_states=True).hidden_states[-1][0, -1]
    torch.testing.assert_close(state, hidden.float(), rtol=1e-4, atol=1e-5)


def test_kind_probe_finds_a_linear_signal_and_does_not_invent_one():
    from vila_nav.training.routing import _probe

    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (400,), generator=gen)
    is_test = torch.arange(400) % 4 == 0
    noise = torch.randn(400, 16, generator=gen)
    informative = noise.clone()
    informative[:, :4] += 3.0 * torch.nn.functional.one_hot(y, 4)  # the kind, plainly in 4 features
    rng = np.random.default_rng(0)
    prior = math.log(4)  # about uniform kinds
    nll, acc = _probe(informative, y, is_test, rng)
    assert nll < 0.5 * prior and acc > 0.8
    nll, acc = _probe(noise, y, is_test, rng)
    assert nll > 0.9 * prior and acc < 0.45  # no signal: no better than guessing


def test_routing_cli_prints_both_tables_and_rejects_too_little_data(tmp_path, capsys):
    from vila_nav.cli import main
    from vila_nav.model.testing import make_tiny_checkpoint

    data = _data(tmp_path / "d", episodes=8)  # 24 decisions: turn left, forward, stop per episode
    ckpt = make_tiny_checkpoint(tmp_path / "m", seed=1)
    assert main(["probe-instruction", str(ckpt), str(data), "--decisions", "1", "--routing", "100"]) == 0
    out = capsys.readouterr().out
    assert "mean over 24 decisions and the heads" in out  # every decision, none twice
    assert "| layer | text | history frames | current frame | largest single position |" in out
    assert "(18 decisions to fit, 6 to score)" in out  # 2 of the 8 episodes held out
    assert "| current frame's visual tokens (" in out and "| LM state at the answer position |" in out
    assert main(["probe-instruction", str(ckpt), str(_data(tmp_path / "three", episodes=3)),
                 "--decisions", "1", "--routing", "10"]) == 2
    assert "4 episodes or more, it has 3" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["probe-instruction", str(ckpt), str(data), "--routing", "-1"])
    assert exc.value.code == 2 and "--routing must be >= 0" in capsys.readouterr().err
