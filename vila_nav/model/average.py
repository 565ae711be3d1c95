"""Checkpoint averaging: the uniform mean of the weights of several checkpoints of one run.

    vila-nav average-checkpoints OUT CKPT CKPT [CKPT ...]

Neighbouring checkpoints of one training run lie in the same basin, and their mean is usually a
better and steadier model than any one of them (stochastic weight averaging, Izmailov et al.
2018; "model soups", Wortsman et al. 2022). Here it damps the closed-loop noise between
neighbouring checkpoints (see docs/experiments.md, "Checkpoint averaging").

Every input is loaded with the strict loader (`vila_nav.model.load`); they must share the
architecture (root config.json, the LM's and the tower's configs) and the tokenizer, else a clear
error names the first pair that differs. The mean is taken in float64 and stored in the first
checkpoint's dtype; the result is a NaVILA-layout checkpoint written with `vila_nav.model.save`
(the first input's tokenizer and image-processor files). Memory: two models at a time.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from vila_nav.model.checkpoint import CheckpointError, load, save


def _signature(model) -> dict:
    """What must match for weights to be averaged: architecture configs and the vocabulary."""
    llm = model.llm.config.to_dict()
    tower = model.vision.model.config.to_dict()
    for cfg in (llm, tower):  # bookkeeping fields that do not change what the weights mean
        for key in ("dtype", "torch_dtype", "_name_or_path", "transformers_version"):
            cfg.pop(key, None)
    return {"config": model.config.to_dict(), "llm": llm, "vision_tower": tower,
            "vocab": model.tokenizer.get_vocab()}


def average_checkpoints(paths: list[str | Path], out: str | Path) -> Path:
    """Write the uniform weight average of `paths` (at least 2) to `out`; returns out."""
    if len(paths) < 2:
        raise ValueError(f"averaging needs at least 2 checkpoints, got {len(paths)}")
    base = load(paths[0])
    signature = _signature(base)
    state = base.state_dict()
    # float64 running sum of every floating tensor; integer buffers (none today) must agree.
    total = {k: v.double().clone() for k, v in state.items() if v.is_floating_point()}
    for path in paths[1:]:
        other = load(path)
        theirs = _signature(other)
        for part in signature:
            if theirs[part] != signature[part]:
                raise CheckpointError(f"{path}: its {part} differs from {paths[0]}'s: only checkpoints of one "
                                      "architecture and tokenizer can be averaged")
        other_state = other.state_dict()
        for key, value in other_state.items():
            if key in total:
                total[key] += value.double()
            elif not torch.equal(value, state[key]):
                raise CheckpointError(f"{path}: non-float tensor '{key}' differs from {paths[0]}'s")
        del other, other_state
    mean = {k: (v / len(paths)).to(state[k].dtype) for k, v in total.items()}
    base.load_state_dict(mean, strict=False)  # only floating tensors: the rest are equal by the check above
    return save(base, out)


def main(argv: list[str] | None = None) -> int:
    """`vila-nav average-checkpoints OUT CKPT CKPT [...]`."""
    ap = argparse.ArgumentParser(prog="vila-nav average-checkpoints", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="directory to write the averaged NaVILA-layout checkpoint to (must not exist)")
    ap.add_argument("checkpoints", nargs="+", help="checkpoint directories of one architecture (at least 2)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        ap.error(f"{out} exists: choose a new directory (nothing is overwritten)")
    try:
        root = average_checkpoints(args.checkpoints, out)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"vila-nav average-checkpoints: {exc}", file=sys.stderr)
        return 1
    print(f"averaged {len(args.checkpoints)} checkpoints into {root}")
    return 0
