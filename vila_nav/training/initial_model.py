"""The model a training run starts from: a NaVILA-layout checkpoint, or a fresh one from a preset.

- init_from=PATH: `vila_nav.model.load(PATH)` in float32 on CPU (the trainer moves it): any
  checkpoint in NaVILA's released layout, its own tokenizer kept (fine-tuning).
- from scratch: a byte-level BPE tokenizer trained offline (vila_nav.model.tokenizer) on the
  prompt text, NaVILA's ten answers and the navigation question of every training instruction,
  so frequent template and instruction words become single tokens (shorter prompts, faster
  steps); then `vila_nav.model.testing.build_model(preset, tokenizer, seed)` with the preset's
  sizes and overrides. With model.phrase_tokens (the default) the prompt's fixed text pieces and
  the ten answers are one token each (vila_nav.model.tokenizer.prompt_phrases): the same bytes
  in ~100 fewer tokens per decision, so training steps and decisions are faster. The tokenizer is
  saved inside every checkpoint (llm/).
"""
from __future__ import annotations

from typing import Iterable

import torch

from vila_nav.actions import CANONICAL_OUTPUTS


def tokenizer_corpus(instructions: Iterable[str], num_frames: int) -> list[str]:
    """Texts the from-scratch tokenizer learns its merges from (deterministic order)."""
    from vila_nav.model.prompt import navigation_question
    from vila_nav.model.tokenizer import default_corpus

    texts = list(default_corpus())
    texts += [navigation_question(ins, num_frames) for ins in sorted(set(instructions))]
    texts += list(CANONICAL_OUTPUTS) * 8  # the answers must be a few tokens each
    return texts


def initial_model(cfg, instructions: Iterable[str]):
    """The VilaModel to train (float32, CPU) for TrainConfig `cfg`."""
    if cfg.init_from:
        from vila_nav.model import load

        return load(cfg.init_from, device="cpu", dtype=torch.float32)
    from vila_nav.model.testing import build_model
    from vila_nav.model.tokenizer import build_tokenizer, prompt_phrases

    preset = cfg.model.build_preset()
    phrases = prompt_phrases(preset.num_video_frames, answers=CANONICAL_OUTPUTS) if cfg.model.phrase_tokens else ()
    tokenizer = build_tokenizer(tokenizer_corpus(instructions, preset.num_video_frames),
                                vocab_size=cfg.model.tokenizer_vocab_size, phrases=phrases)
    return build_model(preset, tokenizer=tokenizer, seed=cfg.seed, dtype=torch.float32)
