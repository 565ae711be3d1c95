"""Random VILA models in NaVILA's layout: tiny ones for tests, the "small" one for benchmarks/training.

`make_tiny_checkpoint(path)` writes a complete checkpoint (config.json, llm/ with tokenizer,
vision_tower/, mm_projector/) in a fraction of a second; `build_model(SMALL, tokenizer)` gives the
in-memory model the training recipe starts from (SigLIP 224/16, 192 wide, 4 layers; Llama 256
wide, 5 layers, GQA 4/2 heads; ~28 MB in float32). Both are written with the same
save_pretrained / safetensors calls as any checkpoint (vila_nav.model.checkpoint.save).

`make_answering_checkpoint(path, answer)` writes a real tiny checkpoint whose language model is
edited by hand so that greedy decoding spells a chosen sentence and then <|eot_id|>, whatever the
frames and instruction (a known input for the agent loop, ROS and benchmark tests):

- every decoder layer's attention output projection (o_proj) and MLP down projection are zeroed,
  so each layer adds nothing and the last hidden state is the token's own embedding;
- the final RMSNorm weight is 1; the tokens of the chain (the prompt's last token, which is the
  same for every instruction: the assistant header, then the answer's tokens) get orthogonal
  one-hot embeddings, and the LM head maps the k-th chain token to the (k+1)-th: a bigram chain.

Everything else (SigLIP tower, projector, prompt building, image slots, prefill with the visual
tokens, KV-cached greedy decoding, stop tokens, detokenisation) is the real model code running
real weights. What it does not have is visual understanding: the answer never depends on the
images.
"""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Iterator

import torch


@dataclasses.dataclass(frozen=True)
class Preset:
    """Sizes of a random VILA model (field names say which part they belong to)."""

    image_size: int = 42  # tower input S (pixels); S / patch_size patches per side
    patch_size: int = 14
    vision_hidden: int = 32  # C
    vision_layers: int = 2
    vision_heads: int = 2
    vision_intermediate: int = 64
    llm_hidden: int = 64  # H
    llm_layers: int = 2
    llm_heads: int = 4
    llm_kv_heads: int = 2
    llm_intermediate: int = 128
    vocab_size: int = 2048  # upper bound for the BPE tokenizer; the LM gets len(tokenizer) rows
    max_position_embeddings: int = 4096
    rope_theta: float = 500000.0  # Llama-3's
    tie_word_embeddings: bool = False
    projector_type: str = "mlp_downsample"
    num_video_frames: int = 8
    select_layer: int = -2
    select_feature: str = "cls_patch"
    init_std: float = 0.02

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")
        if self.vision_hidden % self.vision_heads or self.llm_hidden % self.llm_heads:
            raise ValueError("hidden sizes must be multiples of their head counts")
        if self.llm_heads % self.llm_kv_heads:
            raise ValueError("llm_heads must be a multiple of llm_kv_heads")


# 3 x 3 patch grid (odd: exercises the projector's zero padding) -> 4 tokens per frame.
TINY = Preset()
# The benchmark / shipped-model size: 14 x 14 patches -> 49 tokens per frame, 392 per decision.
SMALL = Preset(
    image_size=224,
    patch_size=16,
    vision_hidden=192,
    vision_layers=4,
    vision_heads=3,
    vision_intermediate=768,
    llm_hidden=256,
    llm_layers=5,
    llm_heads=4,
    llm_kv_heads=2,
    llm_intermediate=768,
    vocab_size=2048,
)
PRESETS = {"tiny": TINY, "small": SMALL}


def build_model(preset: Preset = TINY, tokenizer=None, seed: int = 0, dtype: torch.dtype = torch.float32):
    """A randomly initialised VilaModel of the given sizes (in memory, CPU).

    tokenizer: a tokenizer with Llama-3's special tokens (default: vila_nav.model.tokenizer's
    built-in one, vocab bounded by preset.vocab_size); the LM's vocabulary is len(tokenizer).
    """
    from transformers import LlamaConfig, LlamaForCausalLM, SiglipVisionConfig, SiglipVisionModel

    from vila_nav.model.config import VilaConfig
    from vila_nav.model.preprocess import ImageProcessor
    from vila_nav.model.projector import Projector
    from vila_nav.model.tokenizer import build_tokenizer
    from vila_nav.model.vila import VilaModel
    from vila_nav.model.vision import VisionTower

    p = preset
    tok = tokenizer if tokenizer is not None else build_tokenizer(vocab_size=p.vocab_size)
    gen = torch.random.fork_rng(devices=[])
    with gen:
        torch.manual_seed(seed)
        vcfg = SiglipVisionConfig(
            hidden_size=p.vision_hidden,
            intermediate_size=p.vision_intermediate,
            num_hidden_layers=p.vision_layers,
            num_attention_heads=p.vision_heads,
            image_size=p.image_size,
            patch_size=p.patch_size,
            vision_use_head=False,  # pooling head unused by VILA
        )
        tower = SiglipVisionModel(vcfg)
        lcfg = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=p.llm_hidden,
            intermediate_size=p.llm_intermediate,
            num_hidden_layers=p.llm_layers,
            num_attention_heads=p.llm_heads,
            num_key_value_heads=p.llm_kv_heads,
            max_position_embeddings=p.max_position_embeddings,
            rope_theta=p.rope_theta,
            tie_word_embeddings=p.tie_word_embeddings,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            initializer_range=p.init_std,
        )
        llm = LlamaForCausalLM(lcfg)
        projector = Projector(p.projector_type, p.vision_hidden, p.llm_hidden)
    config = VilaConfig(
        llm_cfg=lcfg.to_dict(),
        vision_tower_cfg=vcfg.to_dict(),
        mm_projector_cfg={"mm_projector_type": p.projector_type, "model_type": "v2l_projector"},
        hidden_size=p.llm_hidden,
        mm_hidden_size=p.vision_hidden,
        num_video_frames=p.num_video_frames,
        mm_vision_select_layer=p.select_layer,
        mm_vision_select_feature=p.select_feature,
        extra={"architectures": ["LlavaLlamaModel"]},
    )
    model = VilaModel(
        config,
        VisionTower(tower, p.select_layer, p.select_feature),
        projector,
        llm,
        tok,
        ImageProcessor(height=p.image_size, width=p.image_size),
    )
    return model.to(dtype).eval()


def build_random(preset: Preset | str, path: str | Path, tokenizer=None, seed: int = 0) -> Path:
    """Write a random checkpoint of `preset` ("tiny", "small" or a Preset) to `path`."""
    from vila_nav.model.checkpoint import save

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset '{preset}'; known: {sorted(PRESETS)}")
        preset = PRESETS[preset]
    return save(build_model(preset, tokenizer=tokenizer, seed=seed), path)


def make_tiny_checkpoint(path: str | Path, seed: int = 0, **overrides) -> Path:
    """Write a tiny random NaVILA-layout checkpoint to `path` (fast: for tests); returns path.

    overrides: any Preset field, e.g. num_video_frames=4, projector_type="linear".
    """
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Preset)}
    if unknown:
        raise TypeError(f"unknown preset field(s) {sorted(unknown)}; valid: {[f.name for f in dataclasses.fields(Preset)]}")
    return build_random(dataclasses.replace(TINY, **overrides), path, seed=seed)


FORWARD_ANSWER = "The next action is move forward 75 cm."
STOP_ANSWER = "I think I should stop."  # NaVILA's stop sentence repeats " I": a bigram chain cannot spell it


def make_answering_checkpoint(path: str | Path, answer: str = FORWARD_ANSWER, seed: int = 0, base: str = "tiny",
                              **preset) -> Path:
    """Write a real checkpoint to `path` whose greedy answer is always `answer`; returns path.

    base: "tiny" (tests) or "small" (the shipped model's sizes: realistic CPU cost, benchmarks),
    this module's presets; preset: overrides of its fields (e.g. llm_layers=4).
    Raises ValueError if the answer's tokens repeat (a bigram chain cannot spell it) or the chain
    is longer than the LM's hidden size.
    """
    from vila_nav.model.checkpoint import save

    if base not in PRESETS:
        raise ValueError(f"unknown base preset {base!r}; known: {sorted(PRESETS)}")
    model = build_model(dataclasses.replace(PRESETS[base], **preset), seed=seed)
    tok = model.tokenizer
    chain = [model.prompt_ids("any instruction")[-1], *tok(answer, add_special_tokens=False).input_ids, model.stop_ids[0]]
    sources = chain[:-1]
    if len(set(sources)) != len(sources):
        raise ValueError(f"answer {answer!r} repeats a token ({sources}); a bigram chain cannot spell it")
    llm = model.llm
    hidden = llm.get_input_embeddings().weight.shape[1]
    if len(sources) > hidden:
        raise ValueError(f"answer needs {len(sources)} chain tokens but the LM is only {hidden} wide")
    with torch.no_grad():
        for layer in llm.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        llm.model.norm.weight.fill_(1.0)
        emb = llm.get_input_embeddings().weight  # (V, H)
        head = llm.get_output_embeddings().weight  # (V, H), untied in the tiny preset
        if head.data_ptr() == emb.data_ptr():
            raise ValueError("the LM ties its input and output embeddings; use an untied preset")
        head.zero_()
        for k, (src, dst) in enumerate(zip(chain[:-1], chain[1:])):
            emb[src].zero_()
            emb[src, k] = 1.0  # RMSNorm -> sqrt(H) * e_k
            head[dst, k] = 10.0  # logit 10 * sqrt(H) for the next token, 0 for all others
    out = save(model, path)
    return Path(out)


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run torch with `n` CPU threads inside the block, restoring the previous count after.

    Tiny models gain nothing from threads, and on a shared CPU a second thread that must wait for
    a busy core can make each op tens of times slower; tests use one.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class AlternatingModel:
    """Loaded real models answering in turn: query 0 -> models[0], 1 -> models[1], 2 -> models[0], ...

    With two answering checkpoints (say "turn left" and "turn right") this is a policy that turns
    back and forth in place, the input of the turn-reversal rule's tests (vila_nav.turn_guard).
    Every answer is a real model's generate(); reset() resets them all and restarts the turn.
    """

    def __init__(self, *models) -> None:
        if len(models) < 2:
            raise ValueError("AlternatingModel needs at least two models")
        self.models, self.calls = models, 0

    @property
    def num_frames(self) -> int:
        return int(self.models[0].num_frames)

    def generate(self, frames, instruction: str) -> str:
        self.calls += 1
        return self.models[(self.calls - 1) % len(self.models)].generate(frames, instruction)

    def reset(self) -> None:
        self.calls = 0
        for m in self.models:
            m.reset()
