"""CommandTimeline: a simulator catching up late integrates each command over its own time."""
from __future__ import annotations

import math
import threading

import pytest

from vila_nav.ros.command_timeline import MAX_DELIVERY_DELAY_S, NOTHING, CommandTimeline, send_time


def test_before_any_command_it_is_zero_and_never_heard():
    tl = CommandTimeline()
    assert tl.at(5.0) == NOTHING and NOTHING.t == -math.inf


def test_each_time_gets_the_command_in_force_then_not_the_newest():
    tl = CommandTimeline()
    tl.push(1.0, 0.0, 1.0)
    tl.push(0.5, 0.1, 2.0)
    tl.push(0.0, 0.0, 3.0)
    assert tl.at(0.5) == NOTHING  # nothing had arrived yet
    assert tl.at(1.0) == (1.0, 0.0, 1.0)  # received at exactly t: in force
    assert tl.at(2.5) == (0.5, 0.1, 2.0)
    assert tl.at(10.0) == (0.0, 0.0, 3.0)


def test_a_late_catch_up_integrates_the_profile_the_node_sent():
    # A node sends 1 m/s for 1 s at 20 Hz, then zero; the simulator stalls for the whole action
    # and replays it afterwards in 30 Hz sub-steps. The distance is the commanded 1 m, where the
    # newest-command rule would integrate the final zero and drive nowhere. (The same holds for a
    # burst from a starved executor, keyed by send time: the simulator stalled with it.)
    tl = CommandTimeline()
    for k in range(20):
        tl.push(1.0, 0.0, 0.05 * k)
    tl.push(0.0, 0.0, 1.0)
    dt = 1.0 / 30.0
    travelled = sum(tl.at((i + 0.5) * dt).linear * dt for i in range(45))
    assert abs(travelled - 1.0) <= dt and tl.late_max_s == 0.0  # nothing came after its time was simulated


def test_reset_forgets_pending_and_current_commands():
    tl = CommandTimeline()
    tl.push(1.0, 0.0, 0.0)
    tl.push(0.5, 0.0, 1.0)
    assert tl.at(0.5).linear == 1.0
    tl.reset()
    assert tl.at(2.0) == NOTHING


def test_a_simulator_that_stopped_stepping_keeps_memory_bounded():
    tl = CommandTimeline(max_pending=4)
    for k in range(10):
        tl.push(float(k), 0.0, float(k))
    assert len(tl._pending) == 4
    assert tl.at(-1.0).linear == 5.0  # the overflow was applied, in order
    assert tl.at(100.0).linear == 9.0


def test_push_from_other_threads_while_the_simulator_reads():
    tl = CommandTimeline()
    n = 2000

    def producer():
        for k in range(n):
            tl.push(float(k), 0.0, float(k))

    th = threading.Thread(target=producer)
    th.start()
    seen = [tl.at(float(k)).linear for k in range(0, n, 7)]
    th.join()
    assert tl.at(float(n)).linear == n - 1
    assert seen == sorted(seen)  # time never runs backwards through the commands


def test_send_time_subtracts_the_delivery_delay_and_distrusts_other_clocks():
    now_ns = 1_700_000_000_000_000_000
    assert send_time(50.0, now_ns - 300_000_000, now_ns) == 50.0 - 0.3  # sent 0.3 s before receipt
    assert send_time(50.0, 0, now_ns) == 50.0  # no timestamp from the middleware
    assert send_time(50.0, now_ns + 10_000_000, now_ns) == 50.0  # "sent in the future": another clock
    too_old = now_ns - int((MAX_DELIVERY_DELAY_S + 1.0) * 1e9)
    assert send_time(50.0, too_old, now_ns) == 50.0


def test_commands_for_times_the_simulator_has_passed_count_as_late():
    # Here only the executor starved: the simulator integrated 0..0.5 s with nothing heard, then the
    # burst arrived. The passed part is lost (reported), the rest still runs at its own times.
    tl = CommandTimeline()
    dt = 0.05
    travelled = sum(tl.at((i + 0.5) * dt).linear * dt for i in range(10))  # up to t = 0.475
    for k in range(20):
        tl.push(1.0, 0.0, 0.05 * k)
    tl.push(0.0, 0.0, 1.0)
    travelled += sum(tl.at((i + 0.5) * dt).linear * dt for i in range(10, 30))
    assert tl.late_max_s == pytest.approx(0.475)  # the first command came into force 0.475 s too late
    assert travelled == pytest.approx(0.5, abs=dt)  # the second half of the drive
    tl.reset()
    assert tl.late_max_s == 0.0


def test_out_of_order_send_times_keep_arrival_order():
    tl = CommandTimeline()
    tl.push(1.0, 0.0, 2.0)
    tl.push(0.5, 0.0, 1.0)  # another publisher's clock is behind: it takes effect after the first
    assert tl.at(1.5) == NOTHING and tl.at(2.0).linear == 0.5
