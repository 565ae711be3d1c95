"""Vision tower: a transformers SiglipVisionModel and NaVILA's feature selection.

Features are `hidden_states[mm_vision_select_layer]` of the encoder, where hidden_states[0] is the
patch embedding output and hidden_states[k] the output of encoder layer k (L + 1 entries; -2 = the
penultimate layer), with no post-layernorm and no pooling head. We run only the layers that
selection needs (NaVILA runs all L and drops the last: same numbers, one layer less work).

Feature semantics (`mm_vision_select_feature`):
- "cls_patch": keep every token (SigLIP has no CLS token: all (S/P)^2 patch tokens, 729 at 384/14).
- "patch": drop the first token if the tower has a CLS token. SigLIP has none, so this also
  keeps every token. (VILA's own code drops the first token unconditionally, which for SigLIP
  discards a real patch and breaks mlp_downsample's square grid; no released model uses it.)
"""
from __future__ import annotations

import torch
from torch import nn


class VisionTower(nn.Module):
    """SiglipVisionModel -> selected hidden states.

    forward: pixel_values (B, 3, S, S) float -> features (B, N, C), N = (S / patch)^2, C = hidden.
    """

    has_cls_token = False  # SigLIP: patch tokens only

    def __init__(self, model: nn.Module, select_layer: int = -2, select_feature: str = "cls_patch"):
        super().__init__()
        self.model = model  # SiglipVisionModel (weights and saving live there)
        cfg = model.config
        n_layers = int(cfg.num_hidden_layers)
        # hidden_states has n_layers + 1 entries; resolve a negative index against that.
        index = select_layer if select_layer >= 0 else n_layers + 1 + select_layer
        if not 0 <= index <= n_layers:
            raise ValueError(
                f"mm_vision_select_layer {select_layer} out of range for a tower with {n_layers} layers "
                f"(valid: {-(n_layers + 1)}..{n_layers})"
            )
        if select_feature not in ("cls_patch", "patch"):
            raise ValueError(f"mm_vision_select_feature must be 'cls_patch' or 'patch', got '{select_feature}'")
        self.select_layer = int(select_layer)
        self.select_feature = select_feature
        self.layers_used = index  # encoder layers actually run

    @property
    def config(self):
        return self.model.config

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def image_size(self) -> int:
        return int(self.model.config.image_size)

    @property
    def num_tokens(self) -> int:
        """Tokens per frame after feature selection."""
        n = (self.image_size // int(self.model.config.patch_size)) ** 2
        if self.select_feature == "patch" and self.has_cls_token:
            n -= 1
        return n

    def _parts(self):
        # transformers 5 flattens SiglipVisionModel (embeddings/encoder at the top); 4.x nests them
        # under .vision_model.
        vm = getattr(self.model, "vision_model", self.model)
        return vm.embeddings, vm.encoder.layers

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        embeddings, layers = self._parts()
        h = embeddings(pixel_values)  # (B, N, C)
        for layer in layers[: self.layers_used]:
            out = layer(h, None)
            h = out[0] if isinstance(out, tuple) else out  # 4.x layers return a tuple
        if self.select_feature == "patch" and self.has_cls_token:
            h = h[:, 1:]
        return h
