"""The composed model: forward = step-by-step sub-modules, preprocessing, decoding, feature cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vila_nav.model as vm
from vila_nav.model.cache import FeatureCache, frame_key
from vila_nav.model.prompt import IMAGE_TOKEN_INDEX
from vila_nav.model.testing import make_tiny_checkpoint

INSTRUCTION = "Walk past the table and stop at the door."


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tiny_checkpoint):
    return tiny_checkpoint(seed=1)


@pytest.fixture(scope="module")
def model(ckpt):
    return vm.load(ckpt)


def _frames(n: int, seed: int = 0, shape=(30, 40, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def _reference_pixels(frame: np.ndarray, size: int) -> np.ndarray:
    # NaVILA's path: PIL resize (default bicubic) then the SigLIP image processor (no-op resize,
    # rescale, normalise 0.5/0.5), here transformers' Pillow implementation.
    from PIL import Image
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    resized = np.asarray(Image.fromarray(frame).resize((size, size)))
    proc = SiglipImageProcessorPil(size={"height": size, "width": size})
    return proc(images=resized, return_tensors="np")["pixel_values"][0]


def test_preprocessing_matches_navila_bit_for_bit(model):
    for frame in _frames(3, seed=5, shape=(57, 91, 3)) + [np.zeros((42, 42, 3), np.uint8)]:
        mine = model.image_processor(frame)
        assert mine.shape == (3, 42, 42) and mine.dtype == np.float32
        assert np.array_equal(mine, _reference_pixels(frame, 42))
    assert model.image_processor(np.zeros((5, 5, 3), np.uint8)).min() == -1.0
    with pytest.raises(ValueError, match="uint8"):
        model.image_processor(np.zeros((5, 5, 3), np.float32))


def _manual_downsample(x: torch.Tensor) -> torch.Tensor:
    # (N, C) features of a g x g grid -> tokens t = j*G + i of 4C, written with explicit loops.
    n, c = x.shape
    g = int(round(n**0.5))
    G = (g + 1) // 2
    grid = torch.zeros(2 * G, 2 * G, c)
    grid[:g, :g] = x.reshape(g, g, c)
    tokens = [None] * (G * G)
    for i in range(G):
        for j in range(G):
            tokens[j * G + i] = torch.cat([grid[2 * i, 2 * j], grid[2 * i, 2 * j + 1], grid[2 * i + 1, 2 * j], grid[2 * i + 1, 2 * j + 1]])
    return torch.stack(tokens)


def test_composed_forward_equals_step_by_step(model):
    frames = _frames(8, seed=2)
    with torch.inference_mode():
        visual = []
        for f in frames:  # one frame at a time, as the model does
            px = torch.from_numpy(_reference_pixels(f, 42))[None]
            out = model.vision.model(px, output_hidden_states=True)
            feats = out.hidden_states[model.config.mm_vision_select_layer][0]  # (9, C), no CLS to drop
            layers = model.projector.layers
            x = _manual_downsample(feats)
            x = layers[4](torch.nn.functional.gelu(layers[2](layers[1](x))))
            visual.append(x)
        ids = model.prompt_ids(INSTRUCTION)
        assert ids.count(IMAGE_TOKEN_INDEX) == 8
        rows, k = [], 0
        emb = model.llm.get_input_embeddings()
        for t in ids:
            if t == IMAGE_TOKEN_INDEX:
                rows.extend(visual[k])
                k += 1
            else:
                rows.append(emb.weight[t])
        embeds = torch.stack(rows)[None]
        want = model.llm(inputs_embeds=embeds).logits[0, -1]
    model.reset()
    got_embeds = model.inputs_embeds(frames, INSTRUCTION)
    assert got_embeds.shape == embeds.shape == (1, len(ids) - 8 + 8 * 4, 64)
    torch.testing.assert_close(got_embeds, embeds, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.logits(frames, INSTRUCTION), want, rtol=1e-4, atol=1e-5)


def test_generate_is_deterministic_with_stats(model):
    frames = _frames(8, seed=3)
    model.reset()
    a = model.generate(frames, INSTRUCTION)
    s = model.last_stats
    assert isinstance(a, str)
    assert s["vision_calls"] == 8 and s["new_tokens"] == 32 and not s["stopped"]  # random model: no stop
    assert s["visual_tokens"] == 32 and s["prompt_tokens"] > 32 and s["latency_s"] > 0
    assert model.generate(frames, INSTRUCTION) == a and model.last_stats["vision_calls"] == 0


def _sampled(history: list[np.ndarray], k: int) -> list[np.ndarray]:
    # NaVILA's sampling (navila.md): left-pad with black frames to k, then k-1 history slots
    # over the padded list + the current frame.
    black = np.zeros_like(history[0])
    padded = [black] * max(0, k - len(history)) + history
    n = len(padded)
    idx = np.linspace(0, n - 1, k - 1, endpoint=False).astype(int)
    return [padded[i] for i in idx] + [history[-1]]


def test_cached_and_uncached_decisions_are_identical(ckpt):
    cached, uncached = vm.load(ckpt), vm.load(ckpt)
    uncached.use_feature_cache = False
    stream = _frames(14, seed=4)
    calls = []
    for step in range(1, len(stream) + 1):
        frames = _sampled(stream[:step], 8)
        ids_c = cached.generate_ids(frames, INSTRUCTION)
        calls.append(cached.last_stats["vision_calls"])
        ids_u = uncached.generate_ids(frames, INSTRUCTION)
        assert uncached.last_stats["vision_calls"] == 8
        assert ids_c == ids_u, f"decision {step}"
        torch.testing.assert_close(cached.logits(frames, INSTRUCTION), uncached.logits(frames, INSTRUCTION), rtol=0, atol=0)
    # First decision: black padding + the current frame; after that exactly one new frame.
    assert calls[0] == 2
    assert calls[1:] == [1] * (len(stream) - 1)


def test_prompt_prefix_cache_gives_the_same_decisions(ckpt):
    """The system-prompt prefix's keys/values, computed once per episode, give the same tokens as
    a full prefill; reset() (a new episode, new weights) drops them."""
    shared, full = vm.load(ckpt), vm.load(ckpt)
    full.use_prefix_cache = False
    prefix = full.prompt_ids(INSTRUCTION).index(IMAGE_TOKEN_INDEX)
    stream = _frames(6, seed=7)
    for step in range(1, len(stream) + 1):
        frames = _sampled(stream[:step], 8)
        assert shared.generate_ids(frames, INSTRUCTION) == full.generate_ids(frames, INSTRUCTION), step
        assert shared.last_stats["prefix_tokens"] == prefix > 20 and full.last_stats["prefix_tokens"] == 0
        assert shared.last_stats["prompt_tokens"] == full.last_stats["prompt_tokens"]
    cached = shared._prefix
    shared.generate_ids(frames, "Another instruction.")
    assert shared._prefix is cached  # the prefix does not depend on the instruction
    shared.reset()
    assert shared._prefix is None


def test_reset_and_lru_bound(ckpt):
    m = vm.load(ckpt, cache_size=9)
    frames = _frames(12, seed=6)
    m.generate(frames[:8], INSTRUCTION)
    assert len(m.cache) == 8
    m.generate(frames[4:12], INSTRUCTION)
    assert m.last_stats["vision_calls"] == 4 and len(m.cache) == 9  # bounded
    m.reset()
    assert len(m.cache) == 0
    m.generate(frames[4:12], INSTRUCTION)
    assert m.last_stats["vision_calls"] == 8
    assert vm.load(ckpt).cache.capacity == 32  # default: 4 x num_video_frames


def test_feature_cache_keys_by_content():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    assert frame_key(a) == frame_key(a.copy()) != frame_key(b)
    assert frame_key(a) != frame_key(np.zeros((4, 2, 6), np.uint8))  # same bytes, other shape
    c = FeatureCache(2)
    c.put(b"x", 1)
    c.put(b"y", 2)
    assert c.get(b"x") == 1
    c.put(b"z", 3)  # evicts y, the least recently used
    assert b"y" not in c and b"x" in c and (c.hits, c.misses) == (1, 0)
    with pytest.raises(ValueError):
        FeatureCache(0)


def test_bad_frames_are_clear_errors(model):
    with pytest.raises(ValueError, match="exactly 8 frames"):
        model.generate(_frames(7), INSTRUCTION)
    bad = _frames(8)
    bad[3] = bad[3].astype(np.float32)
    with pytest.raises(ValueError, match="frame 3"):
        model.generate(bad, INSTRUCTION)


def test_stops_on_stop_tokens(ckpt):
    m = vm.load(ckpt)
    eot, eos = m.stop_ids
    with torch.no_grad():  # logits = W h with only column 0 alive: eot or eos always wins
        m.llm.model.norm.weight.zero_()
        m.llm.model.norm.weight[0] = 1.0
        m.llm.lm_head.weight.zero_()
        m.llm.lm_head.weight[eot, 0] = 1.0
        m.llm.lm_head.weight[eos, 0] = -1.0
    assert m.generate(_frames(8), INSTRUCTION) == ""
    assert m.last_stats["stopped"] and m.last_stats["new_tokens"] == 0


@pytest.mark.parametrize("ptype", ["linear", "mlp2x_gelu"])
def test_other_projectors_run(tmp_path, ptype):
    m = vm.load(make_tiny_checkpoint(tmp_path / ptype, projector_type=ptype, image_size=28))
    m.generate(_frames(8), INSTRUCTION)
    assert m.last_stats["visual_tokens"] == 8 * 4  # 2x2 patches, no downsampling


def test_patch_feature_keeps_siglip_tokens(tmp_path):
    m = vm.load(make_tiny_checkpoint(tmp_path / "p", select_feature="patch", select_layer=-1))
    assert m.vision.num_tokens == 9 and m.vision.layers_used == 2  # SigLIP has no CLS to drop
    m.generate(_frames(8), INSTRUCTION)
    assert m.last_stats["visual_tokens"] == 32


def test_instruction_with_an_image_placeholder_is_a_clear_error(model):
    with pytest.raises(ValueError, match="contains the literal '<image>'"):
        model.generate(_frames(model.num_frames), "go to <image> and stop")
