"""Frame history: NaVILA's sampling rule, bounded thinning, recording policies."""
from __future__ import annotations

import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from vila_nav.frames import FrameHistory, FrameHistoryConfig, sample_indices

BLACK = None


def navila_reference(frames: list, k: int) -> list:
    """NaVILA's selection written directly over a list of frames (current last), numpy linspace."""
    if not frames:
        return [BLACK] * k
    if len(frames) < k:
        frames = [BLACK] * (k - len(frames)) + frames
    history = np.linspace(0, len(frames) - 1, k - 1, endpoint=False).astype(int)
    return [frames[i] for i in history] + [frames[-1]]


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 15, 16, 32])
def test_sample_indices_equals_navila_reference(k):
    for n in range(0, 201):
        got = sample_indices(n, k)
        assert got == navila_reference(list(range(n)), k), (n, k)
        assert len(got) == k
        if n:
            assert got[-1] == n - 1  # current last
        if n >= k:
            assert None not in got
            if k > 1:
                assert got[0] == 0  # the window spans the whole episode


def test_sample_indices_small_cases_by_hand():
    assert sample_indices(0) == [None] * 8
    assert sample_indices(1) == [None] * 7 + [0]
    assert sample_indices(3) == [None] * 5 + [0, 1, 2]
    assert sample_indices(8) == list(range(8))
    assert sample_indices(15) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert sample_indices(5, 1) == [4]


def test_sample_indices_keeps_numpy_float_rounding():
    # For (N, K) = (123, 15) numpy's float64 linspace truncates differently from the exact
    # rational floor(k * (N-1) / (K-1)); NaVILA (and the checkpoint) used numpy's.
    n, k = 123, 15
    exact = [(i * (n - 1)) // (k - 1) for i in range(k - 1)] + [n - 1]
    got = sample_indices(n, k)
    assert got == navila_reference(list(range(n)), k)
    assert got != exact


@pytest.mark.parametrize("n,k", [(-1, 8), (3, 0), (True, 8), (2.0, 8), (3, 8.0)])
def test_sample_indices_rejects_bad_input(n, k):
    with pytest.raises((TypeError, ValueError)):
        sample_indices(n, k)


# --- FrameHistory ---------------------------------------------------------------------------
def frame(i: int, hw: int = 4) -> np.ndarray:
    """A tiny frame that encodes logical index i (offset by 1 so black frames decode to None)."""
    f = np.zeros((hw, hw, 3), np.uint8)
    v = i + 1
    f[0, 0] = (v & 255, (v >> 8) & 255, (v >> 16) & 255)
    return f


def decode(f: np.ndarray) -> int | None:
    v = int(f[0, 0, 0]) | int(f[0, 0, 1]) << 8 | int(f[0, 0, 2]) << 16
    return None if v == 0 else v - 1


def test_history_equals_unbounded_rule_below_cap():
    h = FrameHistory(FrameHistoryConfig(num_frames=8, max_frames=64))
    for n in range(0, 65):
        if n:
            h.add(frame(n - 1), stamp=float(n - 1))
        assert len(h) == n and h.stride == 1 and h.stored_count == n
        out = h.sampled()
        shape = (4, 4, 3) if n else (224, 224, 3)  # blank_shape until the first frame
        assert len(out) == 8 and all(f.shape == shape and f.dtype == np.uint8 for f in out)
        assert [decode(f) for f in out] == sample_indices(n) == h.sampled_indices()
        # With a live current frame: N = n + 1, the current frame itself last.
        cur = frame(n)
        out = h.sampled(current=cur)
        assert out[-1] is cur
        assert [decode(f) for f in out] == sample_indices(n + 1) == h.sampled_indices(with_current=True)


def test_history_above_cap_keeps_first_and_current_and_stays_within_stride():
    cap, k = 32, 8
    h = FrameHistory(FrameHistoryConfig(num_frames=k, max_frames=cap))
    for i in range(5000):
        h.add(frame(i), stamp=0.1 * i, pose=(i, 0.0))
        n = len(h)
        s = h.stride
        assert h.stored_count <= cap
        assert s & (s - 1) == 0 and (s == 1 or s < 2 * n / (cap - 1))
        assert h.stored_indices[0] == 0 and h.stored_indices[-1] == n - 1
        if n <= cap:
            assert s == 1
        if n % 7 and n > 10:  # sample most steps (all would be slow only in principle)
            continue
        got = [decode(f) for f in h.sampled()]
        assert got == h.sampled_indices()
        exact = sample_indices(n, k)
        if n >= k:
            assert got[0] == 0 and got[-1] == n - 1
        for g, e in zip(got, exact):
            if e is None:
                assert g is None
            else:
                assert e - s < g <= e
        assert h.sampled_stamps() == [None if g is None else pytest.approx(0.1 * g) for g in got]
        assert h.sampled_poses() == [None if g is None else (g, 0.0) for g in got]
    assert h.stride > 1  # thinning actually happened


def test_history_memory_flat_over_100k_frames():
    cap = 64
    h = FrameHistory(FrameHistoryConfig(num_frames=8, max_frames=cap))
    f = np.zeros((4, 4, 3), np.uint8)
    counts, sizes = [], []
    tracemalloc.start()
    try:
        for i in range(100_000):
            h.add(f, stamp=float(i))
            if i == 9_999:
                mem_10k = tracemalloc.get_traced_memory()[0]
            if i % 10_000 == 9_999:
                counts.append(h.stored_count)
                sizes.append(h.stored_bytes)
        mem_100k = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(h) == 100_000
    assert max(counts) <= cap and max(sizes) <= cap * f.nbytes
    assert mem_100k - mem_10k < 20_000  # bytes: no growth with the episode length
    assert h.sampled_indices()[0] == 0 and h.sampled_indices()[-1] == 99_999


def test_history_copies_frames_and_returns_read_only():
    h = FrameHistory(FrameHistoryConfig())
    src = frame(0)
    h.add(src)
    src[:] = 255
    out = h.sampled()
    assert decode(out[-1]) == 0
    with pytest.raises(ValueError):
        out[-1][0, 0, 0] = 1


def test_history_padding_shapes_and_reset():
    cfg = FrameHistoryConfig(num_frames=4, blank_shape=(6, 5, 3))
    h = FrameHistory(cfg)
    out = h.sampled()
    assert len(out) == 4 and all(f.shape == (6, 5, 3) and not f.any() for f in out)
    cur = np.full((2, 3, 3), 7, np.uint8)
    out = h.sampled(current=cur)
    assert [f.shape for f in out] == [(2, 3, 3)] * 4 and out[-1] is cur and not out[0].any()
    h.add(frame(0, hw=4))
    with pytest.raises(ValueError, match="shape"):
        h.add(frame(1, hw=8))
    with pytest.raises(ValueError, match="shape"):
        h.sampled(current=frame(1, hw=8))
    h.reset()
    assert len(h) == 0 and h.stored_count == 0
    h.add(frame(0, hw=8))  # a new episode may use another size
    assert len(h) == 1


def test_history_follows_the_models_frame_count():
    h = FrameHistory(FrameHistoryConfig(num_frames=0, max_frames=16))
    for i in range(10):
        h.add(frame(i))
    with pytest.raises(ValueError, match="use_model_frames"):
        h.sampled()
    h.use_model_frames(4)  # the stored frames stay; K comes from the model
    assert h.cfg.num_frames == 4 and len(h) == 10 and h.sampled_indices() == sample_indices(10, 4)
    h.use_model_frames(8)  # another model later: resolved from the configured 0 again
    assert h.cfg.num_frames == 8 and h.sampled_indices() == sample_indices(10, 8)
    with pytest.raises(ValueError, match=r"max_frames \(16\) must be >= 2 \* num_frames \(18\)"):
        FrameHistoryConfig(num_frames=0, max_frames=16).for_model(9)
    fixed = FrameHistoryConfig(num_frames=8)
    assert fixed.for_model(8) is fixed
    with pytest.raises(ValueError, match="frames.num_frames=8 but the model takes 4 frames per query; "
                                         "set frames.num_frames=4, or 0 to follow the model"):
        fixed.for_model(4, "frames.num_frames")


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8),
     np.zeros((0, 4, 3), np.uint8), [[0]]],
)
def test_history_rejects_bad_frames(bad):
    h = FrameHistory()
    with pytest.raises((TypeError, ValueError)):
        h.add(bad)
    assert len(h) == 0


def test_history_rejects_bad_stamps_and_events():
    h = FrameHistory()
    with pytest.raises(ValueError):
        h.add(frame(0), stamp=float("nan"))
    with pytest.raises(ValueError, match="event"):
        h.offer(frame(0), 0.0, event="step")
    assert len(h) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_frames": -1},
        {"max_frames": 10},  # < 2 * num_frames
        {"policy": "sometimes"},
        {"interval_s": 0.0},
        {"interval_s": float("inf")},
        {"blank_shape": (4, 4)},
        {"blank_shape": (4, 4, 1)},
    ],
)
def test_config_validation(kwargs):
    with pytest.raises((TypeError, ValueError)):
        FrameHistoryConfig(**kwargs)


def test_config_composes_with_hydra(tmp_path):
    from vila_nav.config import compose

    overrides = ["policy=per_interval", "max_frames=64", "blank_shape=[10,12,3]"]
    cfg = compose(FrameHistoryConfig, "frames", overrides, config_dir=tmp_path)
    assert cfg.policy == "per_interval" and cfg.max_frames == 64 and cfg.blank_shape == (10, 12, 3)


# --- recording policies ---------------------------------------------------------------------
def offered(h: FrameHistory, events: list[tuple[float, str, bool]]) -> list[float]:
    recorded = []
    for i, (stamp, event, moving) in enumerate(events):
        if h.offer(frame(i), stamp, event=event, moving=moving):
            recorded.append(stamp)
    return recorded


@pytest.mark.parametrize("policy,event", [("per_primitive", "primitive"), ("per_action", "action")])
def test_policy_records_its_own_event(policy, event):
    h = FrameHistory(FrameHistoryConfig(policy=policy))
    other = [e for e in ("primitive", "action", "tick") if e != event]
    events = [(0.0, "tick", False)]  # the first frame of an episode is always recorded
    for i in range(1, 13):
        events.append((float(i), event if i % 3 == 0 else other[i % 2], True))
    assert offered(h, events) == [0.0, 3.0, 6.0, 9.0, 12.0]
    assert len(h) == 5
    assert h.sampled_stamps()[-5:] == [0.0, 3.0, 6.0, 9.0, 12.0]


def test_policy_per_interval_counts_motion_time_only():
    h = FrameHistory(FrameHistoryConfig(policy="per_interval", interval_s=0.5))
    events = []
    for i in range(41):  # 10 Hz ticks for 4 s; standing still from 2.0 s to 3.0 s
        t = i / 10
        events.append((t, "tick", not (2.0 < t <= 3.0)))
    events.insert(5, (0.45, "primitive", True))  # other events are ignored
    assert offered(h, events) == [0.0, 0.5, 1.0, 1.5, 2.0, 3.5, 4.0]


def test_policy_per_interval_long_run_rate_with_jittery_and_sparse_ticks():
    rng = np.random.default_rng(0)
    h = FrameHistory(FrameHistoryConfig(policy="per_interval", interval_s=0.5))
    t, n_rec = 0.0, 0
    while t < 60.0:  # 60 s of motion, camera ticks every 20..50 ms
        n_rec += h.offer(frame(0), t, event="tick")
        t += float(rng.uniform(0.02, 0.05))
    assert abs(n_rec - (1 + 60.0 / 0.5)) <= 1  # one per 0.5 s of motion (+ the first frame)
    # Sparse ticks (a stalled camera): one frame per tick, never a burst.
    h.reset()
    assert offered(h, [(2.0 * i, "tick", True) for i in range(5)]) == [0.0, 2.0, 4.0, 6.0, 8.0]
    # A stamp that goes backwards adds no motion.
    h.reset()
    events = [(10.0, "tick", True), (9.0, "tick", True), (9.4, "tick", True), (9.9, "tick", True)]
    assert offered(h, events) == [10.0, 9.9]


def test_pure_core_imports_no_torch_rclpy_or_hydra():
    code = (
        "import sys, vila_nav.frames; "
        "bad = [m for m in ('torch', 'rclpy', 'hydra') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
