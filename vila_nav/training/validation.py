"""Validation on held-out decisions (an SFT dataset built from val_seen episodes).

Two measures:
- teacher-forced, on the first `max_samples` samples: mean loss per supervised token and the
  exact-match rate (every answer token is the argmax, i.e. greedy decoding gives the answer
  verbatim), overall and per answer label;
- decoded, on the first `decode_samples` of them: `VilaModel.generate` (greedy, the inference
  path with the feature cache), parsed with vila_nav.actions.parse_action and compared with the
  parsed label ("action accuracy": the same action, whatever the wording), plus how many
  outputs did not parse.
With the object or goal-match loss on (aux.objects_weight, aux.match_weight) and validation data
that records visible_objects, the teacher-forced pass also reports their heads' losses
(val_objects_loss per frame, val_match_loss per labelled decision, and val_match_swapped_loss
with aux.match_swapped; the training loss's units):
whether what the heads learnt holds on held-out decisions.
Samples are taken in file order (no weights, no shuffling), so numbers are comparable between
runs on the same set.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

import torch

from vila_nav.actions import parse_action


@torch.no_grad()
def validate(objective: torch.nn.Module, dataset, collator, *, batch_size: int, max_samples: int,
             decode_samples: int, autocast=contextlib.nullcontext) -> dict[str, Any]:
    """Run both measures; returns a JSON-able dict (val_loss, val_exact, val_action_acc, ...)."""
    model = objective.model
    was_training = objective.training
    objective.eval()
    n = min(len(dataset), int(max_samples))
    loss_sum, tokens, exact = 0.0, 0, 0
    head_sums = {"objects": [0.0, 0], "match": [0.0, 0], "match_swapped": [0.0, 0]}  # -> [summed loss, rows scored]
    per_label: dict[str, list[int]] = {}
    try:
        for start in range(0, n, batch_size):
            items = [dataset[i] for i in range(start, min(n, start + batch_size))]
            batch = collator(items)
            with autocast():
                out = objective(batch)
            t = int(out["tokens"])
            loss_sum += float(out.get("lm_loss", out["loss"])) * t  # the LM's loss (no auxiliary term)
            tokens += t
            for name, acc in head_sums.items():  # a batch mean over the rows the head scored
                rows = int(out.get(f"{name}_rows", 0))
                if rows:
                    acc[0] += float(out[f"{name}_loss"]) * rows
                    acc[1] += rows
            for answer, ok in zip(batch["answers"], out["exact"].tolist()):
                per_label.setdefault(answer, [0, 0])
                per_label[answer][0] += int(ok)
                per_label[answer][1] += 1
                exact += int(ok)
        decoded = Counter()
        k = min(n, int(decode_samples))
        for i in range(k):
            item = dataset[i]
            model.reset()
            with autocast():
                text = model.generate(item["frames"], item["instruction"])
            got, want = parse_action(text), parse_action(item["answer"])
            decoded["unparseable"] += got is None
            decoded["correct"] += got is not None and got == want
        model.reset()
    finally:
        objective.train(was_training)
    result: dict[str, Any] = {
        "val_samples": n,
        "val_loss": loss_sum / max(tokens, 1),
        "val_exact": exact / max(n, 1),
        "val_exact_per_label": {a: c[0] / c[1] for a, c in sorted(per_label.items())},
    }
    for name, (total, rows) in head_sums.items():
        if rows:
            result[f"val_{name}_loss"] = total / rows
    if k:
        result.update({"val_decoded": k, "val_action_acc": decoded["correct"] / k,
                       "val_unparseable": decoded["unparseable"] / k})
    return result
