"""Frame history: which camera frames the model sees, and a memory bound for long robot runs.

Sampling (NaVILA's rule, reproduced exactly)
--------------------------------------------
Let N be the number of frames in the episode so far, the current one included, and K the model's
number of frames (8 = 7 history + current).

- N == 0: K black frames.
- N < K: the episode is left-padded with K - N black frames, so the padded list has N' = K entries.
  Otherwise N' = N and nothing is padded.
- History slot k (k = 0..K-2) takes padded[int(linspace(0, N'-1, K-1, endpoint=False)[k])], i.e.
  floor(k * (N'-1) / (K-1)) *as numpy computes it in float64*: for some (N, K), e.g. (123, 15),
  numpy's rounding differs from the exact rational floor, and the checkpoint was trained on numpy's.
- The current frame (index N-1) is appended last. Slot 0 is always the episode's first frame (or
  black padding), so the window always spans the whole episode.

`sample_indices(n, k)` returns these positions as episode frame indices, None for black frames.
`FrameHistoryConfig(num_frames=0)` follows the model: K is set from the loaded model's
num_video_frames (`FrameHistory.use_model_frames(k)`), so one config serves NaVILA's 8-frame
checkpoint and a 4-frame one alike.

Thinning (bounded memory)
-------------------------
A robot may run one "episode" for hours, so `FrameHistory` stores at most `max_frames` frames.
Every frame has a logical index 0, 1, 2, ... (its position in the episode; `len(history)` counts
logical frames, not stored ones). The store keeps

    every logical index on the lattice 0, s, 2s, 3s, ...   (s = stride, a power of two)
    plus the newest frame (index N-1), whatever it is.

It starts with s = 1 (everything is kept). When an append makes the store exceed `max_frames`,
s doubles and the frames that are not on the new lattice are dropped (the newest always stays),
repeating until the store fits. Index 0 is on every lattice, so the episode's first frame is never
dropped. `sampled()` maps each logical index t chosen by `sample_indices(N)` to the stored frame
with the largest logical index <= t, i.e. the lattice point floor(t / s) * s, or the newest frame.
Consequences:

- While N <= max_frames, s == 1 and the result equals the unbounded rule exactly.
- Above the cap, slot 0 is still frame 0, the current frame is exact, and every other sampled frame
  is at most s - 1 frames older than the exact one, with s < 2 * N / (max_frames - 1).
- Memory is at most max_frames frames (plus the `current` frame a caller passes in), and the cost
  of an append is amortised O(1). `max_frames >= 2 * num_frames` is required so the K - 1 history
  slots (about N / (K-1) frames apart) still land on distinct stored frames.

Recording policy (when does a frame enter the history?)
-------------------------------------------------------
`add()` always appends. `offer(frame, stamp, event=...)` appends when the configured policy says so:

- "per_primitive": on "primitive" events, one per executed simulator primitive (25 cm / 15 deg),
  NaVILA's Habitat behaviour.
- "per_action": on "action" events, one per executed mid-level action on the robot.
- "per_interval": on "tick" events (e.g. every camera frame), once per `interval_s` of motion:
  the time between consecutive ticks counts as motion when the tick says `moving=True`; when the
  accumulated motion reaches `interval_s` the frame is recorded and the excess is carried over
  (modulo interval_s) so the long-run rate is one frame per interval_s of motion, as NaVILA's robot
  (0.5 s = 25 cm at 0.5 m/s = 15 deg at 30 deg/s). Ticks whose stamp does not advance add nothing.

In every policy the first frame offered in an episode is recorded (the start view), and other
events are ignored (offer returns False).

Pure numpy + stdlib: no torch, no rclpy.
"""
from __future__ import annotations

import bisect
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

POLICIES = ("per_primitive", "per_action", "per_interval")
EVENTS = ("primitive", "action", "tick")
# Which event makes each policy record a frame.
_POLICY_EVENT = {"per_primitive": "primitive", "per_action": "action", "per_interval": "tick"}
# Float slack when comparing accumulated motion time with interval_s (ticks of 0.1 s summing to
# 0.49999999999999994 must still count as 0.5 s).
_TIME_EPS_S = 1e-9


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def sample_indices(n: int, num_frames: int = 8) -> list[int | None]:
    """Episode frame indices the model sees when the episode has `n` frames (current included).

    Returns exactly `num_frames` entries, oldest first, current (n - 1) last; None marks a black
    padding frame. NaVILA's rule (see the module docstring), with numpy's float rounding.
    """
    n = _check_int("n", n, 0)
    k = _check_int("num_frames", num_frames, 1)
    if n == 0:
        return [None] * k
    # Padded list (not built: N can be large): `pad` black frames, then the episode's 0..n-1.
    pad = max(k - n, 0)
    # History slots: NaVILA's np.linspace(0, N'-1, K-1, endpoint=False).astype(int) over the padded
    # list (numpy on purpose: its float rounding is part of the rule). K == 1: no history.
    slots = np.linspace(0, n + pad - 1, k - 1, endpoint=False).astype(int)
    return [None if i < pad else int(i) - pad for i in slots] + [n - 1]


@dataclass
class FrameHistoryConfig:
    """How many frames the model sees, the memory cap, and when a frame enters the history."""

    # The `doc` texts are what `ros2 param describe` shows for the node's frames.* parameters.
    num_frames: int = field(default=8, metadata={
        "doc": "K: frames per model query (K - 1 history + current); 0 = the model's num_video_frames"})
    # Memory is about max_frames * H * W * 3 bytes (224x224: 77 MB at 512): store frames at model resolution.
    max_frames: int = field(default=512, metadata={
        "doc": "stored-frame cap (older frames are thinned); 512 keeps a whole 500-step episode exact"})
    policy: str = field(default="per_primitive", metadata={
        "doc": "when a frame enters the history: per_primitive | per_action | per_interval"})
    interval_s: float = field(default=0.5, metadata={
        "doc": "s of motion per frame for policy per_interval (NaVILA's robot: 0.5 s)"})
    blank_shape: tuple[int, int, int] = (224, 224, 3)  # H x W x 3 of black frames before any frame

    def __post_init__(self) -> None:
        self.num_frames = _check_int("num_frames", self.num_frames, 0)
        self.max_frames = _check_int("max_frames", self.max_frames, 2)
        if self.max_frames < 2 * self.num_frames:
            raise ValueError(
                f"max_frames ({self.max_frames}) must be >= 2 * num_frames ({2 * self.num_frames}) "
                "so thinned history still gives distinct frames"
            )
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if isinstance(self.interval_s, bool) or not isinstance(self.interval_s, (int, float)):
            raise TypeError(f"interval_s must be a number, got {self.interval_s!r}")
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise ValueError(f"interval_s must be a finite number > 0 s, got {self.interval_s}")
        self.interval_s = float(self.interval_s)
        shape = tuple(self.blank_shape)  # hydra hands tuples over as lists
        bad_dim = any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)
        if len(shape) != 3 or shape[2] != 3 or bad_dim:
            raise ValueError(f"blank_shape must be (H, W, 3) with H, W >= 1, got {self.blank_shape!r}")
        self.blank_shape = shape  # type: ignore[assignment]

    def for_model(self, model_frames: int, key: str = "num_frames") -> FrameHistoryConfig:
        """This config for a model that takes `model_frames` frames per query (its config.json's
        num_video_frames): num_frames 0 becomes model_frames; any other value must equal it.
        key names the setting in the error message (e.g. "history.num_frames")."""
        k = _check_int("the model's frame count", model_frames, 1)
        if self.num_frames == 0:
            return dataclasses.replace(self, num_frames=k)
        if self.num_frames != k:
            raise ValueError(f"{key}={self.num_frames} but the model takes {k} frames per query; "
                             f"set {key}={k}, or 0 to follow the model")
        return self


def _check_frame(frame: Any, what: str = "frame") -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"{what} must be a numpy array (H x W x 3 uint8), got {type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 1:
        raise ValueError(f"{what} must be H x W x 3 uint8, got shape {frame.shape} dtype {frame.dtype}")
    return frame


def _check_stamp(stamp: Any) -> float:
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float, np.integer, np.floating)):
        raise TypeError(f"stamp must be a number (s), got {type(stamp).__name__} {stamp!r}")
    if not math.isfinite(stamp):
        raise ValueError(f"stamp must be finite (s), got {stamp}")
    return float(stamp)


class FrameHistory:
    """One episode's frames (bounded, see the module docstring) and NaVILA's sampling over them."""

    def __init__(self, cfg: FrameHistoryConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else FrameHistoryConfig()
        self._requested = self.cfg  # as configured: use_model_frames resolves num_frames 0 from it
        self.reset()

    def use_model_frames(self, model_frames: int, key: str = "num_frames") -> None:
        """Sample `model_frames` frames per query from now on (FrameHistoryConfig.for_model: the
        config's num_frames must be 0 or equal to it; a later model may take another number
        when it was 0). The stored frames stay."""
        self.cfg = self._requested.for_model(model_frames, key)

    # --- episode lifecycle -------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: call at the start of every episode."""
        self._n = 0  # logical frames in the episode
        self._stride = 1  # lattice stride s (power of two)
        # Stored frames, sorted by logical index; parallel lists.
        self._idx: list[int] = []
        self._frames: list[np.ndarray] = []  # H x W x 3 uint8, read-only copies
        self._stamps: list[float] = []  # s
        self._poses: list[Any] = []
        self._shape: tuple[int, ...] | None = None  # frame shape of this episode
        # per_interval bookkeeping
        self._last_tick_s: float | None = None
        self._moving_s = 0.0  # motion time accumulated since the last record (s)

    def __len__(self) -> int:
        """Logical number of frames in the episode so far (not the number stored)."""
        return self._n

    @property
    def stride(self) -> int:
        """Current thinning stride s (1 until the episode exceeds max_frames)."""
        return self._stride

    @property
    def stored_count(self) -> int:
        """Frames actually held in memory (<= max_frames)."""
        return len(self._frames)

    @property
    def stored_bytes(self) -> int:
        """Bytes of frame data held in memory."""
        return sum(f.nbytes for f in self._frames)

    @property
    def stored_indices(self) -> list[int]:
        """Logical indices of the stored frames, ascending."""
        return list(self._idx)

    # --- recording ---------------------------------------------------------------------------
    def add(self, frame: np.ndarray, stamp: float = 0.0, pose: Any = None) -> None:
        """Append `frame` (H x W x 3 uint8, copied) unconditionally, with its stamp (s) and pose.

        All frames of an episode must have the same shape (call reset() between episodes).
        `pose` is any caller object (e.g. (x, y, yaw)); numpy arrays are copied.
        """
        frame = _check_frame(frame)
        stamp = _check_stamp(stamp)
        if self._shape is not None and frame.shape != self._shape:
            raise ValueError(
                f"frame shape {frame.shape} differs from this episode's {self._shape}; "
                "resize frames consistently or call reset() for a new episode"
            )
        self._shape = frame.shape
        stored = np.array(frame, dtype=np.uint8, order="C", copy=True)
        stored.flags.writeable = False
        if isinstance(pose, np.ndarray):
            pose = pose.copy()
        # The previous newest frame stays only if it is on the lattice.
        if self._idx and self._idx[-1] % self._stride != 0:
            self._pop_last()
        self._idx.append(self._n)
        self._frames.append(stored)
        self._stamps.append(stamp)
        self._poses.append(pose)
        self._n += 1
        while len(self._frames) > self.cfg.max_frames:
            self._thin()

    def offer(
        self, frame: np.ndarray, stamp: float, pose: Any = None, *, event: str, moving: bool = True
    ) -> bool:
        """Record `frame` if the policy says so for this `event`; return whether it was recorded.

        event: "primitive" (a simulator primitive was executed), "action" (a robot action was
        executed) or "tick" (periodic, e.g. per camera frame; `moving` says whether the robot was
        moving since the previous tick). The first frame offered in an episode is always recorded.
        """
        if event not in EVENTS:
            raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
        stamp = _check_stamp(stamp)
        _check_frame(frame)
        record = self._n == 0 or event == _POLICY_EVENT[self.cfg.policy]
        if event == "tick" and self.cfg.policy == "per_interval":
            # Motion time since the previous tick; a stamp that does not advance adds nothing.
            if self._last_tick_s is not None and moving and stamp > self._last_tick_s:
                self._moving_s += stamp - self._last_tick_s
            self._last_tick_s = stamp
            interval = self.cfg.interval_s
            record = self._n == 0 or self._moving_s >= interval - _TIME_EPS_S
            if record and self._n > 0:
                # Carry the excess so the long-run rate is one frame per interval_s of motion.
                self._moving_s = max(self._moving_s - interval, 0.0) % interval
            elif record:
                self._moving_s = 0.0
        if record:
            self.add(frame, stamp, pose)
        return record

    # --- sampling ----------------------------------------------------------------------------
    def sampled_indices(self, with_current: bool = False) -> list[int | None]:
        """Logical indices of the frames `sampled()` returns (None = black padding).

        with_current: a current frame will be appended after the stored history (N = len + 1);
        its index is len(self). Above the cap these are the stored frames actually used, which
        may be up to stride - 1 older than `sample_indices(N)`'s exact choice.
        """
        n = self._n + (1 if with_current else 0)
        out: list[int | None] = []
        for t in sample_indices(n, self._k()):
            if t is None or t >= self._n:  # padding, or the caller's current frame
                out.append(t)
            else:
                out.append(self._idx[self._pos(t)])
        return out

    def sampled(self, current: np.ndarray | None = None) -> list[np.ndarray]:
        """Exactly num_frames frames, oldest first, current last; zero (black) frames where padded.

        current: the live frame, appended after the stored history (not stored). Without it the
        newest stored frame is the current one. Returned history frames are read-only (no copy).
        """
        shape = self._shape
        if current is not None:
            _check_frame(current, "current")
            if shape is not None and current.shape != shape:
                raise ValueError(f"current frame shape {current.shape} differs from this episode's {shape}")
            shape = current.shape
        if shape is None:
            shape = self.cfg.blank_shape
        blank = np.zeros(shape, dtype=np.uint8)
        blank.flags.writeable = False
        out: list[np.ndarray] = []
        for t in sample_indices(self._n + (1 if current is not None else 0), self._k()):
            if t is None:
                out.append(blank)
            elif t >= self._n:
                out.append(current)  # type: ignore[arg-type]
            else:
                out.append(self._frames[self._pos(t)])
        return out

    def sampled_stamps(self, with_current: bool = False) -> list[float | None]:
        """Stamps (s) of the sampled frames; None for padding and for the caller's current frame."""
        return [self._meta(self._stamps, t) for t in self._targets(with_current)]

    def sampled_poses(self, with_current: bool = False) -> list[Any]:
        """Poses of the sampled frames; None for padding and for the caller's current frame."""
        return [self._meta(self._poses, t) for t in self._targets(with_current)]

    # --- internals ---------------------------------------------------------------------------
    def _targets(self, with_current: bool) -> list[int | None]:
        return sample_indices(self._n + (1 if with_current else 0), self._k())

    def _k(self) -> int:
        """Frames per query; num_frames 0 must have been resolved by use_model_frames first."""
        if self.cfg.num_frames == 0:
            raise ValueError("num_frames=0 (follow the model) is not resolved yet: call use_model_frames(k) "
                             "with the model's frame count before sampling")
        return self.cfg.num_frames

    def _meta(self, values: list, t: int | None) -> Any:
        """values[stored frame used for logical index t]; None for padding / the caller's current."""
        return None if t is None or t >= self._n else values[self._pos(t)]

    def _pos(self, t: int) -> int:
        """Position in the store of the frame with the largest logical index <= t."""
        return bisect.bisect_right(self._idx, t) - 1  # >= 0: index 0 is always stored

    def _pop_last(self) -> None:
        self._idx.pop()
        self._frames.pop()
        self._stamps.pop()
        self._poses.pop()

    def _thin(self) -> None:
        """Double the stride; keep lattice frames and the newest one."""
        self._stride *= 2
        last = len(self._idx) - 1
        keep = [i for i, t in enumerate(self._idx) if t % self._stride == 0 or i == last]
        self._idx = [self._idx[i] for i in keep]
        self._frames = [self._frames[i] for i in keep]
        self._stamps = [self._stamps[i] for i in keep]
        self._poses = [self._poses[i] for i in keep]
