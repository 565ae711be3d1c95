"""Which parts of a VilaModel train: vision tower, projector, LLM (TrainableConfig flags).

Parameters the forward pass never uses are always frozen, whatever the flags: VILA reads the
vision tower's hidden_states[mm_vision_select_layer] (the penultimate layer), so the tower's
later layers, its post-layernorm and pooling head get no gradient; leaving them trainable would
only make DDP wait for gradients that never come and AdamW decay weights for nothing.
"""
from __future__ import annotations

from torch import nn

PARTS = ("vision_tower", "projector", "llm")


def _vision_used(model: nn.Module) -> set[int]:
    """ids of the vision tower parameters that the features depend on (found by one backward
    pass of a black frame, so it holds for any tower and select layer)."""
    import torch

    tower = model.vision
    params = [p for p in tower.parameters() if p.is_floating_point()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
        p.grad = None
    dtype = params[0].dtype
    size = int(tower.image_size)
    try:
        with torch.enable_grad():
            tower(torch.zeros((1, 3, size, size), dtype=dtype, device=params[0].device)).float().sum().backward()
        return {id(p) for p in params if p.grad is not None}
    finally:
        for p, flag in zip(params, flags):
            p.grad = None
            p.requires_grad_(flag)


def configure_trainable(model: nn.Module, cfg) -> dict[str, dict[str, int]]:
    """Set requires_grad per part from `cfg` (vision_tower / projector / llm bools).

    Returns {part: {"trainable": n, "frozen": n}} parameter counts (elements) for the log.
    """
    used = _vision_used(model)
    modules = {"vision_tower": model.vision, "projector": model.projector, "llm": model.llm}
    report = {}
    for part in PARTS:
        flag = bool(getattr(cfg, part))
        counts = {"trainable": 0, "frozen": 0}
        for p in modules[part].parameters():
            train = flag and (part != "vision_tower" or id(p) in used)
            p.requires_grad_(train)
            counts["trainable" if train else "frozen"] += p.numel()
        report[part] = counts
    return report


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) of every trainable parameter, in a stable order (module registration)."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]
