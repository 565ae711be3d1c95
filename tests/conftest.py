"""Fixtures shared by the test modules."""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

_domains = itertools.count()


@pytest.fixture(scope="module")
def ros_domain():
    """A ROS 2 domain of this test module's own, so no module's nodes (the end-to-end tests' child
    processes among them) ever match another module's topics, whose traffic some tests time."""
    return (os.getpid() + 37 * next(_domains)) % 200 + 20


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's model code on one torch thread: on a shared 2-core CPU, threads waiting on
    each other make tiny models tens of times slower."""
    from vila_nav.model.testing import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """Factory: a tiny random checkpoint in NaVILA's released layout, one folder per call."""
    from vila_nav.model.testing import make_tiny_checkpoint

    def make(seed: int = 0, **overrides):
        return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=seed, **overrides)

    return make


@pytest.fixture(scope="module")
def answering_checkpoint(tmp_path_factory):
    """Factory: a real tiny checkpoint whose greedy answer is always `answer`
    (vila_nav.model.testing.make_answering_checkpoint), built once per module per arguments."""
    from vila_nav.model.testing import make_answering_checkpoint

    built = {}

    def make(answer: str, seed: int = 0, **preset):
        key = (answer, seed, tuple(sorted(preset.items())))
        if key not in built:
            built[key] = make_answering_checkpoint(tmp_path_factory.mktemp("answering") / "ckpt", answer, seed=seed, **preset)
        return built[key]

    return make


@pytest.fixture(scope="module")
def ctx(ros_domain):
    """An rclpy context on the module's own domain (needs rclpy: the ros extra or a system ROS)."""
    from vila_nav.ros.runtime import init, shutdown

    context = init(domain_id=ros_domain)
    yield context
    shutdown(context)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (item.rep_call ...) for fixtures that act on failure."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(autouse=True)
def _ros_stall_report(request):
    """For `ros` tests: record the process's stalls of >= 1 s (tests/stall_monitor.py) and print
    them, with every thread's stack, when the test fails. The ROS tests wait for real messages;
    when one times out on a loaded machine, this tells a stalled process (and where it was) from a
    silent node."""
    if request.node.get_closest_marker("ros") is None:
        yield
        return
    from stall_monitor import StallMonitor

    monitor = StallMonitor(stall_s=1.0).start()
    try:
        yield
    finally:
        monitor.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(monitor.report())


@pytest.fixture(scope="module")
def env_vars(ros_domain):
    """Environment for ROS child processes: this module's domain, loopback only, unbuffered logs."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(ros_domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_LOCALHOST_ONLY="1", PYTHONUNBUFFERED="1")
    return env


class Procs:
    """Child processes (ROS executables), stopped with SIGINT like ros2 launch does."""

    def __init__(self, env: dict, logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        p = subprocess.Popen([sys.executable, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, p, log))
        return p

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def stop(self) -> None:
        for _name, p, _log in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for _name, p, log in self.procs:
            self._reap(p)
            log.close()

    def stop_one(self, p: subprocess.Popen) -> None:
        """SIGINT one child now and wait for it (killed after 10 s); its log stays open until stop()."""
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        self._reap(p)

    @staticmethod
    def _reap(p: subprocess.Popen) -> None:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture
def procs(env_vars, tmp_path):
    pr = Procs(env_vars, tmp_path)
    yield pr
    pr.stop()
