"""The training recipe on tiny real models: token layout == inference, a short run whose loss
falls, checkpoints that reload, exact resume, fine-tuning a NaVILA-layout checkpoint, and
safetensors/JSON training state (no pickle)."""
from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from vila_nav.actions import CANONICAL_OUTPUTS
from vila_nav.config import compose
from vila_nav.training.rollout import Decision
from vila_nav.training.store import SftWriter
from vila_nav.training.train_config import TrainConfig

ANSWERS = CANONICAL_OUTPUTS[:4]  # forward 25/50/75, left 15
SIZE = 42  # px, the tiny preset's input: frames need no resize


def _colour(label: int) -> np.ndarray:
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    frame[..., label % 3] = 60 + 60 * label  # the current frame's colour says the answer
    return frame


def write_synthetic_sft(path: Path, episodes: int = 6, steps: int = 5, seed: int = 0) -> Path:
    """A small SFT dataset in the real on-disk format whose answer is readable from the current
    frame (so a few steps of SFT visibly lower the loss)."""
    rng = np.random.default_rng(seed)
    writer = SftWriter(path, num_frames=8, frame_size=0, encoding="png", shard_rollouts=3)
    for e in range(episodes):
        labels = rng.integers(0, len(ANSWERS), steps)
        ep = types.SimpleNamespace(episode_id=str(e), scene_id="house_0000",
                                   instruction=types.SimpleNamespace(text=f"Walk to the red box in room {e}."))
        frames = [_colour(int(labels[min(i, steps - 1)])) for i in range(steps)]
        source = "expert" if e % 2 == 0 else "recovery"
        # goal distance (m): 1.5 m per remaining decision, so the bins [1, 2, 3, 5, 8] all occur;
        # objects in view: a red box as far away as the label says, a blue ball in odd episodes
        decisions = [Decision(i, ANSWERS[int(labels[i])], None, (), source, 1.5 * (steps - i),
                              {"red box": 2.0 * int(labels[i]), **({"blue ball": 6.0} if e % 2 else {})})
                     for i in range(steps)]
        writer.add_rollout(ep, frames, decisions)
    n = episodes * steps
    return writer.finish([1 + (i % 2) for i in range(n)], config={"synthetic": True}, generator="tests/test_train")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sft")
    return {"train": write_synthetic_sft(root / "train"), "val": write_synthetic_sft(root / "val", episodes=2, seed=1)}


def write_one_decision_sft(path: Path, decision: Decision) -> Path:
    """A one-sample SFT dataset (e.g. a decision without the fields an older build-sft lacked)."""
    writer = SftWriter(path, num_frames=8, frame_size=0, encoding="png", shard_rollouts=3)
    ep = types.SimpleNamespace(episode_id="0", scene_id="house_0000", instruction=types.SimpleNamespace(text="Stop."))
    writer.add_rollout(ep, [_colour(0)], [decision])
    return writer.finish([1], config={}, generator="tests/test_train")


@torch.no_grad()
def answer_states(model, items: list) -> torch.Tensor:
    """(B, H) the LM's last hidden state at the end of each item's prompt, through the inference
    path (model.inputs_embeds): the state that predicts the answer's first token."""
    return torch.stack([model.llm(inputs_embeds=model.inputs_embeds(it["frames"], it["instruction"]),
                                  output_hidden_states=True).hidden_states[-1][0, -1] for it in items])


def check_head_loss(model, obj, out: dict, name: str, want: torch.Tensor, weight: float) -> None:
    """out["<name>_loss"] is `want` (computed by hand), the total adds it with `weight`, its
    gradient reaches the LM's embeddings and the tower, and the head is training-only (in
    obj.heads(), never in the model's state). Runs backward on out["loss"]."""
    torch.testing.assert_close(out[f"{name}_loss"], want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["loss"].detach(), out["lm_loss"] + weight * want, rtol=1e-4, atol=1e-5)
    out["loss"].backward()
    assert model.llm.get_input_embeddings().weight.grad.abs().sum() > 0
    assert model.vision.model.embeddings.patch_embedding.weight.grad.abs().sum() > 0
    assert set(obj.heads()) == {f"{name}_head"} and not any(name in k for k in model.state_dict())


def _cfg(out: Path, data: dict, *overrides: str) -> TrainConfig:
    return compose(TrainConfig, "train", [
        f"output_dir={out}", f"data.train=[{data['train']}]", f"data.val={data['val']}", "model.preset=tiny",
        "model.image_size=null", "model.tokenizer_vocab_size=512", "batch_size=4", "grad_accum=2", "max_steps=12",
        "mixed_precision=no", "optim.lr=3e-3", "optim.warmup_steps=2", "save_every=4", "keep_checkpoints=2", "val.every=6",
        "val.max_samples=10", "val.decode_samples=4", "progress=false", "seed=3", "threads=1", *overrides])


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(folder.rglob("*.safetensors")):
        if "trainer_state" not in f.parts:
            out.update({f"{f.parent.name}/{k}": v for k, v in load_file(str(f)).items()})
    return out


# Every training-only head on in the short runs, so resuming covers them all.
RUN_HEADS = ("aux.progress_weight=0.5", "aux.objects_weight=0.1", "aux.match_weight=0.5", "aux.match_swapped=true")


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory) -> dict:
    """One uninterrupted run, and the same run stopped after 5 steps and resumed."""
    from vila_nav.training.trainer import train

    root = tmp_path_factory.mktemp("runs")
    heads = RUN_HEADS
    full = train(_cfg(root / "full", data, *heads))
    part1 = train(_cfg(root / "resumed", data, *heads, "stop_after_steps=5"))
    part2 = train(_cfg(root / "resumed", data, *heads))
    return {"full": full, "part1": part1, "part2": part2}


# ---- layout ---------------------------------------------------------------------------------------


def test_training_sequence_is_the_inference_sequence(data):
    """The objective's loss equals cross-entropy of the answer computed through the model's own
    inference path (VilaModel.inputs_embeds: per-frame encoding, prompt ids, slot replacement)."""
    import torch.nn.functional as F

    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.collate import IGNORE_INDEX, DecisionDataset, SftCollator
    from vila_nav.training.objective import SftObjective
    from vila_nav.training.store import SftDataset

    model = build_model(TINY, seed=1)
    ds = DecisionDataset(SftDataset(data["train"]))
    col = SftCollator(model.tokenizer, model.image_processor, model.num_frames)
    items = [ds[i] for i in (3, 4, 11)]
    batch = col(items)
    assert batch["pixel_values"].shape[0] < 3 * 8  # the shared black frame and repeats encoded once
    for item, ids, n_ans in zip(items, batch["input_ids"], batch["answer_len"]):
        assert ids[:-n_ans] == model.prompt_ids(item["instruction"])
        assert ids[-1] == model.tokenizer.convert_tokens_to_ids("<|eot_id|>")
        assert model.tokenizer.decode(ids[-n_ans:-1]) == item["answer"]
    out = SftObjective(model)(batch)
    total, count = 0.0, 0
    with torch.no_grad():
        for item, ids, n_ans in zip(items, batch["input_ids"], batch["answer_len"]):
            prompt = model.inputs_embeds(item["frames"], item["instruction"])  # (1, Lp, H)
            answer = model.llm.get_input_embeddings()(torch.tensor(ids[-n_ans:]))[None]
            logits = model.llm(inputs_embeds=torch.cat([prompt, answer], 1)).logits[0]
            labels = torch.full((logits.shape[0],), IGNORE_INDEX)
            labels[-n_ans:] = torch.tensor(ids[-n_ans:])
            total += float(F.cross_entropy(logits[:-1], labels[1:], reduction="sum"))
            count += n_ans
    assert int(out["tokens"]) == count
    assert float(out["loss"].detach()) == pytest.approx(total / count, rel=1e-5)


def test_shared_prompt_prefix_gives_the_same_loss_and_gradients(data):
    """The shared system-prompt prefix runs once per batch: same loss and gradients as full rows."""
    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.collate import DecisionDataset, SftCollator
    from vila_nav.training.objective import SftObjective, _shared_prefix
    from vila_nav.training.store import SftDataset

    model = build_model(TINY, seed=2)
    ds = DecisionDataset(SftDataset(data["train"]))
    batch = SftCollator(model.tokenizer, model.image_processor, model.num_frames)([ds[i] for i in (0, 5, 9, 13)])
    shared = _shared_prefix(batch["input_ids"])
    first_slot = batch["input_ids"][0].index(-200)
    assert shared == first_slot > 20  # the whole system prompt up to the first image
    results = []
    for share in (True, False):
        model.zero_grad()
        out = SftObjective(model, share_prefix=share)(batch)
        out["loss"].backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((float(out["loss"].detach()), out["exact"].tolist(), grads))
    (l1, e1, g1), (l2, e2, g2) = results
    assert l1 == pytest.approx(l2, rel=1e-5) and e1 == e2 and g1.keys() == g2.keys()
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], rtol=1e-4, atol=1e-6, msg=name)
    assert _shared_prefix([[1, 2, 3], [1, 2, 4]]) == 2 and _shared_prefix([[5, -200, 1], [5, -200, 1]]) == 1


def test_auxiliary_vision_loss_reads_the_current_view(data):
    """aux.vision_weight: loss = LM loss + w x CE(head(current frame's visual tokens), direction)."""
    import torch.nn.functional as F

    from vila_nav.actions import parse_action
    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.collate import AUX_KINDS, DecisionDataset, SftCollator
    from vila_nav.training.objective import SftObjective
    from vila_nav.training.store import SftDataset

    model = build_model(TINY, seed=2)
    ds = DecisionDataset(SftDataset(data["train"]))
    items = [ds[i] for i in (0, 5, 9, 13)]
    batch = SftCollator(model.tokenizer, model.image_processor, model.num_frames)(items)
    assert batch["answer_kind"] == [AUX_KINDS.index(parse_action(it["answer"]).kind) for it in items]
    plain = SftObjective(model)(batch)
    assert plain["aux_loss"] == 0 and torch.equal(plain["loss"], plain["lm_loss"])
    obj = SftObjective(model, aux_weight=0.5)
    out = obj(batch)
    torch.testing.assert_close(out["lm_loss"], plain["lm_loss"])  # the LM's loss is untouched
    with torch.no_grad():  # by hand: the last slot of each sample is its current frame
        visual = model.projector(model.vision(batch["pixel_values"]))
        current = visual[batch["frame_index"][:, -1]]
        want = F.cross_entropy(obj.aux_head(current.flatten(1)), torch.tensor(batch["answer_kind"]))
    torch.testing.assert_close(out["aux_loss"], want)
    torch.testing.assert_close(out["loss"].detach(), out["lm_loss"] + 0.5 * want)
    out["loss"].backward()  # the head's signal reaches the tower directly
    assert obj.aux_head.weight.grad is not None and model.vision.model.embeddings.patch_embedding.weight.grad.abs().sum() > 0
    assert not any(k.startswith("aux") for k in model.state_dict())  # not part of the model


def test_progress_loss_reads_the_state_where_the_answer_starts(data, tmp_path):
    """aux.progress_weight: loss += w x CE(head(LM hidden state before the answer), distance bin);
    samples without a recorded distance are left out; the trainer refuses data without any."""
    import torch.nn.functional as F

    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.collate import DecisionDataset, SftCollator
    from vila_nav.training.objective import SftObjective
    from vila_nav.training.store import SftDataset
    from vila_nav.training.trainer import TrainError, train

    model = build_model(TINY, seed=2)
    ds = DecisionDataset(SftDataset(data["train"]))
    items = [ds[i] for i in (0, 1, 3, 4)]  # 7.5, 6.0, 3.0, 1.5 m from the goal
    batch = SftCollator(model.tokenizer, model.image_processor, model.num_frames)(items)
    assert batch["goal_distance"] == [7.5, 6.0, 3.0, 1.5]
    plain = SftObjective(model)(batch)
    obj = SftObjective(model, progress_weight=0.5, progress_edges_m=[1, 2, 3, 5, 8])
    out = obj(batch)
    torch.testing.assert_close(out["lm_loss"], plain["lm_loss"])
    h = answer_states(model, items)  # by hand, through the inference path: the prompt's last position
    with torch.no_grad():
        want = F.cross_entropy(obj.progress_head(h), torch.tensor([4, 4, 3, 1]))  # bins of 7.5, 6, 3, 1.5 m
    check_head_loss(model, obj, out, "progress", want, 0.5)  # reaches the LM's reading of the instruction
    # A sample without a distance is left out of the progress loss.
    batch["goal_distance"][0] = None
    with torch.no_grad():
        part = F.cross_entropy(obj.progress_head(h[1:]), torch.tensor([4, 3, 1]))
        torch.testing.assert_close(obj(batch)["progress_loss"], part, rtol=1e-4, atol=1e-5)
    # Data built before goal_distance_m existed: a clear error before any training.
    old = write_one_decision_sft(tmp_path / "old", Decision(0, ANSWERS[0], None, (), "expert"))
    assert SftDataset(old).samples[0].goal_distance_m is None
    with pytest.raises(TrainError, match="goal_distance_m.*rebuild"):
        train(_cfg(tmp_path / "run", {"train": old, "val": data["val"]}, "aux.progress_weight=1"))
    with pytest.raises(ValueError, match="progress_edges_m"):
        compose(TrainConfig, "train", ["aux.progress_edges_m=[2.0,1.0]"])


def test_object_loss_reads_the_current_view(data, tmp_path):
    """aux.objects_weight: loss += w x sum over (name, range) of BCE(head(current frame's visual
    tokens), "shows name within range"), mean over frames; samples without ground truth are left
    out, unknown names ignored; the trainer refuses data without any."""
    import torch.nn.functional as F

    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.collate import DecisionDataset, SftCollator
    from vila_nav.training.objective import SftObjective
    from vila_nav.training.store import SftDataset
    from vila_nav.training.trainer import TrainError, train

    model = build_model(TINY, seed=2)
    ds = DecisionDataset(SftDataset(data["train"]))
    items = [ds[i] for i in (0, 1, 5, 6)]
    batch = SftCollator(model.tokenizer, model.image_processor, model.num_frames)(items)
    assert batch["visible_objects"] == [it["visible_objects"] for it in items] and "blue ball" in items[2]["visible_objects"]
    plain = SftObjective(model)(batch)
    obj = SftObjective(model, objects_weight=0.5, object_names=["blue ball", "red box"], objects_ranges_m=[1.0, 4.0])
    out = obj(batch)
    torch.testing.assert_close(out["lm_loss"], plain["lm_loss"])
    # [frame, name, range]: the red box at 2 x label m in every frame, the blue ball at 6 m (beyond
    # both ranges) in the last two
    want_target = torch.tensor([[[0.0, 0.0], [float(it["visible_objects"]["red box"] <= r) for r in (1.0, 4.0)]]
                                for it in items])
    with torch.no_grad():  # by hand, through the inference path: the current frame's tokens
        current = torch.stack([model.encode_frame(it["frames"][-1]).flatten() for it in items])
        logits = obj.objects_head(current).view(4, 2, 2)
        want = F.binary_cross_entropy_with_logits(logits, want_target, reduction="none").sum(dim=(1, 2)).mean()
    torch.testing.assert_close(obj.objects_target([it["visible_objects"] for it in items]), want_target)
    check_head_loss(model, obj, out, "objects", want, 0.5)  # the ground truth reaches the tower directly
    # Samples without ground truth are left out; names the head does not know are ignored.
    batch["visible_objects"][0] = None
    batch["visible_objects"][1] = {**batch["visible_objects"][1], "purple sofa": 0.5}
    with torch.no_grad():
        part = F.binary_cross_entropy_with_logits(logits[1:], want_target[1:], reduction="none").sum(dim=(1, 2)).mean()
        torch.testing.assert_close(obj(batch)["objects_loss"], part, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="distinct object names"):
        SftObjective(model, objects_weight=1.0, object_names=[])
    # Data without the ground truth (older data, or habitat's): a clear error before any training.
    old = write_one_decision_sft(tmp_path / "old", Decision(0, ANSWERS[0], None, (), "expert", 1.0))
    assert SftDataset(old).samples[0].visible_objects is None
    with pytest.raises(TrainError, match="visible_objects.*rebuild"):
        train(_cfg(tmp_path / "run", {"train": old, "val": data["val"]}, "aux.objects_weight=1"))
    with pytest.raises(ValueError, match="objects_ranges_m"):
        compose(TrainConfig, "train", ["aux.objects_ranges_m=[4.0,2.0]"])


def test_name_head_scores_views_by_their_likeness_to_the_names_words(data, tmp_path):
    """aux.objects_head=names: logit[f, n, r] = scale[r] x max over the current frame's visual
    tokens of cos(token, mean input embedding of the name's words as the instructions spell them)
    + bias[n, r]; the same labels and reduction as the linear head; gradients reach the tower and
    the names' word embeddings; its state is scale and bias only."""
    import torch.nn.functional as F
    from safetensors.torch import load_file

    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.collate import DecisionDataset, SftCollator
    from vila_nav.training.name_head import NameGroundedHead
    from vila_nav.training.objective import SftObjective
    from vila_nav.training.store import SftDataset
    from vila_nav.training.trainer import train

    model = build_model(TINY, seed=2)
    ds = DecisionDataset(SftDataset(data["train"]))
    items = [ds[i] for i in (0, 1, 5, 6)]
    batch = SftCollator(model.tokenizer, model.image_processor, model.num_frames)(items)
    names, ranges = ["blue ball", "red box"], [1.0, 4.0]
    obj = SftObjective(model, objects_weight=0.5, object_names=names, objects_ranges_m=ranges, objects_head="names")
    with torch.no_grad():
        obj.objects_head.scale.copy_(torch.tensor([7.0, 12.0]))  # distinct per range, so the test sees the layout
        obj.objects_head.bias.copy_(torch.arange(4.0) - 2.0)
    out = obj(batch)
    # By hand, through the inference path. The name's tokens are the ones the LM reads in the
    # instruction ("Walk to the red box in room 0."), after a space.
    ids = [model.tokenizer(" " + n, add_special_tokens=False).input_ids for n in names]
    text = model.tokenizer(items[0]["instruction"], add_special_tokens=False).input_ids
    assert any(text[i: i + len(ids[1])] == ids[1] for i in range(len(text)))
    table = model.llm.get_input_embeddings().weight.detach()
    with torch.no_grad():
        words = torch.stack([table[i].mean(dim=0) for i in ids])  # (N, H)
        current = torch.stack([model.encode_frame(it["frames"][-1]) for it in items])  # (F, T, H)
        cos = F.cosine_similarity(current[:, :, None, :], words[None, None], dim=-1).amax(dim=1)  # (F, N)
        logits = cos[..., None] * torch.tensor([7.0, 12.0]) + (torch.arange(4.0) - 2.0).view(2, 2)
        target = obj.objects_target([it["visible_objects"] for it in items])
        want = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=(1, 2)).mean()
    check_head_loss(model, obj, out, "objects", want, 0.5)  # pulls the views and the words together
    assert model.llm.get_input_embeddings().weight.grad[ids[1]].abs().sum() > 0  # the name's own words
    assert set(obj.objects_head.state_dict()) == {"scale", "bias"}  # the name ids are rebuilt, not saved
    with pytest.raises(ValueError, match="objects_head"):
        SftObjective(model, objects_weight=0.5, object_names=names, objects_head="mlp")
    with pytest.raises(ValueError, match="aux.objects_head"):
        compose(TrainConfig, "train", ["aux.objects_head=mlp"])
    # The trainer builds it from the config and saves its state for resuming.
    cfg = _cfg(tmp_path / "run", data, "aux.objects_weight=0.5", "aux.objects_head=names", "max_steps=2",
               "save_every=2", "val.every=2")
    train(cfg)
    saved = load_file(str(tmp_path / "run" / "checkpoints" / "step-0000002" / "trainer_state" / "objects_head.safetensors"))
    assert set(saved) == {"scale", "bias"} and saved["bias"].shape == (2 * 3,)  # red box, blue ball x 3 ranges
    NameGroundedHead([[1], [2]], 3).load_state_dict(saved)  # strict


def test_goal_match_loss_compares_the_named_goal_with_the_view(data):
    """aux.match_weight: loss += w x BCE(head(LM state before the answer), "the object the last
    sentence names is in view within match_range_m"); rows naming no known object are left out."""
    import torch.nn.functional as F

    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.collate import DecisionDataset, SftCollator
    from vila_nav.training.objective import SftObjective, named_goal
    from vila_nav.training.store import SftDataset

    names = ["blue ball", "box", "red box"]
    assert named_goal("Pass the stove. Stop next to the red box.", names) == "red box"  # the longest name
    assert named_goal("Stop next to the red box. Wait in the hall.", names) is None  # the last sentence only
    assert named_goal("Stop by the boxes!", names) is None and named_goal("", names) is None  # whole words
    model = build_model(TINY, seed=2)
    ds = DecisionDataset(SftDataset(data["train"]))
    items = [ds[i] for i in (0, 1, 5, 6)]  # "Walk to the red box in room N.": the red box at 2 x label m
    batch = SftCollator(model.tokenizer, model.image_processor, model.num_frames)(items)
    plain = SftObjective(model)(batch)
    obj = SftObjective(model, match_weight=0.5, object_names=names, match_range_m=3.0)
    out = obj(batch)
    torch.testing.assert_close(out["lm_loss"], plain["lm_loss"])
    want_target = torch.tensor([float(it["visible_objects"]["red box"] <= 3.0) for it in items])
    assert 0 < want_target.sum() < 4  # both labels occur
    h = answer_states(model, items)  # by hand, through the inference path: the prompt's last position
    with torch.no_grad():
        want = F.binary_cross_entropy_with_logits(obj.match_head(h)[:, 0], want_target)
    check_head_loss(model, obj, out, "match", want, 0.5)  # reaches the LM's reading of the instruction
    # A row whose instruction names no known object is left out.
    batch["instructions"][0] = "Walk to the kitchen."
    with torch.no_grad():
        part = F.binary_cross_entropy_with_logits(obj.match_head(h[1:])[:, 0], want_target[1:])
        torch.testing.assert_close(obj(batch)["match_loss"], part, rtol=1e-4, atol=1e-5)


def test_swapped_goal_match_rows_score_another_rows_instruction(data):
    """aux.match_swapped: each goal-match row is also scored with the next goal-match row's
    instruction that differs from its own (cyclic), at the state where that prompt's answer would start, labelled for that
    instruction's goal in this row's view; match_swapped_loss is added with match_weight."""
    import torch.nn.functional as F

    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.collate import DecisionDataset, SftCollator
    from vila_nav.training.objective import SftObjective
    from vila_nav.training.store import SftDataset

    model = build_model(TINY, seed=2)
    ds = DecisionDataset(SftDataset(data["train"]))
    items = [ds[i] for i in (0, 1, 5, 6, 7)]
    items[1]["instruction"] = "Walk ahead. Stop by the blue ball."  # in view at 6 m in items 2-4 only
    items[4]["instruction"] = "Walk to the kitchen."  # names no object: no row of its own, never swapped in
    batch = SftCollator(model.tokenizer, model.image_processor, model.num_frames)(items)
    names = ["blue ball", "red box"]
    plain = SftObjective(model, match_weight=0.5, object_names=names, match_range_m=6.5)
    obj = SftObjective(model, match_weight=0.5, object_names=names, match_range_m=6.5, match_swapped=True)
    obj.match_head.load_state_dict(plain.match_head.state_dict())
    out, ref = obj(batch), plain(batch)
    torch.testing.assert_close(out["match_loss"], ref["match_loss"])  # the own rows are unchanged
    assert out["match_rows"] == 4 and out["match_swapped_rows"] == 4 and ref["match_swapped_rows"] == 0
    # Row k takes row order[k]'s instruction: rows 2 and 3 (one episode) share theirs, so row 2
    # skips row 3 and, like row 3, takes row 0's.
    order = [1, 2, 0, 0]
    swapped = [{"frames": items[k]["frames"], "instruction": items[j]["instruction"]} for k, j in enumerate(order)]
    want_target = torch.tensor([1.0 if j == 1 and "blue ball" in items[k]["visible_objects"]
                                else float(j != 1 and items[k]["visible_objects"]["red box"] <= 6.5)
                                for k, j in enumerate(order)])
    assert 0 < want_target.sum() < 4
    h = answer_states(model, swapped)  # by hand, through the inference path
    with torch.no_grad():
        want = F.binary_cross_entropy_with_logits(obj.match_head(h)[:, 0], want_target)
    torch.testing.assert_close(out["match_swapped_loss"], want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["loss"].detach(), ref["loss"].detach() + 0.5 * want, rtol=1e-4, atol=1e-5)
    # A batch of one episode (one instruction) has nothing to swap in.
    one = obj(SftCollator(model.tokenizer, model.image_processor, model.num_frames)([ds[0], ds[1]]))
    assert one["match_rows"] == 2 and one["match_swapped_rows"] == 0 and float(one["match_swapped_loss"]) == 0.0


def test_data_sources_select_expert_or_recovery_samples(data, tmp_path):
    """data.sources=[expert] is the "without recovery data" ablation: the same expert samples."""
    from vila_nav.training.store import SftDataset, SftFormatError
    from vila_nav.training.train_config import DataConfig

    everything = SftDataset(data["train"])
    expert = SftDataset(data["train"], sources=["expert"])
    assert {s.source for s in everything} == {"expert", "recovery"} and {s.source for s in expert} == {"expert"}
    assert [s.id for s in expert] == [s.id for s in everything if s.source == "expert"]
    assert len(SftDataset(data["train"], sources=["recovery"])) == len(everything) - len(expert)
    with pytest.raises(SftFormatError, match="no samples of sources"):
        SftDataset(write_synthetic_sft(tmp_path / "one", episodes=1), sources=["recovery"])  # expert only
    with pytest.raises(ValueError, match="data.sources"):
        DataConfig(sources=["imitation"])


def test_blind_data_gives_black_frames_and_one_tower_input(data):
    """data.blind (the language-only baseline): every frame black, one distinct frame per batch."""
    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.collate import DecisionDataset, SftCollator
    from vila_nav.training.store import SftDataset

    model = build_model(TINY, seed=1)
    store = SftDataset(data["train"])
    seen, blind = DecisionDataset(store), DecisionDataset(store, blind=True)
    items = [blind[i] for i in (3, 4, 11)]
    assert any(f.any() for i in (3, 4, 11) for f in seen[i]["frames"])  # the data itself has images
    for item, i in zip(items, (3, 4, 11)):
        assert len(item["frames"]) == store.num_frames and not any(f.any() for f in item["frames"])
        assert item["frame_keys"] == [None] * store.num_frames and item["answer"] == seen[i]["answer"]
    batch = SftCollator(model.tokenizer, model.image_processor, model.num_frames)(items)
    assert batch["pixel_values"].shape[0] == 1 and int(batch["frame_index"].max()) == 0


# ---- a short run ------------------------------------------------------------------------------------


def test_short_run_loss_falls_and_checkpoints_reload(runs, data):
    from vila_nav.model import load
    from vila_nav.training.collate import DecisionDataset
    from vila_nav.training.store import SftDataset

    r = runs["full"]
    assert r.step == 12 and r.stopped == "max_steps" and len(r.losses) == 12
    assert np.mean(r.losses[-3:]) < 0.8 * np.mean(r.losses[:3])
    out = r.output_dir
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step-0000008", "step-0000012"]  # keep_checkpoints=2; no temporary leftovers
    assert (out / "loss_curve.png").stat().st_size > 1000 and (out / "config.yaml").is_file()
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["loss"] for row in rows if "loss" in row] == r.losses
    assert all(min(row["progress_loss"], row["aux_loss"], row["objects_loss"], row["match_loss"],
                   row["match_swapped_loss"]) > 0 for row in rows if "loss" in row)
    assert [row["step"] for row in rows if "val_loss" in row] == [6, 12]
    assert all(min(row["val_objects_loss"], row["val_match_loss"], row["val_match_swapped_loss"]) > 0
               for row in rows if "val_loss" in row)
    assert r.validation["val_samples"] == 10 and 0.0 <= r.validation["val_action_acc"] <= 1.0
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pt"))  # safetensors + JSON only
    # final/ is a NaVILA-layout checkpoint equal to the last step checkpoint.
    assert _tensors(out / "final").keys() == _tensors(out / "checkpoints" / "step-0000012").keys()
    model = load(out / "final")
    assert set(p.name for p in (out / "final").iterdir()) >= {"config.json", "llm", "vision_tower", "mm_projector"}
    # Teacher-forced exact match == greedy decoding reproduces the answer (same layout).
    from vila_nav.training.collate import SftCollator
    from vila_nav.training.objective import SftObjective

    val_store = SftDataset(data["val"])
    val_store.num_frames = model.num_frames  # the data has 8 frames per sample; the model takes 4 (re-sampled)
    val = DecisionDataset(val_store)
    items = [val[i] for i in range(6)]
    col = SftCollator(model.tokenizer, model.image_processor, model.num_frames)
    with torch.no_grad():
        exact = SftObjective(model)(col(items))["exact"].tolist()
    decoded = [model.generate(it["frames"], it["instruction"]) == it["answer"] for it in items]
    assert exact == decoded


def test_resumed_run_reproduces_the_uninterrupted_run(runs, data):
    full, p1, p2 = runs["full"], runs["part1"], runs["part2"]
    assert p1.step == 5 and p1.stopped == "stop_after_steps" and p2.start_step == 5 and p2.step == 12
    assert p1.losses + p2.losses == full.losses  # bit for bit (the auxiliary heads resume too)
    state = p2.last_checkpoint / "trainer_state"
    assert {f.name for f in state.glob("*_head.safetensors")} == {"aux_head.safetensors", "progress_head.safetensors",
                                                                   "objects_head.safetensors", "match_head.safetensors"}
    a, b = _tensors(full.output_dir / "final"), _tensors(p2.output_dir / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x) for x in (p2.output_dir / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == list(range(1, 13))
    # Running again when finished does nothing; changing what shapes the run is refused.
    from vila_nav.training.trainer import TrainError, train

    heads = RUN_HEADS
    again = train(_cfg(p2.output_dir, data, *heads))
    assert again.losses == [] and again.step == 12
    with pytest.raises(TrainError, match="optim"):
        train(_cfg(p2.output_dir, data, *heads, "optim.lr=1e-3"))
    with pytest.raises(TrainError, match="aux"):
        train(_cfg(p2.output_dir, data, "aux.progress_weight=0.5"))


def test_a_checkpoint_from_before_a_new_setting_resumes_with_its_default(data, tmp_path):
    """A run saved before aux.progress_* existed ran without the progress loss: it resumes when
    the loss stays off, and turning it on is a settings change, refused."""
    import dataclasses

    from vila_nav.training.trainer import TrainError, _check_resume

    def as_saved(cfg) -> dict:  # as the trainer stores it
        return json.loads(json.dumps(dataclasses.asdict(cfg)))

    now = as_saved(_cfg(tmp_path, data))
    old = json.loads(json.dumps(now))
    del old["aux"]["progress_weight"], old["aux"]["progress_edges_m"]
    saved = {"extra": {"config": old, "world_size": 1}}
    _check_resume(saved, now, 1, tmp_path)  # no error
    with pytest.raises(TrainError, match="aux"):
        _check_resume(saved, as_saved(_cfg(tmp_path, data, "aux.progress_weight=1")), 1, tmp_path)


# ---- stopping on a signal ---------------------------------------------------------------------------------


def test_sigterm_ends_the_run_with_a_checkpoint_of_that_step(data, tmp_path):
    """What a scheduler or torchrun does before a kill: `vila-nav train` finishes its step, saves
    it (save_every is far away), says so, exits 130, and the same command resumes there."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    args = [f"output_dir={out}", f"data.train=[{data['train']}]", "data.val=", "model.preset=tiny",
            "model.image_size=null", "model.tokenizer_vocab_size=512", "batch_size=4", "max_steps=100000",
            "optim.warmup_steps=2", "save_every=100000", "log_every=1", "progress=false", "threads=1"]
    proc = subprocess.Popen([sys.executable, "-m", "vila_nav.cli", "train", *args], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    seen = []
    for line in proc.stderr:  # steps are logged to stderr, one line each (log_every=1)
        seen.append(line)
        if " step 3 loss " in line:
            proc.send_signal(signal.SIGTERM)
            break
    stdout, rest = proc.communicate(timeout=120)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    ckpts = sorted((out / "checkpoints").iterdir())
    assert len(ckpts) == 1 and (ckpts[0] / "trainer_state" / "state.json").is_file(), err
    at = int(ckpts[0].name.split("-")[1])
    assert at >= 3 and f"SIGTERM at step {at}, saved in {ckpts[0]}" in err and f"steps 0 -> {at}" in stdout
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, at + 1))

    from vila_nav.training.trainer import train

    resumed = train(compose(TrainConfig, "train", [*args, "stop_after_steps=1"]))
    assert resumed.start_step == at and resumed.step == at + 1


def test_stop_request_records_one_signal_then_steps_aside():
    import signal

    from vila_nav.training.interrupt import StopRequest

    def deliver(sig) -> None:
        # raise_signal runs the Python handler before it returns (it checks pending signals in this,
        # the main, thread), so no other thread holding the GIL can delay it past the asserts.
        signal.raise_signal(sig)

    # pytest started in the background (`cmd &` from a script) inherits SIGINT ignored, and
    # StopRequest rightly leaves an ignored Ctrl-C alone: give this check Python's default first.
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        with StopRequest() as stop:
            assert stop.received is None
            deliver(signal.SIGINT)
            assert stop.received == "SIGINT"
            assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # a second one acts
            with pytest.raises(KeyboardInterrupt):
                deliver(signal.SIGINT)
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    finally:
        signal.signal(signal.SIGINT, outer)

    # An ignored Ctrl-C (a job started with & from a script) stays ignored.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopRequest() as stop:
            deliver(signal.SIGINT)
            assert stop.received is None and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- fine-tuning a NaVILA-layout checkpoint, through the CLI ------------------------------------------------


def test_cli_fine_tunes_a_navila_checkpoint_with_a_frozen_tower(data, tmp_path, capsys):
    from vila_nav.cli import main
    from vila_nav.model.testing import make_tiny_checkpoint

    src = make_tiny_checkpoint(tmp_path / "navila", seed=5, num_video_frames=4)  # data has 8: re-sampled
    out = tmp_path / "ft"
    rc = main(["train", f"init_from={src}", f"output_dir={out}", f"data.train=[{data['train']}]", "data.val=",
               "trainable.vision_tower=false", "gradient_checkpointing=true", "batch_size=4", "max_steps=3",
               "save_every=10", "progress=false"])
    assert rc == 0, capsys.readouterr().err
    assert "steps 0 -> 3" in capsys.readouterr().out

    def digest(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    assert digest(out / "final" / "llm" / "tokenizer.json") == digest(src / "llm" / "tokenizer.json")
    before, after = _tensors(src), _tensors(out / "final")
    assert before.keys() == after.keys()
    vision = [k for k in before if k.startswith("vision_tower/")]
    assert vision and all(torch.equal(before[k], after[k]) for k in vision)  # frozen
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("llm/"))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("mm_projector/"))
    assert json.loads((out / "final" / "config.json").read_text())["num_video_frames"] == 4
    assert main(["train", "batch_size=0"]) == 2


# ---- pieces ---------------------------------------------------------------------------------------------


def test_trainable_flags_and_unused_tower_layers():
    from vila_nav.model.testing import TINY, build_model
    from vila_nav.training.train_config import TrainableConfig
    from vila_nav.training.trainable import configure_trainable

    model = build_model(TINY)
    report = configure_trainable(model, TrainableConfig(vision_tower=True, projector=False, llm=True))
    assert report["projector"]["trainable"] == 0 and report["llm"]["frozen"] == 0
    assert report["vision_tower"]["frozen"] > 0  # the last encoder layer and post-layernorm are never used
    last = [p for n, p in model.vision.named_parameters() if ".layers.1." in n]
    assert last and not any(p.requires_grad for p in last)
    first = [p for n, p in model.vision.named_parameters() if ".layers.0." in n]
    assert first and all(p.requires_grad for p in first)
    with pytest.raises(ValueError):
        TrainableConfig(vision_tower=False, projector=False, llm=False)


def test_training_state_round_trip_without_pickle(tmp_path):
    from transformers import get_cosine_schedule_with_warmup

    from vila_nav.training.state import TrainStateError, load_rng, load_state, save_rng, save_state

    def make():
        torch.manual_seed(0)
        net = torch.nn.Linear(4, 3)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-2, betas=(0.9, 0.95))
        return net, opt, get_cosine_schedule_with_warmup(opt, 2, 10)

    net, opt, sched = make()
    for _ in range(3):
        net(torch.randn(5, 4)).square().mean().backward()
        opt.step(), sched.step(), opt.zero_grad()
    save_state(tmp_path, optimizer=opt, scheduler=sched, param_names=["weight", "bias"], step=3)
    save_rng(tmp_path, 0)
    expected = torch.rand(3)
    net2, opt2, sched2 = make()
    state = load_state(tmp_path, optimizer=opt2, scheduler=sched2, param_names=["weight", "bias"])
    load_rng(tmp_path, 0)
    assert torch.equal(torch.rand(3), expected) and state["step"] == 3
    assert sched2.get_last_lr() == sched.get_last_lr()
    for k, v in opt.state_dict()["state"].items():
        assert all(torch.equal(v[n], opt2.state_dict()["state"][k][n]) for n in v)
    assert {p.suffix for p in tmp_path.iterdir()} == {".json", ".safetensors"}
    with pytest.raises(TrainStateError, match="trainable parameters differ"):
        load_state(tmp_path, optimizer=opt2, scheduler=sched2, param_names=["bias", "weight"])


def test_bench_train_prints_figures(capsys):
    from vila_nav.cli import main

    assert main(["bench-train", "--steps", "1", "model.preset=tiny", "model.image_size=null", "batch_size=2", "threads=1"]) == 0
    out = capsys.readouterr().out
    assert "samples/s" in out and "M parameters" in out and "ms/token" in out
