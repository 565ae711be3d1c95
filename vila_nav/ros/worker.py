"""InferenceWorker: the model runs on its own thread, on the newest data, never in a callback.

The thread loads the model first (so the node is up, publishing zero and status "loading",
while weights load) and makes one warm-up decision on black frames, then loops: wait until the
session wants a decision, take a snapshot (`session.next_query`: the newest camera frame +
sampled history + the current instruction),
run `model.generate`, hand the text back (`session.on_answer`). Whatever arrived meanwhile is
picked up by the next snapshot ("latest input wins"); an answer to a query the session no longer
waits for (preempted, timed out) is discarded there. A model call cannot be interrupted: if it
hangs, the session's model timeout has already zeroed the robot, and the late answer is dropped.

A load failure is reported to the session (status error); an exception anywhere in a query
(model reset, snapshot, generate, the answer callback) stops the instruction with "model error:
..." and the thread and the node stay alive; should the thread still end (a BaseException), the
session is told (state error, zero), never left "thinking". No rclpy, no torch import here: `load` is any
callable returning an object with generate(frames, instruction) -> str, reset(), num_frames.
"""
from __future__ import annotations

import gc
import threading
import time
import traceback
from typing import Any, Callable

import numpy as np

from vila_nav.ros.session import NavigationSession, Query

Clock = Callable[[], float]
WARMUP_PX = 64  # side of the black warm-up frames (px); the model resizes them like any frame


class InferenceWorker:
    """Background thread: load the model, then answer the session's queries one at a time."""

    def __init__(
        self,
        session: NavigationSession,
        load: Callable[[], Any],
        *,
        on_answer: Callable[[Query, str, float], None] | None = None,
        log: Callable[[str, str], None] | None = None,
        clock: Clock = time.monotonic,
        poll_s: float = 0.1,
    ) -> None:
        self.session = session
        self._load = load
        self._on_answer = on_answer  # e.g. publish the raw text on the action topic
        self._log = log or (lambda level, msg: None)  # (level, message): level in info/warn/error
        self._clock = clock
        self._poll_s = poll_s  # s between checks of the stop flag while idle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vila_nav-inference", daemon=True)
        self.model: Any = None
        self.busy_since: float | None = None  # clock time the running generate started

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the thread to end; returns whether it did within `timeout` s (a model call in
        progress cannot be interrupted; the daemon thread then dies with the process)."""
        self._stop.set()
        self.session.query_wanted.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        t0 = self._clock()
        try:
            self.model = self._load()
            num_frames = int(self.model.num_frames)
        except Exception as exc:  # noqa: BLE001 - any load failure is reported, never raised
            self._load_failed("model failed to load", "", exc)
            return
        try:
            # One throw-away decision on black frames while the robot is still held at zero: the
            # first call of a model pays lazy imports and kernel set-up (measured: 0.3-0.7 s for a
            # tiny model, much of it holding the GIL), which belongs to loading, not to the first
            # instruction's first decision.
            # (No reset needed: every instruction's first query resets the model.)
            self.model.generate([np.zeros((WARMUP_PX, WARMUP_PX, 3), np.uint8)] * num_frames, "warm-up")
        except Exception as exc:  # noqa: BLE001 - a model that cannot decide is a failed load
            self._load_failed("model failed its warm-up decision", "warm-up decision failed: ", exc)
            return
        # The model's many Python objects (modules, parameters) live as long as the node. Left to
        # the cyclic GC, every full collection walks them all while holding the GIL, which stops
        # every thread, the cmd_vel timer and the e-stop callback included (measured: 300-400 ms
        # pauses in the ROS test process with tiny models). Collect once now (the robot is held at zero while loading),
        # then freeze what exists, so later collections scan only what the loop creates.
        gc.collect()
        gc.freeze()
        self._log("info", f"model ready in {self._clock() - t0:.1f} s ({num_frames} frames per query)")
        self.session.on_model_ready(num_frames, self._clock())
        finished = False
        try:
            while not self._stop.is_set():
                self.session.query_wanted.wait(self._poll_s)
                if self._stop.is_set():
                    break
                self._step()
            finished = True
        finally:
            if not finished:  # only a BaseException gets here (_step catches Exception)
                self._log("error", f"inference thread ended unexpectedly\n{traceback.format_exc()}")
                self.session.on_model_failed("the inference thread ended unexpectedly", self._clock(),
                                             what="inference stopped")

    def _load_failed(self, log_prefix: str, reason_prefix: str, exc: Exception) -> None:
        """Log a failed load (with the traceback) and put the session in state error."""
        error = f"{type(exc).__name__}: {exc}"
        self._log("error", f"{log_prefix}: {error}\n{traceback.format_exc()}")
        self.session.on_model_failed(reason_prefix + error, self._clock())

    def _step(self) -> None:
        """One snapshot + model call; any exception stops the instruction, never the thread."""
        query: Query | None = None
        try:
            query = self.session.next_query(self._clock())
            if query is not None:
                self._answer(query)
        except Exception as exc:  # noqa: BLE001 - reset, snapshot, callback or session errors
            self.busy_since = None
            qid = query.qid if query is not None else None
            self._log("error", f"inference error on query {qid}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            self.session.on_model_error(qid, f"{type(exc).__name__}: {exc}", self._clock())

    def _answer(self, query: Query) -> None:
        if query.new_episode:
            self.model.reset()  # the per-episode feature cache belongs to the previous instruction
        start = self._clock()
        self.busy_since = start
        try:
            text = self.model.generate(query.frames, query.instruction)
        finally:
            self.busy_since = None
        latency = self._clock() - start
        if self._on_answer is not None:
            self._on_answer(query, text, latency)
        self.session.on_answer(query.qid, text, latency, self._clock())
