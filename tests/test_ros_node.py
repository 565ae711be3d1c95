"""vila_nav_node on real rclpy (loopback, own domain), with real tiny models on the worker thread.

Models (no fake model class anywhere):
- "garbage": vila_nav.model.testing.make_tiny_checkpoint, a random tiny VILA model. Its greedy
  answers are gibberish, so it exercises the unparseable-output path; each query is a real CPU
  inference (vision tower + prefill + 32 decoded tokens) of a few tens of ms, which no 1 ms model
  timeout lets finish.
- "slow": the same random model with a wider, deeper LM (hidden 512, 6 layers), so that a query
  takes several cmd_vel periods (~0.3-0.5 s on one thread): the "model is thinking" load for the
  cmd_vel rate check, which a timer blocked by inference would fail.
- "forward": vila_nav.model.testing.make_answering_checkpoint, the same tiny architecture with an
  LM hand-set to a bigram chain, so greedy decoding always answers "The next action is move
  forward 75 cm." (see that module): the robot really moves, and the safety layers can be
  checked against real motion.
A Probe node plays the robot: camera frames at 10 Hz, instructions, e-stops, and it records
every cmd_vel and status. The tests check behaviour, never timings: the figures (cmd_vel rate
while the model thinks, e-stop latency) are printed here and measured by `vila-nav bench-ros`,
whose results are in the README; a loaded 2-core CI machine must not turn them into failures.
"""
from __future__ import annotations

import time

import pytest

pytest.importorskip("rclpy")

from vila_nav.ros.runtime import Spinner  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

RATE_HZ = 20.0


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from vila_nav.model.testing import make_answering_checkpoint, make_tiny_checkpoint

    root = tmp_path_factory.mktemp("models")
    slow = make_tiny_checkpoint(root / "slow", llm_hidden=512, llm_layers=6, llm_intermediate=2048, llm_heads=8,
                                llm_kv_heads=4)
    return {"garbage": str(make_tiny_checkpoint(root / "garbage")), "slow": str(slow),
            "forward": str(make_answering_checkpoint(root / "forward"))}


class Rig:
    """vila_nav_node + Probe spinning on one MultiThreadedExecutor."""

    def __init__(self, ctx, params: dict, probe_kwargs: dict | None = None) -> None:
        from vila_nav.ros.node import VilaNavNode, overrides
        from vila_nav.ros.probe import Probe

        base = {"cmd_vel.rate_hz": RATE_HZ, "camera.width": 64, "camera.height": 64, "model.cpu_threads": 1}
        base.update(params)
        self.node = VilaNavNode(context=ctx, parameter_overrides=overrides(base))
        self.probe = Probe(context=ctx, **(probe_kwargs or {}))
        self.spinner = Spinner([self.node, self.probe], ctx, num_threads=4)

    def close(self) -> None:
        self.probe.stop_camera()
        self.node.close()
        # node.close() waits 0.5 s for the worker; a model call still running would go on into the
        # next test and load its CPU (the e-stop and rate checks measure real latency), so wait
        # here until it has returned.
        assert self.node.worker.stop(timeout=30.0), "the inference thread did not end"
        self.spinner.stop()
        self.node.destroy_node()
        self.probe.destroy_node()


@pytest.fixture
def rig(ctx):
    made: list[Rig] = []

    def make(params: dict, **probe_kwargs) -> Rig:
        made.append(Rig(ctx, params, probe_kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def moving(rig: Rig, timeout: float = 20.0) -> float:
    """Start the forward model on an instruction; returns when cmd_vel is non-zero."""
    rig.probe.start_camera(10.0)
    rig.probe.wait_status(lambda s: s.model == "ready", timeout)
    rig.probe.instruct("walk down the hall")
    return rig.probe.wait_cmd(lambda v, w: v > 0.1, timeout)


def test_cmd_vel_rate_holds_while_the_model_thinks(rig, models):
    r = rig({"model.path": models["slow"], "parser.on_unparseable": "requery", "parser.max_requeries": 1000})
    r.probe.start_camera(10.0)
    r.probe.wait_status(lambda s: s.model == "ready", 30.0)
    r.probe.instruct("go to the kitchen")
    first = r.probe.wait_status(lambda s: s.state == "thinking" and s.queries >= 1, 20.0)
    t0 = time.monotonic()
    # A window of at least 3 s that holds at least one more finished model call: waiting for the
    # call (not a fixed sleep) keeps this independent of how slow one call is on a loaded machine.
    r.probe.wait_status(lambda s: s.queries > first.queries, 30.0)
    time.sleep(max(0.0, t0 + 3.0 - time.monotonic()))
    t1 = time.monotonic()
    last = r.probe.status
    cmds = r.probe.cmds_between(t0, t1)
    rate = len(cmds) / (t1 - t0)
    calls = last.queries - first.queries
    print(f"cmd_vel {rate:.1f} Hz of {RATE_HZ:g} while {calls} model calls ran "
          f"(last call {last.decision_latency_s} s)")
    assert last.state == "thinking" and calls >= 1  # the model really was busy
    # The model does not block the cmd_vel timer: a timer starved by inference (ros2_nanollm's
    # design) ticks at most once per model call, i.e. <= calls + 1 times in the window; ours keeps
    # ticking. Both bounds are counts, so a loaded machine that slows the timer slows the model
    # calls too; a model fast enough that the two designs would tick alike fails here instead of
    # passing without checking anything. (The rate itself, >= 90 % of nominal, is a benchmark
    # figure: vila-nav bench-ros.)
    assert len(cmds) >= max(RATE_HZ, 2 * (calls + 1)), (len(cmds), calls)
    assert all(v == 0.0 and w == 0.0 for _t, v, w in cmds)  # thinking = holding still
    assert "unparseable" in last.reason and last.raw_text


def test_estop_gives_zero_at_once_and_latches(rig, models):
    r = rig({"model.path": models["forward"]})
    moving(r)
    assert r.probe.actions and r.probe.actions[-1] == "The next action is move forward 75 cm."
    t_pub = time.monotonic()
    r.probe.estop(True)
    # The node publishes zero from the e-stop callback itself (not at its next tick); the latency
    # (target < 100 ms) is a benchmark figure (vila-nav bench-ros), printed here for the log.
    t_zero = r.probe.wait_cmd(lambda v, w: v == 0.0 and w == 0.0, 5.0, after=t_pub)
    print(f"e-stop -> zero cmd_vel in {1000 * (t_zero - t_pub):.1f} ms")
    st = r.probe.wait_status(lambda s: s.state == "estop", 2.0)
    assert st.reason == "e-stop active"
    time.sleep(0.3)
    assert all(v == 0.0 for _t, v, _w in r.probe.cmds_between(t_zero, time.monotonic()))
    r.probe.instruct("walk again")  # refused while latched
    r.probe.wait_status(lambda s: s.instruction == "walk again", 2.0)
    time.sleep(0.3)
    assert all(v == 0.0 for _t, v, _w in r.probe.cmds_between(t_zero, time.monotonic()))
    r.probe.estop(False)
    st = r.probe.wait_status(lambda s: s.state == "stopped", 2.0)
    assert "e-stop" in st.reason  # released: nothing resumes by itself


def test_camera_silence_gives_zero_and_a_reason(rig, models):
    # 1 s: a 10 Hz camera starved by a loaded CI machine (2 cores, the model in the node's
    # process) must not trip the watchdog again once frames return.
    r = rig({"model.path": models["forward"], "camera.timeout_s": 1.0})
    moving(r)
    t_stop = time.monotonic()
    r.probe.stop_camera()
    r.probe.wait_cmd(lambda v, w: v == 0.0, 4.0, after=t_stop)  # ~1 s; no timing claim here
    st = r.probe.wait_status(lambda s: "camera silent" in s.reason, 3.0, after=t_stop)
    assert st.cameras["camera/image_raw"] > 1.0
    r.probe.start_camera(10.0)  # frames return: the model is asked again and motion resumes
    r.probe.wait_cmd(lambda v, w: v > 0.1, 10.0, after=time.monotonic())


def test_a_late_tick_aborts_the_action_instead_of_resuming_mid_profile(rig, models):
    # A whole-process stall starves the wall-clock watchdog too, so the late tick must notice it
    # itself. The watchdog is stopped here, and the last tick is moved 0.5 s into the past: the
    # next real tick is then 0.5 s late, as after the process was descheduled mid-action.
    r = rig({"model.path": models["forward"]})
    moving(r)
    r.node._closing.set()
    r.node._watchdog.join(timeout=2.0)
    t_stall = time.monotonic()
    r.node._last_tick -= 0.5
    # A stall up to STALL_ABORT_S aborts the action and asks again; a longer one (a loaded
    # machine can add to the 0.5 s) ends the instruction. Either way the profile is not resumed.
    st = r.probe.wait_status(lambda s: s.reason.startswith("cmd_vel timer stalled"), 5.0, after=t_stall)
    assert "action aborted" in st.reason or st.state == "stopped", st
    r.probe.wait_cmd(lambda v, w: v == 0.0 and w == 0.0, 2.0, after=t_stall)


def test_a_failing_control_tick_gives_zero_and_a_reason(rig, models):
    r = rig({"model.path": models["forward"]})
    moving(r)

    def broken(now: float):
        raise RuntimeError("injected fault")

    r.node.session.tick = broken  # fault injection: from now on every tick of the real node raises
    t_fault = time.monotonic()
    t_zero = r.probe.wait_cmd(lambda v, w: v == 0.0 and w == 0.0, 5.0, after=t_fault)
    st = r.probe.wait_status(lambda s: "internal error" in s.reason, 5.0, after=t_fault)
    assert st.state == "stopped" and st.reason == "internal error in the cmd_vel tick: RuntimeError: injected fault"
    # The node is still up and keeps publishing zero (never the last velocity): 10 more ticks.
    later = r.probe.wait_cmds(t_zero, 11, 0.5, 10.0)
    assert all(v == 0.0 and w == 0.0 for _t, v, w in later), later
    # The repeating error is one status change, not one per tick (periodic status only).
    t_now = later[-1][0]
    n_status = sum(1 for t, _s in list(r.probe.statuses) if t_zero <= t <= t_now)
    assert n_status <= r.node.cfg.topics.status_rate_hz * (t_now - t_zero) + 3, (n_status, len(later))


def test_garbage_model_text_gives_zero_and_a_reason(rig, models):
    r = rig({"model.path": models["garbage"], "parser.on_unparseable": "stop"})
    r.probe.start_camera(10.0)
    r.probe.instruct("find the red chair")
    st = r.probe.wait_status(lambda s: s.state == "stopped", 30.0)
    assert st.reason.startswith("unparseable model output") and st.raw_text and not st.action
    assert r.probe.actions == [st.raw_text]  # the raw answer went out on the action topic
    assert r.probe.cmds and all(v == 0.0 and w == 0.0 for _t, v, w in r.probe.cmds)


def test_model_timeout_gives_zero_and_a_reason(rig, models):
    # No real model call finishes in 1 ms (vision tower + prefill + decoding): a slow model.
    r = rig({"model.path": models["garbage"], "model.timeout_s": 0.001})
    r.probe.start_camera(10.0)
    r.probe.instruct("find the red chair")
    st = r.probe.wait_status(lambda s: s.state == "stopped", 30.0)
    assert "model timeout" in st.reason and all(v == 0.0 for _t, v, _w in r.probe.cmds)


def test_bad_images_are_skipped_without_a_crash(rig, models):
    import array

    from sensor_msgs.msg import Image

    r = rig({"model.path": models["forward"], "camera.timeout_s": 1.0})
    r.probe.wait_status(lambda s: s.model == "ready", 30.0)
    pub = r.probe.camera_pubs["camera/image_raw"]
    bad = [
        Image(height=4, width=4, encoding="32FC1", step=16, data=array.array("B", bytes(64))),
        Image(height=4, width=4, encoding="rgb8", step=12, data=array.array("B", bytes(10))),
        Image(height=4, width=4, encoding="rgb8", step=2, data=array.array("B", bytes(48))),
        Image(height=0, width=0, encoding="rgb8"),
    ]
    for _ in range(5):
        for msg in bad:
            pub.publish(msg)
        time.sleep(0.05)
    sent = time.monotonic()
    # A status after the last bad frame: nothing accepted, the camera still counts as silent.
    # (Waits on messages, not on a fixed sleep: a loaded 2-core machine can stall a process ~1 s.)
    st = r.probe.wait_status(lambda s: "camera silent" in s.reason, 10.0, after=sent + 0.3)
    assert r.node.worker.alive and st.cameras["camera/image_raw"] is None
    r.probe.wait_cmd(lambda v, w: v == 0.0 and w == 0.0, 10.0, after=time.monotonic())  # still publishing zero
    moving(r)  # good frames afterwards work


def test_compressed_camera_and_twist_stamped(rig, models):
    r = rig({"model.path": models["forward"], "camera.type": "compressed", "cmd_vel.stamped": True,
             "cmd_vel.frame_id": "base_footprint"}, compressed=True, stamped=True)
    moving(r)
    msg = r.probe.cmd_msgs[-1]
    assert msg.header.frame_id == "base_footprint" and msg.twist.linear.x > 0


def test_multi_camera_watchdog_names_the_silent_camera(rig, models):
    topics = ["front/image", "rear/image"]
    r = rig({"model.path": models["forward"], "camera.topics": topics, "camera.model_topic": "rear/image",
             "camera.timeout_s": 1.0}, camera_topics=topics)
    r.probe.start_camera(10.0, topics=["rear/image"])  # the model camera works, the front one is silent
    r.probe.wait_status(lambda s: s.model == "ready", 30.0)  # while loading, the reason says so
    r.probe.instruct("go")
    st = r.probe.wait_status(lambda s: s.instruction == "go" and s.cameras["rear/image"] is not None, 10.0)
    assert st.reason == "camera silent: front/image (no frame yet)" and st.cameras["front/image"] is None
    time.sleep(0.3)
    assert all(v == 0.0 for _t, v, _w in r.probe.cmds)
    r.probe.start_camera(10.0)  # both cameras: motion starts
    r.probe.wait_cmd(lambda v, w: v > 0.1, 10.0)


def test_use_sim_time_without_clock_falls_back_to_the_wall_clock_watchdog(rig, models):
    r = rig({"model.path": models["forward"], "use_sim_time": True})
    r.probe.start_camera(10.0)
    st = r.probe.wait_status(lambda s: "timer stalled" in s.reason, 3.0)
    assert st.state in ("loading", "idle")  # the backup takes over before the model is even loaded
    r.probe.wait_status(lambda s: s.model == "ready", 30.0)
    # The backup keeps publishing zero: at least 10 messages spread over at least 1.5 s (the rate
    # is bench-ros's business, not a test's).
    part = r.probe.wait_cmds(time.monotonic(), 10, 1.5, 15.0)
    assert all(v == 0.0 and w == 0.0 for _t, v, w in part)
    r.probe.instruct("go")  # the model answers, but no ROS timer ever runs the action
    st = r.probe.wait_status(lambda s: s.state == "stopped", 10.0)
    assert "timer stalled" in st.reason and all(v == 0.0 for _t, v, _w in r.probe.cmds)


def test_model_that_fails_to_load_keeps_zero_and_says_why(rig, tmp_path):
    r = rig({"model.path": str(tmp_path / "missing")})
    st = r.probe.wait_status(lambda s: s.state == "error", 10.0)
    assert "model.path" in st.reason and "is not a directory" in st.reason
    r.probe.instruct("go")
    r.probe.wait_status(lambda s: s.instruction == "go", 2.0)
    assert r.probe.cmds and all(v == 0.0 for _t, v, _w in r.probe.cmds)


def test_parameters_file_and_bad_parameters(ctx, tmp_path):
    from rclpy.parameter import Parameter

    from vila_nav.paths import config_dir
    from vila_nav.ros.node import VilaNavNode
    from vila_nav.ros.node_config import NodeConfig
    from vila_nav.ros.params import ParameterError

    node = VilaNavNode(context=ctx, cli_args=["--ros-args", "--params-file", str(config_dir() / "robot.yaml"),
                                              "-p", "limits.max_linear_mps:=1", "-p", "camera.topics:=[a, b]"])
    try:
        expected = NodeConfig()
        assert node.cfg.limits.max_linear_mps == 1.0  # an int on the command line for a float
        assert node.cfg.camera.topics == ["a", "b"]
        assert node.cfg.frames == expected.frames and node.cfg.parser == expected.parser
    finally:
        node.close()
        node.destroy_node()
    with pytest.raises(ParameterError, match="camera.type"):
        VilaNavNode(context=ctx, parameter_overrides=[Parameter("camera.type", value="h264")])
    with pytest.raises(ParameterError, match="cmd_vel.rate_hz"):
        VilaNavNode(context=ctx, parameter_overrides=[Parameter("cmd_vel.rate_hz", value="fast")])


def test_shutdown_publishes_zero(rig, models):
    r = rig({"model.path": models["forward"]})
    moving(r)
    t = time.monotonic()
    r.node.close()  # what main() does on Ctrl-C / SIGTERM before destroying the node
    r.probe.wait_cmd(lambda v, w: v == 0.0 and w == 0.0, 2.0, after=t)
    time.sleep(0.2)
    after = r.probe.cmds_between(t, time.monotonic())
    assert after and after[-1][1] == 0.0 and r.probe.wait_status(lambda s: s.reason == "shutdown", 2.0, after=t)
