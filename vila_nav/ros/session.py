"""NavigationSession: the node's brain without ROS (no rclpy, no torch).

It owns the frame history, the safety Commander, the parser policy and the instruction state
machine, and is driven by explicit steady-clock times `now` (s) from three kinds of callers:

- ROS callbacks: `on_frame`, `on_instruction`, `on_estop`, and `tick(now) -> Command` from the
  fixed-rate cmd_vel timer (the only place velocities come from);
- the inference worker: `next_query(now) -> Query | None` takes a snapshot of the newest data,
  `on_answer` / `on_model_error` hand the result back (matched by query id, so an answer to a
  preempted or timed-out query is discarded), `on_model_ready` / `on_model_failed` at load;
- the node's wall-clock watchdog: `on_stall` when the ROS timer stops ticking.

Instruction states: idle -> thinking (a query is wanted or running) -> executing (an action's
velocity profile is running) -> thinking -> ... -> done (the model said stop) or stopped (e-stop,
cancel, preemption is not a stop: the new instruction takes over; model timeout or error,
unparseable answer, camera budget, query / time budget, timer stall). While thinking the robot
holds zero velocity (NaVILA pauses while the model thinks). If a camera goes silent the running
action is aborted (zero) and the instruction waits in "thinking" until frames return, then asks
the model again from the fresh view.

Frames: the newest model-camera frame is the "current" frame of each query. The history gets
the query frame of every action that starts (the only frames for policy per_action) and, with
per_interval, one camera frame per interval_s of motion (ticks are offered on every frame with
moving = whether an action was executing). All methods take one lock: callers may be on any
thread.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from vila_nav.actions import NavAction, format_action, parse_action, resolve_unparseable
from vila_nav.controller import Command, Commander, CommanderConfig
from vila_nav.frames import FrameHistory
from vila_nav.ros.node_config import NodeConfig
from vila_nav.ros.status import Status
from vila_nav.turn_guard import TurnGuard

_TEXT_IN_REASON = 80  # characters of model text quoted in a status reason
STALL_ABORT_S = 1.0  # s of cmd_vel timer stall after which the instruction ends


@dataclass(frozen=True)
class Query:
    """One model call: frames (num_frames H x W x 3 uint8, oldest first, current last)."""

    qid: int
    generation: int
    instruction: str
    frames: list[np.ndarray]
    new_episode: bool  # first query of this instruction: the model's per-episode cache resets


def watchdog_source(topic: str) -> str:
    """The Commander watchdog name of a camera topic."""
    return f"camera {topic}"


class NavigationSession:
    """Instruction state machine + frame history + Commander (see the module docstring)."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.cameras = list(cfg.camera.topics)
        self.model_camera = cfg.camera.model_camera
        self.commander = Commander(
            CommanderConfig(
                limits=cfg.limits,
                watchdogs={watchdog_source(t): cfg.camera.timeout_s for t in self.cameras},
                # ROS callbacks read the clock before taking the lock: allow tiny regressions.
                clock_tolerance_s=0.05,
            )
        )
        self.history = FrameHistory(cfg.frames)
        self.guard = TurnGuard(cfg.parser.on_turn_reversal)  # per instruction (parser.on_turn_reversal)
        self.query_wanted = threading.Event()  # set when the worker should call next_query
        self._lock = threading.RLock()
        self._model = "loading"  # loading | ready | error
        self._model_error = ""
        self._phase = "idle"  # idle | thinking | executing | done | stopped
        self._reason = ""
        self._instruction = ""
        self._generation = 0
        self._started = 0.0  # s, when the instruction arrived
        self._queries = 0
        self._requeries = 0  # consecutive unparseable answers of the current decision
        self._next_qid = 1
        self._inflight: tuple[int, float, np.ndarray, float] | None = None  # qid, start s, frame, stamp
        # (qid, start s) of the query the worker is running, even one the session gave up on
        # (preempted, timed out): a hung model call blocks every later query until it returns.
        self._busy: tuple[int, float] | None = None
        self._shape: tuple[int, ...] | None = None  # H x W x 3 of this instruction's frames
        self._reset_model = True
        self._raw_text = ""
        self._action: NavAction | None = None
        self._latency: float | None = None
        self._frame: np.ndarray | None = None  # newest model-camera frame
        self._frame_stamp = 0.0
        self._seen: dict[str, float] = {}  # topic -> s of its newest frame
        self._moving_since_tick = False
        self._last_cmd = Command(0.0, 0.0, "starting")
        self._stall = ""  # set by on_stall, cleared by the next tick
        self._silent: tuple[str, ...] = ()  # cameras silent at the last tick
        self.version = 0  # bumps on every status change (the node publishes status on change)

    # --- model lifecycle (worker thread) -----------------------------------------------------
    def on_model_ready(self, num_frames: int, now: float) -> None:
        """The model loaded; it takes `num_frames` frames per query."""
        with self._lock:
            try:
                self.history.use_model_frames(num_frames, "frames.num_frames")  # 0 = the model's
            except ValueError as exc:
                self.on_model_failed(str(exc), now)
                return
            self._model = "ready"
            self._changed()
            self._want_query()

    def on_model_failed(self, error: str, now: float, what: str = "model failed to load") -> None:
        """The model could not be loaded (or the inference thread ended): zero velocity forever,
        state error, reason "<what>: <error>"."""
        with self._lock:
            self._model, self._model_error = "error", f"{what}: {error}"
            if self._phase in ("thinking", "executing"):
                self._end("stopped", self._model_error, now)
            self._changed()

    # --- ROS inputs --------------------------------------------------------------------------
    def on_frame(self, topic: str, frame: np.ndarray | None, now: float) -> None:
        """A camera delivered a frame (already converted; None for cameras that are not decoded)."""
        with self._lock:
            self._seen[topic] = now
            self.commander.heartbeat(watchdog_source(topic), now)
            if topic != self.model_camera or frame is None:
                return
            self._frame, self._frame_stamp = frame, now
            if self._phase in ("thinking", "executing") and self._shape is None:
                self._shape = frame.shape
            if self._phase in ("thinking", "executing") and len(self.history) > 0:
                moving = self._moving_since_tick or self._phase == "executing"
                try:
                    self.history.offer(frame, now, event="tick", moving=moving)
                except ValueError as exc:  # never raise into the executor (it would end the node)
                    self._end("stopped", _resolution_reason(exc), now)
                    return
            self._moving_since_tick = False
            if self._phase == "thinking" and self._inflight is None:
                self._want_query()

    def on_instruction(self, text: str, now: float) -> None:
        """A new instruction preempts the current one; an empty one cancels."""
        text = str(text).strip()
        with self._lock:
            self._generation += 1
            self._inflight = None  # a running query's answer will be discarded
            self.commander.stop("preempted by a new instruction", now)
            self._instruction, self._queries, self._requeries = text, 0, 0
            self._raw_text, self._action, self._latency = "", None, None
            self._started = now
            self._shape = self._frame.shape if self._frame is not None else None
            self.history.reset()
            self.guard.reset()
            self._reset_model = True
            if not text:
                self._end("stopped", "cancelled (empty instruction)", now)
            elif self.commander.estop:
                self._end("stopped", "e-stop is active: release it, then send the instruction again", now)
            elif self._model == "error":
                self._end("stopped", self._model_error, now)
            else:
                self._phase, self._reason = "thinking", "waiting for the model"
                self._want_query()
            self._changed()

    def on_estop(self, active: bool, now: float) -> None:
        """Latch (True) or release (False) the e-stop; engaging it ends the instruction."""
        with self._lock:
            was = self.commander.estop
            self.commander.set_estop(bool(active), now)
            if active and self._phase in ("thinking", "executing"):
                self._end("stopped", "e-stop", now)
            if was != bool(active):
                self._changed()

    def on_stall(self, stalled_s: float, now: float) -> None:
        """The ROS cmd_vel timer has not ticked for `stalled_s` s (the backup publishes zero).

        A short stall (CPU starvation) only zeroes the output until the timer ticks again; one
        longer than STALL_ABORT_S (use_sim_time without /clock, a dead executor) is reported in
        the status and ends the instruction, so nothing resumes by itself when the timer returns.
        While the model is still loading the instruction is kept whatever the stall: the robot has
        not moved yet, loading (imports, weight reads, the warm-up decision) is what holds the GIL
        on a busy CPU, and the user's instruction must not be lost to it. A stall that outlasts
        the load (no /clock) ends the instruction at the next report after it.
        """
        with self._lock:
            reason = "cmd_vel timer stalled (use_sim_time without /clock?): zero from the wall-clock backup"
            self._last_cmd = Command(0.0, 0.0, reason)
            if stalled_s <= STALL_ABORT_S:
                # A hiccup (e.g. imports holding the GIL while the model loads): the output was
                # zeroed mid-profile, so resuming it would jump to full speed past the accel
                # limit. Abort the action and decide again from a fresh view (as after camera
                # silence).
                if self._phase == "executing":
                    self.commander.stop("cmd_vel timer stalled", now)
                    self._phase, self._reason = "thinking", "cmd_vel timer stalled: action aborted, asking again"
                    self._want_query()
                    self._changed()
                return
            if self._phase in ("thinking", "executing") and self._model != "loading":
                self._end("stopped", f"{reason} for {stalled_s:.1f} s", now)
            if not self._stall:
                self._changed()
            self._stall = reason

    def on_internal_error(self, where: str, error: str, now: float) -> None:
        """A node callback raised (a bug): zero velocity, the instruction ends, and the status says
        where and what. The node stays up, so a fixed cause needs only a new instruction."""
        reason = f"internal error in {where}: {error}"
        with self._lock:
            self._last_cmd = Command(0.0, 0.0, reason)
            if self._phase in ("thinking", "executing"):
                self._end("stopped", reason, now)
            elif self._reason != reason:  # a bug that repeats every tick is one status change, not 20 a second
                self._reason = reason
                self._changed()

    def on_shutdown(self, now: float) -> None:
        """The node is going down: end any instruction; velocity stays zero from now on."""
        with self._lock:
            if self._phase in ("thinking", "executing"):
                self._end("stopped", "shutdown", now)
            self.commander.stop("shutdown", now)

    # --- cmd_vel timer -----------------------------------------------------------------------
    def tick(self, now: float) -> Command:
        """The velocity to publish now; also runs the budgets and starts the next decision."""
        with self._lock:
            if self._stall:
                self._stall = ""
                self._changed()
            if self._phase in ("thinking", "executing"):
                if now - self._started > self.cfg.run.max_run_time_s:
                    self._end("stopped", f"max run time reached ({self.cfg.run.max_run_time_s:g} s)", now)
                elif self._inflight is not None and now - self._inflight[1] > self.cfg.model.timeout_s:
                    self._end("stopped", f"model timeout (no answer within {self.cfg.model.timeout_s:g} s)", now)
                elif (self._inflight is None and self._busy is not None
                      and now - max(self._busy[1], self._started) > self.cfg.model.timeout_s):
                    self._end("stopped", f"model still busy with a previous query for {now - self._busy[1]:.1f} s "
                                         f"(hung? no answer within model.timeout_s {self.cfg.model.timeout_s:g} s)", now)
            cmd = self.commander.command(now)
            if self._phase == "executing":
                self._moving_since_tick = True
                state = self.commander.state
                if state == "done":  # action finished: decide again (zero while thinking)
                    self._phase, self._reason = "thinking", "waiting for the model"
                    self._want_query()
                    self._changed()
                elif state in ("stopped", "idle"):  # aborted by a watchdog (camera silence)
                    self._phase = "thinking"
                    self._reason = self._silence_reason(now) or cmd.reason
                    self._want_query()
                    self._changed()
            silent = tuple(self._silent_cameras(now))
            if silent != self._silent:  # publish status when the set changes, not every tick
                self._silent = silent
                self._changed()
            if cmd != self._last_cmd and (cmd.is_zero != self._last_cmd.is_zero):
                self._changed()
            self._last_cmd = cmd
            return cmd

    # --- inference worker --------------------------------------------------------------------
    def next_query(self, now: float) -> Query | None:
        """Snapshot the newest data for one model call, or None when no call is due now."""
        with self._lock:
            self.query_wanted.clear()
            if self._model != "ready" or self._phase != "thinking" or self._inflight is not None:
                return None
            if self.commander.estop or self._frame is None or self.commander.stale_sources(now):
                return None  # on_frame asks again when frames return
            if self._queries >= self.cfg.run.max_queries:
                self._end("stopped", f"max queries reached ({self.cfg.run.max_queries})", now)
                return None
            try:
                frames = self.history.sampled(current=self._frame)
            except ValueError as exc:
                self._end("stopped", _resolution_reason(exc), now)
                return None
            qid = self._next_qid
            self._next_qid += 1
            self._inflight = (qid, now, self._frame, self._frame_stamp)
            self._busy = (qid, now)
            self._queries += 1
            new_episode, self._reset_model = self._reset_model, False
            if not self._requeries:  # keep "unparseable ...: asking again" visible while re-asking
                self._reason = "waiting for the model"
            self._changed()
            return Query(qid, self._generation, self._instruction, frames, new_episode)

    def on_answer(self, qid: int, text: str, latency_s: float, now: float) -> NavAction | None:
        """The model answered query `qid`; returns the action started (None if none or stale)."""
        with self._lock:
            self._worker_returned(qid)
            if self._inflight is None or self._inflight[0] != qid:
                return None  # preempted, timed out or stopped meanwhile: discard
            _qid, t0, frame, stamp = self._inflight
            if now - t0 > self.cfg.model.timeout_s:  # late, even if no tick noticed it yet
                self._end("stopped", f"model timeout (no answer within {self.cfg.model.timeout_s:g} s)", now)
                return None
            self._inflight = None
            self._raw_text, self._latency = str(text), float(latency_s)
            action = parse_action(text, self.cfg.parser)
            self._action = action
            if action is None:
                quoted = repr(self._raw_text[:_TEXT_IN_REASON])
                if resolve_unparseable(self.cfg.parser, self._requeries) == "requery":
                    self._requeries += 1
                    self._reason = (f"unparseable model output {quoted}: asking again "
                                    f"({self._requeries}/{self.cfg.parser.max_requeries})")
                    self._want_query()
                    self._changed()
                else:
                    self._end("stopped", f"unparseable model output {quoted}", now)
                return None
            self._requeries = 0
            run = self.guard.apply(action)  # a turn back in place may become a forward step
            replaced = run != action
            self._action = action = run
            try:
                self.history.offer(frame, stamp, event="action")
            except ValueError as exc:
                self._end("stopped", _resolution_reason(exc), now)
                return None
            started = self.commander.start(action, now)
            if action.kind == "stop":
                self._end("done", "the model said stop", now)
            elif started:
                self._phase = "executing"
                self._reason = "turn back in place replaced by a forward step" if replaced else ""
                self._changed()
            elif self.commander.estop:
                self._end("stopped", "e-stop", now)
            else:
                silent = self._silence_reason(now)
                if silent:  # wait for frames, then ask again
                    self._phase, self._reason = "thinking", silent
                    self._changed()
                else:
                    self._end("stopped", f"action refused: {self.commander.command(now).reason}", now)
            return action

    def expects(self, qid: int) -> bool:
        """Whether query `qid` is the one the session is waiting for (not preempted/timed out)."""
        with self._lock:
            return self._inflight is not None and self._inflight[0] == qid

    def on_model_error(self, qid: int | None, error: str, now: float) -> None:
        """The model (or the worker around it) raised on query `qid`, or outside any query (None):
        the instruction stops, the node stays up."""
        with self._lock:
            if qid is None:
                self._busy = None
                if self._phase in ("thinking", "executing"):
                    self._end("stopped", f"model error: {error}", now)
                return
            self._worker_returned(qid)
            if self._inflight is None or self._inflight[0] != qid:
                return
            self._inflight = None
            self._end("stopped", f"model error: {error}", now)

    @property
    def frame_shape(self) -> tuple[int, ...] | None:
        """H x W x 3 of the current instruction's frames (None before its first frame): with
        camera.width/height 0 the node resizes later frames to it."""
        with self._lock:
            return self._shape

    # --- status ------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """The status state (see status.py)."""
        with self._lock:
            return self._state()

    def status(self, now: float) -> Status:
        """The current status report."""
        with self._lock:
            cmd = self._last_cmd
            reason = self._reason
            state = self._state()
            if self._stall:
                reason = self._stall
            elif state == "estop":
                reason = "e-stop active"
            elif state == "error":
                reason = self._model_error
            elif state == "loading":
                reason = "loading the model"
            elif state in ("idle", "thinking"):
                reason = self._silence_reason(now) or reason
            return Status(
                state=state,
                reason=reason,
                instruction=self._instruction,
                generation=self._generation,
                queries=self._queries,
                raw_text=self._raw_text,
                action=format_action(self._action) if self._action is not None else "",
                decision_latency_s=self._latency,
                elapsed_s=(now - self._started) if self._generation else None,
                linear=cmd.linear,
                angular=cmd.angular,
                cameras={t: (now - self._seen[t]) if t in self._seen else None for t in self.cameras},
                model=self._model,
            )

    # --- internals ---------------------------------------------------------------------------
    def _state(self) -> str:
        if self.commander.estop:
            return "estop"
        if self._model == "error":
            return "error"
        if self._model == "loading" and self._phase in ("idle", "thinking"):
            return "loading"
        return self._phase

    def _silent_cameras(self, now: float) -> list[str]:
        stale_sources = set(self.commander.stale_sources(now))
        return [t for t in self.cameras if watchdog_source(t) in stale_sources]

    def _silence_reason(self, now: float) -> str:
        stale = self._silent_cameras(now)
        if not stale:
            return ""
        ages = ", ".join(
            f"{t} ({now - self._seen[t]:.1f} s)" if t in self._seen else f"{t} (no frame yet)" for t in stale
        )
        return f"camera silent: {ages}"

    def _worker_returned(self, qid: int) -> None:
        """The worker finished query `qid` (answered or raised): it is free for the next one."""
        if self._busy is not None and self._busy[0] == qid:
            self._busy = None
            self._want_query()

    def _want_query(self) -> None:
        if self._phase == "thinking" and self._inflight is None and self._model == "ready":
            self.query_wanted.set()

    def _end(self, phase: str, reason: str, now: float) -> None:
        """Finish the instruction (done or stopped) with zero velocity."""
        self._phase, self._reason = phase, reason
        self._inflight = None
        if phase != "done":
            self.commander.stop(reason, now)
        self.query_wanted.clear()
        self._changed()

    def _changed(self) -> None:
        self.version += 1


def _resolution_reason(exc: Exception) -> str:
    return f"camera resolution changed during the instruction ({exc}); send the instruction again"
