"""The node's status report: what it is doing and why the robot is (not) moving, as JSON.

Published as std_msgs/String on `vila_nav/status` (transient local, so a late subscriber such as
`vila-nav status` gets the latest at once), periodically and on every change. Pure stdlib.

Fields
------
state:       loading | idle | thinking | executing | done | stopped | estop | error
reason:      why the velocity is zero or why the instruction ended ("" while moving normally)
instruction: the current (or last) instruction text; generation: its counter (1, 2, ...)
queries:     model queries made for this instruction
raw_text:    the model's last answer, verbatim; action: its parsed form, NaVILA's sentence or ""
decision_latency_s: the last model call's wall time (s); elapsed_s: time since the instruction
linear, angular: the velocity being commanded (m/s, rad/s)
cameras:     topic -> age (s) of its newest frame, null if none yet
model:       loading | ready | error (with the error in reason while state is error)
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

STATES = ("loading", "idle", "thinking", "executing", "done", "stopped", "estop", "error")
# An instruction has finished in these states (done = the model said stop).
FINISHED = ("done", "stopped", "error")


def _finite_or_none(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return round(x, 4) if math.isfinite(x) else None


@dataclass
class Status:
    """One status report (see the module docstring for the fields)."""

    state: str = "loading"
    reason: str = ""
    instruction: str = ""
    generation: int = 0
    queries: int = 0
    raw_text: str = ""
    action: str = ""
    decision_latency_s: float | None = None
    elapsed_s: float | None = None
    linear: float = 0.0
    angular: float = 0.0
    cameras: dict[str, float | None] = field(default_factory=dict)
    model: str = "loading"

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"status state must be one of {STATES}, got {self.state!r}")

    @property
    def finished(self) -> bool:
        """The instruction has ended (done, stopped or error)."""
        return self.state in FINISHED

    def to_json(self) -> str:
        """Compact JSON (non-finite numbers become null, so any JSON reader accepts it)."""
        d = asdict(self)
        for k in ("decision_latency_s", "elapsed_s", "linear", "angular"):
            d[k] = _finite_or_none(d[k])
        d["cameras"] = {k: _finite_or_none(v) for k, v in d["cameras"].items()}
        return json.dumps(d, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Status:
        """Parse a status message; unknown keys are ignored (newer nodes), missing ones default.

        Raises ValueError for text that is not a JSON object or has an unknown state.
        """
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"status is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"status must be a JSON object, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in raw.items() if k in known}
        for k in ("linear", "angular"):
            if kwargs.get(k) is None:
                kwargs.pop(k, None)
        return cls(**kwargs)

    def summary(self) -> str:
        """One human-readable line (what `vila-nav status` prints)."""
        parts = [f"[{self.state}]"]
        if self.instruction:
            parts.append(f'"{self.instruction}" (#{self.generation}, {self.queries} queries)')
        if self.action:
            parts.append(f"action: {self.action}")
        elif self.raw_text:
            parts.append(f"model said: {self.raw_text[:80]!r}")
        if self.decision_latency_s is not None:
            parts.append(f"latency {self.decision_latency_s:.2f} s")
        parts.append(f"cmd {self.linear:+.2f} m/s {math.degrees(self.angular):+.1f} deg/s")
        if self.reason:
            parts.append(f"reason: {self.reason}")
        return " | ".join(parts)
