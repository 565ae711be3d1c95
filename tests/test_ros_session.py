"""NavigationSession: the node's instruction state machine, without ROS or a model.

The session is driven with explicit steady-clock times, so every transition is checked
deterministically: the real Commander, FrameHistory and parser run underneath. Model answers are
handed in as text (the ROS tests run the real model through the worker).
"""
from __future__ import annotations

import gc
import math

import numpy as np
import pytest

from vila_nav.frames import FrameHistoryConfig
from vila_nav.ros.node_config import CameraSection, ModelSection, NodeConfig, RunSection
from vila_nav.ros.session import NavigationSession

CAM = "camera/image_raw"
FORWARD = "The next action is move forward 75 cm."


def frame(value: int = 0) -> np.ndarray:
    return np.full((384, 384, 3), value, dtype=np.uint8)


def make(**kw) -> tuple[NavigationSession, float]:
    cfg = NodeConfig(**kw)
    s = NavigationSession(cfg)
    s.on_model_ready(8, 0.0)
    s.on_frame(CAM, frame(1), 0.0)
    return s, 0.0


def run_until(s: NavigationSession, t0: float, t1: float, dt: float = 0.05, fps: float = 10.0):
    """Tick (and feed frames at fps) from t0 to t1; returns [(t, Command)]."""
    out, t, next_frame = [], t0, t0
    while t <= t1 + 1e-9:
        if t >= next_frame:
            s.on_frame(CAM, frame(int(t * 10) % 255), t)
            next_frame += 1.0 / fps
        out.append((t, s.tick(t)))
        t += dt
    return out


def test_instruction_query_execute_and_stop():
    s, t = make()
    assert s.state == "idle"
    s.on_instruction("walk to the kitchen", 0.0)
    assert s.state == "thinking" and s.query_wanted.is_set()
    q = s.next_query(0.1)
    assert q is not None and q.new_episode and q.instruction == "walk to the kitchen"
    assert len(q.frames) == 8 and all(f.shape == (384, 384, 3) for f in q.frames)
    assert not q.frames[0].any() and q.frames[-1].mean() == 1  # black padding, current frame last
    assert s.next_query(0.1) is None  # one query in flight at a time
    assert s.tick(0.2).is_zero  # zero while thinking (NaVILA pauses)
    action = s.on_answer(q.qid, FORWARD, 0.3, 0.4)
    assert action is not None and action.kind == "forward" and math.isclose(action.amount, 0.75)
    assert s.state == "executing"
    cmds = run_until(s, 0.45, 2.5)
    moving = [c for _t, c in cmds if not c.is_zero]
    assert moving and max(c.linear for c in moving) == pytest.approx(0.5)
    distance = sum(c.linear * 0.05 for _t, c in cmds)
    assert distance == pytest.approx(0.75, abs=0.06)  # tick-sampled integral of the profile
    assert s.state == "thinking"  # action complete -> next decision
    q2 = s.next_query(2.6)
    assert q2 is not None and not q2.new_episode
    assert len(s.history) >= 2  # query frame + frames per 0.5 s of motion
    s.on_answer(q2.qid, "I think I should stop because I have finished the instruction.", 0.2, 2.7)
    st = s.status(2.7)
    assert st.state == "done" and st.finished and "stop" in st.reason
    assert s.tick(2.8).is_zero


def test_turn_back_in_place_becomes_a_forward_step_when_configured():
    from vila_nav.actions import ParserConfig

    def answers(policy: str) -> tuple[list[tuple[str, float]], list[str]]:
        s, t = make(parser=ParserConfig(on_turn_reversal=policy))
        s.on_instruction("find the door", 0.0)
        ran, reasons = [], []
        for text in ("turn left 45 degree", "turn right 45 degree", "turn right 45 degree"):
            q = s.next_query(t + 0.1)
            a = s.on_answer(q.qid, f"The next action is {text}.", 0.1, t + 0.2)
            ran.append((a.kind, a.amount))
            reasons.append(s.status(t + 0.2).reason)
            run_until(s, t + 0.25, t + 6.0)  # the action runs to completion
            assert s.state == "thinking"
            t += 6.0
        return ran, reasons

    allowed, reasons = answers("allow")
    assert allowed == [("turn_left", 45.0), ("turn_right", 45.0), ("turn_right", 45.0)] and not any(reasons)
    guarded, reasons = answers("forward")
    # the right turn straight after the left one becomes one 25 cm step; after it, a turn runs again
    assert guarded == [("turn_left", 45.0), ("forward", 0.25), ("turn_right", 45.0)]
    assert reasons == ["", "turn back in place replaced by a forward step", ""]


def test_per_interval_history_records_one_frame_per_half_second_of_motion():
    s, _ = make()
    s.on_instruction("go", 0.0)
    q = s.next_query(0.0)
    s.on_answer(q.qid, "move forward 300 cm", 0.0, 0.0)  # ~6.5 s of motion with ramps
    run_until(s, 0.0, 6.0, dt=0.05, fps=10.0)
    # first frame (the query view) + one per 0.5 s of motion: about 1 + 6 / 0.5
    assert 11 <= len(s.history) <= 14


def test_preempted_answer_is_discarded_and_new_instruction_resets():
    s, _ = make()
    s.on_instruction("first", 0.0)
    q1 = s.next_query(0.0)
    s.on_instruction("second", 0.5)
    assert s.on_answer(q1.qid, FORWARD, 0.5, 0.6) is None  # stale
    assert s.state == "thinking" and s.tick(0.6).is_zero
    q2 = s.next_query(0.7)
    assert q2.instruction == "second" and q2.new_episode and q2.generation == q1.generation + 1


def test_model_timeout_zeroes_and_discards_the_late_answer():
    s, _ = make(model=ModelSection(timeout_s=1.0))
    s.on_instruction("go", 0.0)
    q = s.next_query(0.0)
    run_until(s, 0.0, 1.5)
    st = s.status(1.5)
    assert st.state == "stopped" and "model timeout" in st.reason
    assert s.on_answer(q.qid, FORWARD, 2.0, 2.0) is None
    assert s.tick(2.0).is_zero


@pytest.mark.parametrize("policy,expected", [("stop", "stopped"), ("requery", "thinking")])
def test_unparseable_answer(policy, expected):
    from vila_nav.actions import ParserConfig

    s, _ = make(parser=ParserConfig(on_unparseable=policy, max_requeries=1))
    s.on_instruction("go", 0.0)
    q = s.next_query(0.0)
    assert s.on_answer(q.qid, "zxq blorp", 0.1, 0.1) is None
    st = s.status(0.1)
    assert st.state == expected and "unparseable" in st.reason and st.raw_text == "zxq blorp"
    assert s.tick(0.2).is_zero
    if policy == "requery":
        q2 = s.next_query(0.2)
        s.on_answer(q2.qid, "still nothing", 0.1, 0.3)
        assert s.status(0.3).state == "stopped"  # max_requeries=1 used up


def test_camera_silence_aborts_motion_then_resumes_with_a_new_query():
    s, _ = make(camera=CameraSection(timeout_s=0.5))
    s.on_instruction("go", 0.0)
    q = s.next_query(0.0)
    s.on_answer(q.qid, "move forward 300 cm", 0.0, 0.0)
    run_until(s, 0.0, 1.0)
    assert not s.tick(1.05).is_zero
    cmd = s.tick(1.8)  # last frame at ~1.0 s
    assert cmd.is_zero and "camera" in cmd.reason
    st = s.status(1.8)
    assert st.state == "thinking" and "camera silent" in st.reason
    assert s.next_query(1.9) is None  # no decision on a stale view
    s.on_frame(CAM, frame(9), 2.0)
    q2 = s.next_query(2.0)
    assert q2 is not None and q2.frames[-1].mean() == 9


def test_estop_latches_zero_and_rejects_instructions_until_released():
    s, _ = make()
    s.on_instruction("go", 0.0)
    q = s.next_query(0.0)
    s.on_answer(q.qid, FORWARD, 0.0, 0.0)
    assert not run_until(s, 0.0, 0.5)[-1][1].is_zero
    s.on_estop(True, 0.5)
    assert s.tick(0.5).is_zero and s.status(0.5).state == "estop"
    s.on_instruction("go again", 0.6)
    assert s.next_query(0.6) is None and s.tick(0.7).is_zero
    s.on_estop(False, 1.0)
    st = s.status(1.0)
    assert st.state == "stopped" and "e-stop" in st.reason  # nothing resumes by itself
    s.on_instruction("go again", 1.1)
    assert s.next_query(1.1) is not None


def test_budgets_stop_the_instruction():
    s, _ = make(run=RunSection(max_queries=2, max_run_time_s=100.0))
    s.on_instruction("go", 0.0)
    for k in range(2):
        q = s.next_query(float(k))
        s.on_answer(q.qid, "turn left 15 degrees", 0.0, float(k))
        run_until(s, float(k), float(k) + 0.9)
    assert s.next_query(2.0) is None
    assert "max queries" in s.status(2.0).reason

    s, _ = make(run=RunSection(max_run_time_s=1.0))
    s.on_instruction("go", 0.0)
    run_until(s, 0.0, 1.2)
    assert s.status(1.2).state == "stopped" and "max run time" in s.status(1.2).reason


def test_model_load_failure_and_errors_keep_zero():
    cfg = NodeConfig()
    s = NavigationSession(cfg)
    s.on_frame(CAM, frame(), 0.0)
    assert s.state == "loading" and s.tick(0.0).is_zero
    s.on_model_failed("FileNotFoundError: nothing there", 0.1)
    s.on_instruction("go", 0.2)
    st = s.status(0.2)
    assert st.state == "error" and "nothing there" in st.reason and s.next_query(0.3) is None

    s, _ = make()
    s.on_instruction("go", 0.0)
    q = s.next_query(0.0)
    s.on_model_error(q.qid, "RuntimeError: boom", 0.1)
    assert s.status(0.1).state == "stopped" and "model error: RuntimeError: boom" in s.status(0.1).reason


def test_frame_count_follows_the_model_or_must_match_it():
    s = NavigationSession(NodeConfig())  # frames.num_frames 0: the model's
    s.on_model_ready(6, 0.0)
    assert s.state != "error" and s.history.cfg.num_frames == 6
    s.on_frame(CAM, frame(1), 0.0)
    s.on_instruction("go", 0.0)
    q = s.next_query(0.0)
    assert q is not None and len(q.frames) == 6
    s = NavigationSession(NodeConfig(frames=FrameHistoryConfig(num_frames=8, policy="per_interval")))
    s.on_model_ready(6, 0.0)
    reason = s.status(0.0).reason
    assert s.state == "error" and "frames.num_frames=8 but the model takes 6 frames per query" in reason


def test_status_json_round_trip():
    from vila_nav.ros.status import Status

    s, _ = make()
    s.on_instruction("go to the \"kitchen\"", 0.0)
    st = s.status(0.5)
    back = Status.from_json(st.to_json())
    assert back == Status.from_json(back.to_json())
    assert back.instruction == 'go to the "kitchen"' and back.cameras[CAM] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        Status.from_json("not json")
    with pytest.raises(ValueError):
        Status.from_json('{"state": "dancing"}')


def test_config_validation():
    with pytest.raises(ValueError, match="per_primitive"):
        from vila_nav.frames import FrameHistoryConfig

        NodeConfig(frames=FrameHistoryConfig(policy="per_primitive"))
    with pytest.raises(ValueError, match="model_topic"):
        CameraSection(topics=["a"], model_topic="b")
    with pytest.raises(ValueError, match="camera.type"):
        CameraSection(type="jpeg")


def test_camera_resolution_change_ends_the_instruction_instead_of_raising():
    s, _ = make(camera=CameraSection(width=0, height=0))  # "keep" the camera's size
    s.on_instruction("go", 0.0)
    assert s.frame_shape == (384, 384, 3)  # the node resizes later frames to this
    q = s.next_query(0.0)
    s.on_answer(q.qid, FORWARD, 0.0, 0.0)
    run_until(s, 0.0, 0.5)
    s.on_frame(CAM, np.zeros((480, 640, 3), np.uint8), 0.6)  # must not raise into the executor
    st = s.status(0.6)
    assert st.state == "stopped" and "camera resolution changed" in st.reason
    assert s.tick(0.65).is_zero
    s.on_instruction("go again", 1.0)  # the new size is this instruction's size
    assert s.frame_shape == (480, 640, 3) and s.next_query(1.0) is not None


def test_a_hung_model_is_reported_to_later_instructions_too():
    s, _ = make(model=ModelSection(timeout_s=1.0))
    s.on_instruction("go", 0.0)
    q = s.next_query(0.0)  # the worker is now stuck in generate
    run_until(s, 0.0, 1.2)
    assert "model timeout" in s.status(1.2).reason
    s.on_instruction("go again", 2.0)  # the worker cannot take it: still in the first call
    run_until(s, 2.0, 2.9)
    assert s.status(2.9).state == "thinking"  # it may still return within this instruction's wait
    run_until(s, 2.9, 3.2)
    st = s.status(3.2)
    assert st.state == "stopped" and "model still busy with a previous query for 3.0 s" in st.reason
    assert s.tick(3.25).is_zero
    assert s.on_answer(q.qid, FORWARD, 4.0, 4.0) is None  # the call returns at last: discarded
    s.on_instruction("third", 4.1)
    q3 = s.next_query(4.1)
    run_until(s, 4.1, 4.9)
    assert s.status(4.9).state == "thinking" and s.on_answer(q3.qid, FORWARD, 0.8, 4.9) is not None

    s, _ = make(model=ModelSection(timeout_s=1.0))  # preempted while the model hangs
    s.on_instruction("first", 0.0)
    s.next_query(0.0)
    s.on_instruction("second", 0.5)
    run_until(s, 0.5, 1.4)
    assert s.status(1.4).state == "thinking"
    run_until(s, 1.4, 1.6)
    assert "model still busy" in s.status(1.6).reason


def test_short_timer_stall_aborts_the_action_and_asks_again():
    s, _ = make()
    s.on_instruction("go", 0.0)
    q = s.next_query(0.0)
    s.on_answer(q.qid, "move forward 300 cm", 0.0, 0.0)
    assert run_until(s, 0.0, 2.0)[-1][1].linear == pytest.approx(0.5)  # cruising
    s.on_stall(0.3, 2.3)  # the cmd_vel timer missed ticks; the backup published zero
    st = s.status(2.3)
    assert st.state == "thinking" and "cmd_vel timer stalled" in st.reason
    assert s.tick(2.35).is_zero  # no jump back to full speed mid-profile
    q2 = s.next_query(2.4)
    assert q2 is not None and not q2.new_episode
    s.on_answer(q2.qid, "move forward 300 cm", 0.1, 2.5)
    first = [c for _t, c in run_until(s, 2.5, 3.0) if not c.is_zero][0]
    assert 0.0 < first.linear < 0.2  # a fresh profile ramps up from zero


def test_long_timer_stall_keeps_an_instruction_while_the_model_loads_and_ends_it_after():
    s = NavigationSession(NodeConfig())  # model still loading
    s.on_frame(CAM, frame(1), 0.0)
    s.on_instruction("go", 0.0)
    s.on_stall(1.6, 1.6)  # imports and the weight read held the GIL on a busy CPU
    st = s.status(1.6)
    assert st.state == "loading" and st.instruction == "go" and "cmd_vel timer stalled" in st.reason
    assert s.tick(1.7).is_zero and s.status(1.7).reason == "loading the model"
    s.on_model_ready(8, 2.0)
    s.on_frame(CAM, frame(2), 2.0)
    assert s.state == "thinking" and s.next_query(2.0) is not None  # the instruction goes on

    s.on_stall(1.6, 3.6)  # the same stall with the model loaded (use_sim_time without /clock)
    st = s.status(3.6)
    assert st.state == "stopped" and "cmd_vel timer stalled" in st.reason
    assert s.tick(3.7).is_zero and s.state == "stopped"  # nothing resumes when the timer returns


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the injected SystemExit
def test_worker_survives_a_failing_model_reset_and_reports_a_dead_thread(tmp_path):
    import time

    from vila_nav.model.testing import make_tiny_checkpoint
    from vila_nav.ros.model_loader import load_model
    from vila_nav.ros.worker import InferenceWorker

    path = make_tiny_checkpoint(tmp_path / "tiny")
    fault: dict[str, BaseException] = {"reset": RuntimeError("cache reset failed")}

    def load():
        model = load_model(ModelSection(path=str(path), cpu_threads=1))

        def reset():  # fault injection into the real model
            raise fault["reset"]

        model.reset = reset
        return model

    def wait(pred, timeout=60.0):
        end = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < end, s.status(time.monotonic())
            time.sleep(0.02)

    s = NavigationSession(NodeConfig(camera=CameraSection(width=64, height=64)))
    worker = InferenceWorker(s, load, poll_s=0.01)
    worker.start()
    try:
        wait(lambda: s.status(time.monotonic()).model == "ready")
        # the loaded model is out of the cyclic GC's reach (no full collection walks it again)
        assert gc.is_tracked(worker.model) and not any(o is worker.model for o in gc.get_objects())
        # the warm-up decision ran before "ready" (8 identical black frames: one tower call)
        assert worker.model.last_stats["vision_calls"] == 1 and worker.model.last_stats["latency_s"] > 0
        for text in ("go", "go again"):  # every instruction gets a clear answer, none hangs
            s.on_frame(CAM, np.full((64, 64, 3), 7, np.uint8), time.monotonic())
            s.on_instruction(text, time.monotonic())
            wait(lambda: s.state == "stopped")
            st = s.status(time.monotonic())
            assert "model error: RuntimeError: cache reset failed" in st.reason and st.instruction == text
            assert s.tick(time.monotonic()).is_zero and worker.alive
        fault["reset"] = SystemExit("gone")  # a BaseException ends the thread: reported, not silent
        s.on_frame(CAM, np.full((64, 64, 3), 7, np.uint8), time.monotonic())
        s.on_instruction("third", time.monotonic())
        wait(lambda: s.state == "error")
        st = s.status(time.monotonic())
        assert "inference thread ended unexpectedly" in st.reason and s.tick(time.monotonic()).is_zero
        worker._thread.join(2.0)
        assert not worker.alive
    finally:
        worker.stop()
