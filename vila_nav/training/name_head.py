"""An object head tied to the LM's word embeddings (`aux.objects_head=names`, training only).

The plain object head (a linear layer on the current view's visual tokens) teaches the tower
which named objects a frame shows, but in a space of its own: nothing makes the visual token of
a stove resemble the LM's embedding of the word "stove". The stop needs exactly that comparison
inside the LM, between the goal the instruction names and what the view shows. This head scores
a name by how close the view's visual tokens come to the name's word embeddings:

    name n's embedding  e_n = mean of the LM input embeddings of " " + name's tokens     (H,)
    logit[f, n, r]      = scale[r] * max_t cos(visual[f, t], e_n) + bias[n, r]          (F, N, R)

so the loss pulls the visual tokens of a frame that shows a stove towards the embedding of
" stove" (and the embedding towards them: gradients reach both), CLIP-style. After it, an
attention head whose query comes from the goal word finds the matching visual token by a dot
product, which is what attention computes anyway. Names are embedded exactly as they appear
in the instructions ("... next to the green box": a leading space), from the model's own
tokenizer, so the tokens the head uses are the ones the LM reads.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

INIT_SCALE = 10.0  # cos in [-1, 1] -> logits in [-10, 10], CLIP's starting temperature range
# A frame shows ~2 of ~70 names: start every label near that prior (sigmoid(-3) = 0.047) so the
# first steps do not spend themselves pushing every token away from every name.
INIT_BIAS = -3.0


class NameGroundedHead(nn.Module):
    """forward(visual (F, T, H), embeddings: the LM's input nn.Embedding) -> logits (F, N, R)."""

    def __init__(self, name_token_ids: Sequence[Sequence[int]], num_ranges: int):
        super().__init__()
        if not name_token_ids or any(len(ids) == 0 for ids in name_token_ids):
            raise ValueError("every object name needs at least one token")
        width = max(len(ids) for ids in name_token_ids)
        ids = torch.zeros(len(name_token_ids), width, dtype=torch.long)  # (N, K), padded with 0
        mask = torch.zeros(len(name_token_ids), width)  # (N, K) 1 = a real token
        for n, toks in enumerate(name_token_ids):
            ids[n, : len(toks)] = torch.tensor(list(toks), dtype=torch.long)
            mask[n, : len(toks)] = 1.0
        # Rebuilt from the names and the tokenizer at every start: not part of the saved state.
        self.register_buffer("name_ids", ids, persistent=False)
        self.register_buffer("name_mask", mask, persistent=False)
        self.num_ranges = int(num_ranges)
        self.scale = nn.Parameter(torch.full((self.num_ranges,), INIT_SCALE))
        # (N * R,) flat, viewed as (N, R): a vector, so AdamW leaves it without weight decay.
        self.bias = nn.Parameter(torch.full((len(name_token_ids) * self.num_ranges,), INIT_BIAS))

    def name_embeddings(self, embeddings: nn.Embedding) -> torch.Tensor:
        """(N, H): each name's mean token embedding."""
        e = embeddings(self.name_ids)  # (N, K, H)
        mask = self.name_mask.to(e.dtype).unsqueeze(-1)  # (N, K, 1)
        return (e * mask).sum(dim=1) / mask.sum(dim=1)

    def forward(self, visual: torch.Tensor, embeddings: nn.Embedding) -> torch.Tensor:
        names = F.normalize(self.name_embeddings(embeddings).float(), dim=-1)  # (N, H)
        tokens = F.normalize(visual.float(), dim=-1)  # (F, T, H)
        best = (tokens @ names.T).amax(dim=1)  # (F, N): the closest visual token to each name
        return best.unsqueeze(-1) * self.scale + self.bias.view(len(names), self.num_ranges)


def name_token_ids(tokenizer, names: Sequence[str]) -> list[list[int]]:
    """Each name's tokens as the instructions spell it, after a space ("the stove" -> " stove")."""
    return [list(tokenizer(" " + name, add_special_tokens=False).input_ids) for name in names]
