"""Label rebalancing by repetition, so SFT does not collapse to "move forward 75 cm".

NaVILA's R2R labels are dominated by "move forward 75 cm" (about 30 %) and it duplicated rare
actions. The rule here, deterministic for a seed:

    n_max   = count of the most frequent label
    target  = ceil(target_ratio * n_max)
    for a label with n samples:
        n >= target  -> every sample weight 1 (majority labels are never dropped)
        n <  target  -> total = min(target, n * max_repeat) copies; every sample gets
                        total // n, and total % n of them (chosen by a seeded permutation)
                        get one more.

So after rebalancing a rare label has exactly min(target, n * max_repeat) copies, a frequent one
keeps its n, and the weights are integers >= 1: the trainer repeats each sample `weight` times
per epoch (exact histogram, no sampling noise). target_ratio 0 turns it off (all weights 1).

Pure Python + numpy.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Hashable, Sequence

import numpy as np


def rebalance_weights(labels: Sequence[Hashable], target_ratio: float, max_repeat: int, seed: int = 0) -> list[int]:
    """Integer repeat count per sample (same order as `labels`), by the rule in the module doc."""
    if not 0.0 <= float(target_ratio) <= 1.0:
        raise ValueError(f"target_ratio must be in [0, 1], got {target_ratio}")
    if int(max_repeat) < 1:
        raise ValueError(f"max_repeat must be >= 1, got {max_repeat}")
    weights = [1] * len(labels)
    counts = Counter(labels)
    if not counts or target_ratio == 0:
        return weights
    target = math.ceil(float(target_ratio) * max(counts.values()))
    by_label: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    # Labels in a fixed order (sorted by their text) so the seeded draws do not depend on dict order.
    for k, label in enumerate(sorted(by_label, key=repr)):
        idx = by_label[label]
        n = len(idx)
        if n >= target:
            continue
        total = min(target, n * int(max_repeat))
        base, extra = divmod(total, n)
        order = np.random.default_rng([int(seed), k, n]).permutation(n)
        for rank, j in enumerate(order):
            weights[idx[int(j)]] = base + (1 if rank < extra else 0)
    return weights


def histogram(labels: Sequence[Hashable], weights: Sequence[int] | None = None) -> dict:
    """label -> count (weighted by repeat counts when given), sorted by label."""
    out: Counter = Counter()
    for i, label in enumerate(labels):
        out[label] += 1 if weights is None else int(weights[i])
    return dict(sorted(out.items(), key=lambda kv: repr(kv[0])))
