"""Multimodal projector: vision features (B, N, C) -> LLM token embeddings (B, T, H).

State-dict keys match VILA's MultimodalProjector (`mm_projector/model.safetensors`):
- "mlp_downsample": layers = Sequential(DownSampleBlock, LayerNorm(4C), Linear(4C, H), GELU,
  Linear(H, H)) -> keys layers.1.*, layers.2.*, layers.4.* (the block has no parameters).
  T = ceil(g / 2)^2 for a g x g patch grid (27 x 27 -> 14 x 14 = 196).
- "linear": layers = Linear(C, H) -> keys layers.weight, layers.bias. T = N.
- "mlp2x_gelu": layers = Sequential(Linear(C, H), GELU, Linear(H, H)) -> keys layers.0.*,
  layers.2.*. T = N.
"""
from __future__ import annotations

import math

import torch
from torch import nn

PROJECTOR_TYPES = ("mlp_downsample", "linear", "mlp2x_gelu")


class DownSampleBlock(nn.Module):
    """Parameter-free 2x2 space-to-depth with VILA's exact token order.

    (B, g*g, C) -> grid (B, g, g, C) -> zero-pad a bottom row / right column if g is odd -> (B, G,
    G, C) with G even -> view (B, G, G/2, 2C) -> permute(0, 2, 1, 3) -> view (B, G/2, G/2, 4C)
    -> (B, (G/2)^2, 4C). Output token t = j * G/2 + i for row block i, column block j (column-major
    block order), and its 4C vector concatenates patches (2i, 2j), (2i, 2j+1), (2i+1, 2j),
    (2i+1, 2j+1). The released weights only work with exactly this order.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        g = math.isqrt(n)
        if g * g != n:
            raise ValueError(f"mlp_downsample needs a square patch grid; got {n} tokens per frame")
        x = x.reshape(b, g, g, c)  # (B, rows, cols, C); reshape = view semantics, copies if strided
        if g % 2 == 1:  # pad bottom row, then right column, with zeros
            x = torch.cat([x, x.new_zeros(b, 1, g, c)], dim=1)
            x = torch.cat([x, x.new_zeros(b, g + 1, 1, c)], dim=2)
            g += 1
        x = x.reshape(b, g, g // 2, 2 * c)  # pairs of adjacent columns
        x = x.permute(0, 2, 1, 3).contiguous()  # (B, col block, row, 2C)
        x = x.reshape(b, g // 2, g // 2, 4 * c)  # pairs of adjacent rows -> (B, j, i, 4C)
        return x.reshape(b, (g // 2) ** 2, 4 * c)


class Projector(nn.Module):
    """VILA's projector of the given type; forward (B, N, C) -> (B, T, H)."""

    def __init__(self, projector_type: str, mm_hidden_size: int, hidden_size: int):
        super().__init__()
        c, h = int(mm_hidden_size), int(hidden_size)
        if projector_type == "mlp_downsample":
            self.layers = nn.Sequential(
                DownSampleBlock(), nn.LayerNorm(4 * c), nn.Linear(4 * c, h), nn.GELU(), nn.Linear(h, h)
            )
        elif projector_type == "linear":
            self.layers = nn.Linear(c, h)
        elif projector_type == "mlp2x_gelu":
            self.layers = nn.Sequential(nn.Linear(c, h), nn.GELU(), nn.Linear(h, h))
        else:
            raise ValueError(f"unsupported mm_projector_type '{projector_type}'; use one of {PROJECTOR_TYPES}")
        self.projector_type = projector_type
        self.mm_hidden_size = c
        self.hidden_size = h

    def num_tokens(self, n_in: int) -> int:
        """Visual tokens per frame out of the projector for n_in tokens in."""
        if self.projector_type != "mlp_downsample":
            return n_in
        g = math.isqrt(n_in)
        return ((g + 1) // 2) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
