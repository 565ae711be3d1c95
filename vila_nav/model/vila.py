"""The composed VILA model: vision tower + projector + causal LM, NaVILA's prompt, greedy decode.

One decision: K frames (oldest first, current last) -> per-frame projected tokens (from the
feature cache when the frame was seen before) -> the prompt's token ids with one image slot per
frame -> text embeddings with each slot replaced by its frame's T visual tokens -> one prefill
through the LM (inputs_embeds) -> greedy decode with the KV cache until a stop token or
max_new_tokens.

Every frame goes through the tower and projector on its own (batch of one): a frame's tokens are
then a pure function of its pixels, so decisions with and without the cache are bit-identical
(batching frames can change float rounding in the matmuls).
"""
from __future__ import annotations

import copy
import functools
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from vila_nav.model.cache import FeatureCache, frame_key
from vila_nav.model.kv_cache import cache_kwargs, output_cache
from vila_nav.model.config import VilaConfig
from vila_nav.model.preprocess import ImageProcessor
from vila_nav.model.projector import Projector
from vila_nav.model.prompt import (
    IMAGE_TOKEN_INDEX,
    LLAMA_3,
    ChatTemplate,
    decision_prompt_ids,
    stop_token_ids,
)
from vila_nav.model.vision import VisionTower


def _float_dtype(module: nn.Module) -> torch.dtype:
    """Compute dtype of a module: its first floating-point parameter's (quantized ones skipped)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    raise ValueError(f"{type(module).__name__} has no floating-point parameters")


class VilaModel(nn.Module):
    """NaVILA-compatible VILA model; build it with `vila_nav.model.load`.

    Public: generate(frames, instruction) -> str, reset(), num_frames, last_stats,
    save_pretrained(path), logits(frames, instruction), encode_frame(frame).
    """

    def __init__(
        self,
        config: VilaConfig,
        vision: VisionTower,
        projector: Projector,
        llm: nn.Module,
        tokenizer,
        image_processor: ImageProcessor,
        *,
        template: ChatTemplate = LLAMA_3,
        cache_size: int = 0,
        max_new_tokens: int = 32,
    ):
        super().__init__()
        self.config = config
        self.vision = vision
        self.projector = projector
        self.llm = llm
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.template = template
        self.max_new_tokens = int(max_new_tokens)
        self.stop_ids = stop_token_ids(template, tokenizer)
        self.cache = FeatureCache(cache_size or 4 * self.num_frames)
        self.use_feature_cache = True  # False = NaVILA's behaviour: encode every frame every time
        # The prompt's text before the first image slot (the chat template's system prompt and the
        # question's opening, ~110 tokens with NaVILA's) is the same at every decision: its keys and
        # values are computed once per episode and copied into each decision's KV cache.
        self.use_prefix_cache = True
        self._prefix: tuple[tuple, object] | None = None  # ((ids, device, dtype), transformers Cache)
        self.quantization = "none"  # set by quantize.quantize_model
        self.quantization_backend = ""
        self.last_stats: dict = {}
        self._prompt_ids = functools.lru_cache(maxsize=64)(self._compute_prompt_ids)

    # -- properties -------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        """Frames per decision (num_video_frames: K - 1 history + current)."""
        return int(self.config.num_video_frames)

    @property
    def device(self) -> torch.device:
        # The LM's first parameter (norms stay float when quantization replaced the embeddings'
        # and linears' weights by packed int8 storage, which is not a parameter).
        for p in self.llm.parameters():
            return p.device
        raise ValueError("the language model has no parameters")

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the LM (its float parameters'; the dtype of visual tokens)."""
        return _float_dtype(self.llm)

    def reset(self) -> None:
        """Start of an episode: forget cached frame features and the prompt-prefix keys/values
        (so they are recomputed after the weights change: quantization, a training step)."""
        self.cache.clear()
        self._prefix = None

    # -- vision -----------------------------------------------------------------------------

    @torch.inference_mode()
    def encode_frame(self, frame: np.ndarray) -> torch.Tensor:
        """One frame (H x W x 3 uint8) -> its projected visual tokens (T, H_llm), no cache."""
        pixels = torch.from_numpy(self.image_processor(frame))[None]  # (1, 3, S, S) float32
        pixels = pixels.to(device=self.device, dtype=_float_dtype(self.vision))
        features = self.vision(pixels)  # (1, N, C)
        tokens = self.projector(features.to(_float_dtype(self.projector)))  # (1, T, H)
        return tokens[0].to(self.dtype)

    def frame_tokens(self, frames: Sequence[np.ndarray]) -> tuple[list[torch.Tensor], int]:
        """Projected tokens of each frame (cache-aware) and the number of tower calls made."""
        out: list[torch.Tensor] = []
        calls = 0
        for frame in frames:
            if not self.use_feature_cache:
                out.append(self.encode_frame(frame))
                calls += 1
                continue
            key = frame_key(frame)
            tokens = self.cache.get(key)
            if tokens is None:
                tokens = self.encode_frame(frame)
                calls += 1
                self.cache.put(key, tokens)
            out.append(tokens)
        return out, calls

    # -- text -------------------------------------------------------------------------------
    def _compute_prompt_ids(self, instruction: str) -> tuple[int, ...]:
        return tuple(decision_prompt_ids(instruction, self.num_frames, self.template, self.tokenizer))

    def prompt_ids(self, instruction: str) -> list[int]:
        """Token ids of the decision prompt, IMAGE_TOKEN_INDEX (-200) at each image slot."""
        return list(self._prompt_ids(instruction))

    def embed(self, ids: Sequence[int], visual: Sequence[torch.Tensor]) -> torch.Tensor:
        """Text embeddings with the k-th image slot replaced by visual[k] -> (1, L, H)."""
        slots = [i for i, t in enumerate(ids) if t == IMAGE_TOKEN_INDEX]
        if len(slots) != len(visual):
            raise ValueError(f"prompt has {len(slots)} image slots but {len(visual)} frames were given")
        ids_t = torch.tensor(ids, dtype=torch.long, device=self.device)
        text = self.llm.get_input_embeddings()(ids_t.clamp(min=0))  # (L_text, H); slots masked below
        pieces, start = [], 0
        for slot, vis in zip(slots, visual):
            pieces += [text[start:slot], vis]
            start = slot + 1
        pieces.append(text[start:])
        return torch.cat(pieces, dim=0)[None]

    def _check_frames(self, frames: Sequence[np.ndarray]) -> None:
        if len(frames) != self.num_frames:
            raise ValueError(
                f"this model takes exactly {self.num_frames} frames per decision (oldest first, current last; "
                f"pad with black frames, see vila_nav.frames), got {len(frames)}"
            )
        for k, f in enumerate(frames):
            a = np.asarray(f)
            if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
                raise ValueError(f"frame {k}: expected an H x W x 3 uint8 RGB array, got shape {a.shape} dtype {a.dtype}")

    def _sync(self) -> None:
        # CUDA runs asynchronously: wait so the per-stage timings in last_stats are real.
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # -- decisions --------------------------------------------------------------------------
    @torch.inference_mode()
    def inputs_embeds(self, frames: Sequence[np.ndarray], instruction: str) -> torch.Tensor:
        """The LM input of one decision: (1, L, H) embeddings (cache-aware)."""
        self._check_frames(frames)
        visual, _ = self.frame_tokens(frames)
        return self.embed(self.prompt_ids(instruction), visual)

    @torch.inference_mode()
    def logits(self, frames: Sequence[np.ndarray], instruction: str) -> torch.Tensor:
        """Next-token logits (vocab,) after the prompt: the composed forward pass."""
        out = self.llm(inputs_embeds=self.inputs_embeds(frames, instruction), use_cache=False, logits_to_keep=1)
        return out.logits[0, -1]

    @torch.inference_mode()
    def generate_ids(self, frames: Sequence[np.ndarray], instruction: str) -> list[int]:
        """Greedy decode; new token ids without the stop token. Fills last_stats."""
        t0 = time.perf_counter()
        self._check_frames(frames)
        hits0 = self.cache.hits
        visual, calls = self.frame_tokens(frames)
        ids = self.prompt_ids(instruction)
        embeds = self.embed(ids, visual)
        self._sync()
        t1 = time.perf_counter()
        prefix = self._prefix_len(ids) if self.use_prefix_cache else 0
        if prefix:
            past = self._prefix_past(ids[:prefix], embeds[:, :prefix])
            out = self.llm(inputs_embeds=embeds[:, prefix:], **cache_kwargs(self.llm, past), use_cache=True,
                           logits_to_keep=1)
        else:
            out = self.llm(inputs_embeds=embeds, use_cache=True, logits_to_keep=1)
        self._sync()
        t2 = time.perf_counter()
        past, logits = output_cache(out), out.logits[:, -1]
        new: list[int] = []
        stopped = False
        for step in range(self.max_new_tokens):
            token = int(logits.argmax(dim=-1))
            if token in self.stop_ids:
                stopped = True
                break
            new.append(token)
            if step == self.max_new_tokens - 1:
                break
            nxt = torch.tensor([[token]], dtype=torch.long, device=self.device)
            out = self.llm(input_ids=nxt, **cache_kwargs(self.llm, past), use_cache=True)
            past, logits = output_cache(out), out.logits[:, -1]
        t3 = time.perf_counter()
        self.last_stats = {
            "vision_calls": calls,  # frames run through the tower in this decision
            "cache_hits": self.cache.hits - hits0,
            "latency_s": t3 - t0,
            "vision_s": t1 - t0,
            "prefill_s": t2 - t1,
            "decode_s": t3 - t2,
            "prompt_tokens": int(embeds.shape[1]),  # text + visual
            "prefix_tokens": prefix,  # of those, taken from the prompt-prefix KV cache
            "visual_tokens": int(sum(v.shape[0] for v in visual)),
            "new_tokens": len(new),
            "stopped": stopped,
        }
        return new

    @staticmethod
    def _prefix_len(ids: Sequence[int]) -> int:
        """Tokens before the first image slot (0 if there is none: nothing is shared then)."""
        for i, t in enumerate(ids):
            if t == IMAGE_TOKEN_INDEX:
                return i
        return 0

    def _prefix_past(self, prefix_ids: Sequence[int], prefix_embeds: torch.Tensor):
        """A fresh KV cache holding the prompt prefix (computed on first use, then copied)."""
        key = (tuple(prefix_ids), self.device, self.dtype)
        if self._prefix is None or self._prefix[0] != key:
            out = self.llm(inputs_embeds=prefix_embeds, use_cache=True, logits_to_keep=1)
            self._prefix = (key, output_cache(out))
        return copy.deepcopy(self._prefix[1])  # decoding appends to it; (1, kv_heads, P, d) per layer, small

    def generate(self, frames: Sequence[np.ndarray], instruction: str) -> str:
        """Frames (K x H x W x 3 uint8, oldest first, current last) + instruction -> model text."""
        new = self.generate_ids(frames, instruction)
        return self.tokenizer.decode(new, skip_special_tokens=True).strip()

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the NaVILA layout (see vila_nav.model.checkpoint.save)."""
        from vila_nav.model.checkpoint import save

        return save(self, path)
