"""Velocity planning and the safety commander: from a NavAction to cmd_vel, zero on every doubt.

Planning
--------
`plan(action, limits)` turns one mid-level action into timed velocity segments whose integral is
exactly the commanded distance (m) or angle (rad):

- forward d m: linear velocity ramps 0 -> v at the acceleration limit, cruises at
  v = max_linear_mps, ramps back to 0 (trapezoid); when d is too short to reach v the profile is a
  triangle peaking at sqrt(d * a). With infinite acceleration it is a single constant segment,
  which reproduces NaVILA's robot timing exactly (0.5 m/s: 25/50/75 cm in 0.5/1.0/1.5 s;
  30 deg/s: 15/30/45 deg in 0.5/1.0/1.5 s).
- turn_left / turn_right a deg: the same profile on the angular velocity in rad/s; turn_left is
  positive (counter-clockwise seen from above, REP-103), turn_right negative.
- stop: no segments.

Commander
---------
`Commander` executes one planned action at a time against an explicit clock `now` (float s) and
answers `command(now) -> Command(linear m/s, angular rad/s, reason)`. The command is zero, with
the reason, in every state but "executing", and checks in this order:

1. clock: a non-finite `now`, or one that went backwards by more than `clock_tolerance_s`, aborts
   the running action ("invalid time ...", "clock went backwards by ... s"). A backwards jump
   re-anchors the clock and forgets heartbeats (their stamps belong to the old timeline).
2. e-stop: latched; `set_estop(True)` aborts the action and holds zero ("estop") until
   `set_estop(False)`, which returns to "idle" without resuming anything.
3. watchdogs: every source in `watchdogs` (e.g. {"camera": 1.0}) must have a `heartbeat` within
   its timeout (|now - last heard| <= timeout; never heard = stale). A stale source aborts the
   running action and makes `start` refuse ("watchdog: camera stale").
4. the action's profile: velocity at `now - start`; once the profile has ended, zero ("action
   complete") and the state becomes "done". The command is never stale.

States: idle (nothing started, or e-stop released), executing, done (action finished, or a stop
action), stopped (`stop()`, an abort or a refused start; reason "stopped: <why>"), estop.

Pure stdlib: no numpy, torch or rclpy. Public methods take an internal lock, so a ROS node may
call them from several threads.
"""
from __future__ import annotations

import math
import numbers
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # only the interface is needed: kind (str) and amount (m or deg)
    from vila_nav.actions import NavAction

KINDS = ("forward", "turn_left", "turn_right", "stop")
STATES = ("idle", "executing", "done", "stopped", "estop")


def _check_number(name: str, value: Any) -> float:
    # numbers.Real covers int, float and numpy scalars; bool is excluded on purpose.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    return float(value)


@dataclass
class VelocityLimits:
    """Speed and acceleration limits. Accelerations may be inf (step changes, NaVILA's timing)."""

    # The `doc` texts are what `ros2 param describe` shows for the node's limits.* parameters.
    max_linear_mps: float = field(default=0.5, metadata={"doc": "top forward speed, m/s (NaVILA's robot: 0.5)"})
    max_angular_dps: float = field(default=30.0, metadata={
        "doc": "top turn rate, deg/s (NaVILA's robot: 30 = pi/6 rad/s)"})
    max_linear_accel_mps2: float = field(default=1.0, metadata={
        "doc": "linear acceleration, m/s^2 (1.0: 0 -> 0.5 m/s in 0.5 s; inf = step changes)"})
    max_angular_accel_dps2: float = field(default=120.0, metadata={
        "doc": "angular acceleration, deg/s^2, not rad/s^2 (120: 0 -> 30 deg/s in 0.25 s; inf = step changes)"})

    def __post_init__(self) -> None:
        for name in ("max_linear_mps", "max_angular_dps"):
            v = _check_number(name, getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v}")
            setattr(self, name, v)
        for name in ("max_linear_accel_mps2", "max_angular_accel_dps2"):
            v = _check_number(name, getattr(self, name))
            if math.isnan(v) or v <= 0:
                raise ValueError(f"{name} must be > 0 (inf = no ramp), got {v}")
            setattr(self, name, v)

    @classmethod
    def navila(cls) -> VelocityLimits:
        """NaVILA's robot benchmark: 0.5 m/s, 30 deg/s, no ramps (25 cm / 15 deg = 0.5 s)."""
        return cls(max_linear_accel_mps2=math.inf, max_angular_accel_dps2=math.inf)

    @property
    def max_angular_radps(self) -> float:
        return math.radians(self.max_angular_dps)

    @property
    def max_angular_accel_radps2(self) -> float:
        return math.radians(self.max_angular_accel_dps2)


@dataclass(frozen=True)
class Segment:
    """`duration` s during which linear (m/s) and angular (rad/s) velocity ramp linearly."""

    duration: float  # s, > 0
    linear_start: float = 0.0  # m/s
    linear_end: float = 0.0  # m/s
    angular_start: float = 0.0  # rad/s
    angular_end: float = 0.0  # rad/s

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration) and self.duration > 0):
            raise ValueError(f"segment duration must be finite and > 0 s, got {self.duration}")
        for name in ("linear_start", "linear_end", "angular_start", "angular_end"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"segment {name} must be finite, got {getattr(self, name)}")

    def at(self, t: float) -> tuple[float, float]:
        """(linear m/s, angular rad/s) at t s into the segment (t clamped to [0, duration])."""
        f = min(max(t / self.duration, 0.0), 1.0)
        return (
            self.linear_start + (self.linear_end - self.linear_start) * f,
            self.angular_start + (self.angular_end - self.angular_start) * f,
        )

    def integral(self, t: float | None = None) -> tuple[float, float]:
        """Exact (distance m, angle rad) from 0 to t s (default: the whole segment)."""
        t = self.duration if t is None else min(max(t, 0.0), self.duration)
        v, w = self.at(t)
        return ((self.linear_start + v) * 0.5 * t, (self.angular_start + w) * 0.5 * t)

    @property
    def distance(self) -> float:
        """m travelled over the segment."""
        return self.integral()[0]

    @property
    def angle(self) -> float:
        """rad turned over the segment (counter-clockwise positive)."""
        return self.integral()[1]


def _profile_1d(amount: float, vmax: float, amax: float) -> list[tuple[float, float, float]]:
    """(duration s, v_start, v_end) pieces covering `amount` (> 0) under vmax and amax."""
    if math.isinf(amax):
        return [(amount / vmax, vmax, vmax)]
    t_ramp = vmax / amax  # s to reach vmax
    ramp = 0.5 * vmax * t_ramp  # covered while ramping once
    if 2.0 * ramp < amount:  # trapezoid: room to cruise
        return [(t_ramp, 0.0, vmax), ((amount - 2.0 * ramp) / vmax, vmax, vmax), (t_ramp, vmax, 0.0)]
    peak = math.sqrt(amount * amax)  # triangle: peak^2 / amax == amount
    t_half = peak / amax
    return [(t_half, 0.0, peak), (t_half, peak, 0.0)]


def plan(action: NavAction, limits: VelocityLimits | None = None) -> list[Segment]:
    """Velocity segments for one action; their integral is the commanded distance / angle.

    forward: amount m >= 0 on linear velocity. turn_left / turn_right: amount deg >= 0 on angular
    velocity (rad/s; left positive). stop or a zero amount: []. Raises ValueError / TypeError for
    an unknown kind or a negative or non-finite amount.
    """
    limits = limits if limits is not None else VelocityLimits()
    kind = getattr(action, "kind", None)
    if kind not in KINDS:
        raise ValueError(f"unknown action kind {kind!r}; expected one of {KINDS}")
    if kind == "stop":
        return []
    amount = _check_number("action amount", getattr(action, "amount", None))
    if not (math.isfinite(amount) and amount >= 0):
        raise ValueError(f"{kind} amount must be finite and >= 0, got {amount}")
    if amount == 0:
        return []
    if kind == "forward":
        pieces = _profile_1d(amount, limits.max_linear_mps, limits.max_linear_accel_mps2)
        return [Segment(d, v0, v1, 0.0, 0.0) for d, v0, v1 in pieces]
    sign = 1.0 if kind == "turn_left" else -1.0  # REP-103: counter-clockwise positive
    pieces = _profile_1d(math.radians(amount), limits.max_angular_radps, limits.max_angular_accel_radps2)
    # "+ 0.0" turns -0.0 (turn_right at rest) into 0.0.
    return [Segment(d, 0.0, 0.0, sign * w0 + 0.0, sign * w1 + 0.0) for d, w0, w1 in pieces]


def profile_duration(segments: Sequence[Segment]) -> float:
    """Total duration (s) of a profile."""
    return math.fsum(s.duration for s in segments)


def velocity_at(segments: Sequence[Segment], t: float) -> tuple[float, float]:
    """(linear m/s, angular rad/s) at t s after the profile starts; zero before and after it."""
    if not math.isfinite(t) or t < 0:
        return (0.0, 0.0)
    start = 0.0
    for seg in segments:
        if t < start + seg.duration:
            return seg.at(t - start)
        start += seg.duration
    return (0.0, 0.0)


def integrate(segments: Sequence[Segment], t: float | None = None) -> tuple[float, float]:
    """Exact (distance m, angle rad) covered from the profile's start to t s (default: the end)."""
    dist: list[float] = []
    ang: list[float] = []
    start = 0.0
    for seg in segments:
        if t is not None and t <= start:
            break
        d, a = seg.integral(None if t is None else t - start)
        dist.append(d)
        ang.append(a)
        start += seg.duration
    return (math.fsum(dist), math.fsum(ang))


@dataclass(frozen=True)
class Command:
    """One velocity command: linear m/s (forward +), angular rad/s (left +), and why if zero."""

    linear: float = 0.0  # m/s
    angular: float = 0.0  # rad/s
    reason: str = ""  # "" while executing normally, else why the command is zero

    @property
    def is_zero(self) -> bool:
        return self.linear == 0.0 and self.angular == 0.0


@dataclass
class CommanderConfig:
    """Limits, watchdogs and sanity caps of the Commander."""

    limits: VelocityLimits = field(default_factory=VelocityLimits)
    # source -> timeout s: each must heartbeat within its timeout or the command is zero.
    watchdogs: dict[str, float] = field(default_factory=lambda: {"camera": 1.0})
    max_action_s: float = 20.0  # s: longer planned actions are refused (parser limits come first)
    # s of clock regression treated as jitter (callers reading the clock outside a lock) instead
    # of a backwards jump; 0 = any regression aborts.
    clock_tolerance_s: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.limits, VelocityLimits):
            raise TypeError(f"limits must be a VelocityLimits, got {type(self.limits).__name__}")
        watchdogs = {}
        for source, timeout in dict(self.watchdogs).items():
            if not isinstance(source, str) or not source:
                raise ValueError(f"watchdog source names must be non-empty strings, got {source!r}")
            t = _check_number(f"watchdogs[{source!r}]", timeout)
            if not (math.isfinite(t) and t > 0):
                raise ValueError(f"watchdogs[{source!r}] must be a finite timeout > 0 s, got {t}")
            watchdogs[source] = t
        self.watchdogs = watchdogs
        self.max_action_s = _check_number("max_action_s", self.max_action_s)
        if not (math.isfinite(self.max_action_s) and self.max_action_s > 0):
            raise ValueError(f"max_action_s must be finite and > 0 s, got {self.max_action_s}")
        self.clock_tolerance_s = _check_number("clock_tolerance_s", self.clock_tolerance_s)
        if not (math.isfinite(self.clock_tolerance_s) and self.clock_tolerance_s >= 0):
            raise ValueError(f"clock_tolerance_s must be finite and >= 0 s, got {self.clock_tolerance_s}")


class Commander:
    """Executes one action at a time as timed velocities; zero on every doubt (module docstring)."""

    def __init__(self, cfg: CommanderConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else CommanderConfig()
        self._lock = threading.RLock()
        self._state = "idle"
        self._why = ""  # reason behind done / stopped
        self._action: NavAction | None = None
        self._segments: list[Segment] = []
        self._t0 = 0.0  # s, start of the running action
        self._total = 0.0  # s, its planned duration
        self._last_now: float | None = None
        self._heard: dict[str, float] = {}  # source -> last heartbeat time s
        self._estop = False

    # --- queries -----------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """idle | executing | done | stopped | estop (as of the last call)."""
        return self._state

    @property
    def estop(self) -> bool:
        """Whether the e-stop is latched."""
        return self._estop

    @property
    def action(self) -> NavAction | None:
        """The action started last (None before any, or after an e-stop release)."""
        return self._action

    @property
    def segments(self) -> list[Segment]:
        """The running action's velocity profile."""
        return list(self._segments)

    def stale_sources(self, now: float) -> list[str]:
        """Watched sources without a heartbeat within their timeout at `now` (never heard = stale)."""
        with self._lock:
            stale = []
            for source, timeout in self.cfg.watchdogs.items():
                heard = self._heard.get(source)
                if heard is None or not math.isfinite(now) or abs(now - heard) > timeout:
                    stale.append(source)
            return stale

    # --- inputs ------------------------------------------------------------------------------
    def start(self, action: NavAction, now: float) -> bool:
        """Start `action` at `now`, preempting any running one; False if refused (state says why).

        A stop action finishes at once (state "done"). Refused while the e-stop is latched, while a
        watchdog is stale, for an invalid action, or one longer than max_action_s.
        """
        with self._lock:
            now, fault = self._clock(now)
            self._action, self._segments = action, []
            if fault:
                return self._refuse(fault)
            if self._estop:
                self._action = None
                return False  # stays in "estop"
            stale = self._stale_reason(now)
            if stale:
                return self._refuse(stale)
            try:
                segments = plan(action, self.cfg.limits)
            except (TypeError, ValueError) as exc:
                return self._refuse(f"invalid action: {exc}")
            total = profile_duration(segments)
            if total > self.cfg.max_action_s:
                cap = self.cfg.max_action_s
                return self._refuse(f"action too long: {total:.2f} s > max_action_s {cap:.2f} s")
            self._segments, self._t0, self._total = segments, now, total
            if getattr(action, "kind", None) == "stop":
                self._state, self._why = "done", "stop action"
            elif not segments:
                self._state, self._why = "done", "action complete"
            else:
                self._state, self._why = "executing", ""
            return True

    def stop(self, reason: str, now: float) -> None:
        """Stop now (any running action is dropped); the command is zero with "stopped: <reason>"."""
        with self._lock:
            self._clock(now)  # a bad clock cannot prevent a stop
            if self._state != "estop":
                self._state, self._why = "stopped", str(reason) or "requested"
                self._segments = []

    def set_estop(self, active: bool, now: float) -> None:
        """Latch (True) or release (False) the e-stop. Release goes to idle; nothing resumes."""
        with self._lock:
            self._clock(now)  # applied whatever the clock says
            if active:
                self._estop = True
                self._state, self._why, self._segments = "estop", "", []
            elif self._estop:
                self._estop = False
                self._state, self._why, self._segments, self._action = "idle", "", [], None

    def heartbeat(self, source: str, now: float) -> None:
        """`source` is alive at `now`. Unwatched sources and non-finite times are ignored."""
        with self._lock:
            if source not in self.cfg.watchdogs:
                return
            try:
                now = float(now)
            except (TypeError, ValueError):
                return
            if math.isfinite(now):
                prev = self._heard.get(source)
                self._heard[source] = now if prev is None else max(prev, now)

    # --- output ------------------------------------------------------------------------------
    def command(self, now: float, period_s: float | None = None) -> Command:
        """The velocity to send at `now`: the profile while executing, else zero with the reason.

        period_s: the caller's publish period (s). When given, the command is the profile's mean
        velocity over [now, now + period_s], so a robot holding each command for one period
        (zero-order hold, sampled from the action's start) covers exactly the planned distance /
        angle even for profiles shorter than a period or not aligned with it. Without it the
        command is the instantaneous velocity at `now`. An invalid period gives zero (and aborts).
        """
        with self._lock:
            return self._update(now, period_s)

    def action_done(self, now: float) -> bool:
        """True when no action is executing at `now` (finished, stopped, refused, or none)."""
        with self._lock:
            self._update(now)
            return self._state != "executing"

    # --- internals ---------------------------------------------------------------------------
    def _update(self, now: float, period_s: float | None = None) -> Command:
        now, fault = self._clock(now)
        if fault:
            return Command(0.0, 0.0, fault)
        if period_s is not None:
            try:
                ok = not isinstance(period_s, bool) and math.isfinite(float(period_s)) and float(period_s) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                fault = f"invalid period_s {period_s!r}"
                self._abort(fault)
                return Command(0.0, 0.0, fault)
            period_s = float(period_s)
        if self._estop:
            return Command(0.0, 0.0, "estop")
        stale = self._stale_reason(now)
        if stale:
            self._abort(stale)
            return Command(0.0, 0.0, stale)
        if self._state == "executing":
            t = now - self._t0
            if t >= self._total:
                self._state, self._why, self._segments = "done", "action complete", []
            else:
                lim = self.cfg.limits
                if period_s is None:
                    v, w = velocity_at(self._segments, t)
                else:  # mean over the coming period: exact under zero-order hold
                    d0, a0 = integrate(self._segments, t)
                    d1, a1 = integrate(self._segments, t + period_s)
                    v, w = (d1 - d0) / period_s, (a1 - a0) / period_s
                v = min(max(v, -lim.max_linear_mps), lim.max_linear_mps)
                w = min(max(w, -lim.max_angular_radps), lim.max_angular_radps)
                if math.isfinite(v) and math.isfinite(w):
                    return Command(v, w, "")
                self._abort("non-finite velocity")
        if self._state == "idle":
            return Command(0.0, 0.0, "idle")
        if self._state == "done":
            return Command(0.0, 0.0, self._why)
        return Command(0.0, 0.0, f"stopped: {self._why}")

    def _clock(self, now: Any) -> tuple[float, str]:
        """Validate and record `now`: (effective now, fault reason or "")."""
        try:
            t = float(now)
        except (TypeError, ValueError):
            t = math.nan
        if isinstance(now, bool) or not math.isfinite(t):
            fault = f"invalid time {now!r}"
            self._abort(fault)
            return (math.nan, fault)
        last = self._last_now
        if last is not None and t < last:
            if last - t > self.cfg.clock_tolerance_s:
                fault = f"clock went backwards by {last - t:.3f} s"
                self._abort(fault)
                self._heard.clear()  # stamps from the old timeline
                self._last_now = t
                return (t, fault)
            return (last, "")  # jitter within tolerance: hold the clock
        self._last_now = t
        return (t, "")

    def _stale_reason(self, now: float) -> str:
        stale = self.stale_sources(now)
        return "watchdog: " + ", ".join(f"{s} stale" for s in stale) if stale else ""

    def _abort(self, reason: str) -> None:
        """Drop a running action: state stopped with `reason` (no effect unless executing)."""
        if self._state == "executing":
            self._state, self._why, self._segments = "stopped", reason, []

    def _refuse(self, reason: str) -> bool:
        if self._state != "estop":
            self._state, self._why = "stopped", reason
        self._segments = []
        return False
