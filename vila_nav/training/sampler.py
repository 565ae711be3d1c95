"""Deterministic, resumable, rank-sliced batch order.

Epoch e is the list of sample indices with sample i repeated weight[i] times (the rebalancing
repeat counts; all 1 without weights), permuted by numpy's PCG64 seeded with (seed, e). It is
cut into global micro-batches of batch_size x world_size samples (an incomplete last one is
dropped) and process `rank` takes the rank-th slice of each. So the sample order is a pure
function of (seed, weights, batch sizes, world size, micro-step): resuming at optimizer step s
just starts at micro-step s x grad_accum, with no sampler state to save.

Numpy only (the torch Sampler wrapper is a thin adapter).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np


class BatchPlan:
    """Which samples make micro-batch m on a given rank (see the module docstring)."""

    def __init__(self, weights: Sequence[int], batch_size: int, world_size: int = 1, seed: int = 0):
        if batch_size < 1 or world_size < 1:
            raise ValueError(f"batch_size and world_size must be >= 1, got {batch_size}, {world_size}")
        w = np.asarray(list(weights), dtype=np.int64)
        if w.ndim != 1 or w.size == 0 or np.any(w < 1):
            raise ValueError("weights must be a non-empty list of integer repeat counts >= 1")
        self.expanded = np.repeat(np.arange(w.size, dtype=np.int64), w)  # sample i, weight[i] times
        self.batch_size, self.world_size, self.seed = int(batch_size), int(world_size), int(seed)
        self.global_batch = self.batch_size * self.world_size
        self.batches_per_epoch = self.expanded.size // self.global_batch
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"an epoch has {self.expanded.size} (weighted) samples, fewer than one global batch of "
                f"{self.global_batch} (batch_size {self.batch_size} x {self.world_size} processes); "
                "use a smaller batch_size or more data"
            )
        self._cache: tuple[int, np.ndarray] | None = None

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The permuted, weight-expanded sample indices of `epoch`."""
        if self._cache is None or self._cache[0] != epoch:
            perm = np.random.default_rng([self.seed, int(epoch)]).permutation(self.expanded.size)
            self._cache = (epoch, self.expanded[perm])
        return self._cache[1]

    def batch(self, micro_step: int, rank: int = 0) -> list[int]:
        """Sample indices of micro-batch `micro_step` (counted from the start of training) on `rank`."""
        if not 0 <= rank < self.world_size:
            raise ValueError(f"rank {rank} outside world size {self.world_size}")
        epoch, pos = divmod(int(micro_step), self.batches_per_epoch)
        start = pos * self.global_batch + rank * self.batch_size
        return [int(i) for i in self.epoch_order(epoch)[start : start + self.batch_size]]

    def epoch_of(self, micro_step: int) -> float:
        """Fractional epoch reached after `micro_step` micro-batches."""
        return micro_step / self.batches_per_epoch


class PlanSampler:
    """A torch batch_sampler over micro-steps [start, stop) of a BatchPlan for one rank."""

    def __init__(self, plan: BatchPlan, start: int, stop: int, rank: int = 0):
        self.plan, self.start, self.stop, self.rank = plan, int(start), int(stop), int(rank)

    def __iter__(self) -> Iterator[list[int]]:
        for m in range(self.start, self.stop):
            yield self.plan.batch(m, self.rank)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)
