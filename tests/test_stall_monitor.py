"""The ROS tests' stall monitor (tests/stall_monitor.py): it sees a real stall, names where the
threads were, and reading stacks while threads start and end does not crash the process."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from stall_monitor import StallMonitor, thread_stacks


def test_a_stopped_process_is_a_stall_with_the_stacks_as_it_ended():
    monitor = StallMonitor(stall_s=1.0).start()
    # A real stall: a child stops this whole process (SIGSTOP) for 1.5 s, then lets it go on.
    child = subprocess.Popen(["sh", "-c", f"sleep 0.2; kill -STOP {os.getpid()}; sleep 1.5; kill -CONT {os.getpid()}"])
    child.wait()
    time.sleep(0.2)  # the monitor's first wake-up after the stall
    monitor.stop()
    assert monitor.count == 1, monitor.report()
    _at, length, stacks = monitor.stalls[0]
    assert 1.4 <= length < 5.0
    assert "test_a_stopped_process_is_a_stall_with_the_stacks_as_it_ended" in stacks  # the main thread
    assert "thread stall-monitor" not in stacks  # its own stack says nothing
    assert "1 process stall(s) of >= 1.0 s" in monitor.report()


def test_no_stall_no_report():
    monitor = StallMonitor(stall_s=1.0).start()
    time.sleep(0.3)
    monitor.stop()
    assert monitor.count == 0 and monitor.report() == "no process stalls of >= 1.0 s"


def test_reading_stacks_while_threads_start_and_end_is_safe():
    # The workload that makes faulthandler.dump_traceback_later crash CPython at once: threads
    # starting, recursing and ending while another thread reads every stack. The monitor reads
    # them at every wake-up here (stall_s=0), in a child process so a crash could not take pytest.
    code = f"""
import sys, threading, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from stall_monitor import StallMonitor
def rec(k):
    return 0 if k == 0 else rec(k - 1) + 1
def work():
    for _ in range(50):
        rec(30)
monitor = StallMonitor(stall_s=0.0, period_s=0.001, keep=10**6).start()
end = time.monotonic() + 2.0
while time.monotonic() < end:
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
monitor.stop()
assert monitor.count > 100, monitor.count
print("ok", monitor.count)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.startswith("ok"), (res.returncode, res.stderr[-2000:])


def test_thread_stacks_names_threads():
    ready, done = threading.Event(), threading.Event()

    def parked():
        ready.set()
        done.wait()

    t = threading.Thread(target=parked, name="parked-thread")
    t.start()
    ready.wait()
    try:
        text = thread_stacks()
    finally:
        done.set()
        t.join()
    assert "thread parked-thread:" in text and "in parked" in text and "thread MainThread:" in text
