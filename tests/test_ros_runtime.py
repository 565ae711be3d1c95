"""vila_nav.ros.runtime.Spinner on real rclpy: a callback that raises is reported, not swallowed,
and does not silence the other callbacks on the same executor."""
from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("rclpy")

pytestmark = [pytest.mark.ros, pytest.mark.timeout(60)]


def test_a_raising_callback_is_reported_and_spinning_goes_on(ctx, capfd):
    from rclpy.node import Node

    from vila_nav.ros.runtime import Spinner

    node = Node("spinner_check", context=ctx)
    ticks: list[float] = []
    raised = threading.Event()

    def bad() -> None:
        if not raised.is_set():
            raised.set()
            raise ValueError("boom from a timer")

    node.create_timer(0.02, bad)
    node.create_timer(0.02, lambda: ticks.append(time.monotonic()))
    spinner = Spinner([node], ctx, num_threads=2)
    try:
        assert raised.wait(10.0)
        t_raise = time.monotonic()
        deadline = t_raise + 10.0
        while time.monotonic() < deadline and sum(t > t_raise + 0.2 for t in ticks) < 5:
            time.sleep(0.01)
        assert sum(t > t_raise + 0.2 for t in ticks) >= 5  # the other timer still runs after the error
    finally:
        with pytest.raises(RuntimeError, match="1 callback.*raised while spinning.*ValueError: boom from a timer"):
            spinner.stop()
        node.destroy_node()
    assert "boom from a timer" in capfd.readouterr().err  # printed when it happened
