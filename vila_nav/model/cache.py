"""Per-frame feature cache: a frame's projected visual tokens, computed once per episode.

NaVILA re-encodes all 8 frames at every decision although 7 of them were seen before. Frames are
keyed by content (blake2b of the bytes plus shape and dtype), so a frame that reappears in the
sampled history, and the all-black padding frame, hit the cache; a frame that changes by one
byte misses. The cache is LRU-bounded; `clear()` at every episode start frees it.
"""
from __future__ import annotations

import collections
import hashlib

import numpy as np


def frame_key(frame: np.ndarray) -> bytes:
    """Content key of a frame: blake2b-128 over shape, dtype and bytes."""
    frame = np.ascontiguousarray(frame)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((frame.shape, frame.dtype.str)).encode())
    h.update(memoryview(frame).cast("B"))
    return h.digest()


class FeatureCache:
    """LRU map frame key -> projected tokens (T, H) tensor, with hit/miss counters."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"feature cache capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._store: collections.OrderedDict[bytes, object] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes):
        """The cached value for key (marks it most recent), or None."""
        val = self._store.get(key)
        if val is None:
            self.misses += 1
            return None
        self._store.move_to_end(key)
        self.hits += 1
        return val

    def put(self, key: bytes, value) -> None:
        """Store value; evicts the least recently used entries beyond capacity."""
        self._store[key] = value
        self._store.move_to_end(key)
        while len(self._store) > self.capacity:
            self._store.popitem(last=False)

    def clear(self) -> None:
        """Forget every frame and reset the counters (call at every episode start)."""
        self._store.clear()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, key: bytes) -> bool:
        return key in self._store
