"""`vila-nav bench-ros`: the ROS loop's figures, measured on loopback, printed as markdown.

Runs what `ros2 launch vila_nav sim.launch.py` runs: vila_nav_sim_bridge and vila_nav_node as
separate processes, plus a probe node in this process that sends the instruction and records
every cmd_vel and status message as a robot base would receive them. Then reports:

- cmd_vel rate and jitter (|inter-arrival - period|, p50 / p95) over the whole instruction and
  over the spans where the model is thinking (inference running on the worker thread);
- instruction-to-first-motion latency (instruction published -> first non-zero cmd_vel);
- decision latency in the loop (status executing -> thinking -> executing: the robot's pause
  between two actions) and the model call latency alone (status decision_latency_s), p50 / p95;
- CPU (% of one core, averaged over the instruction) and peak RSS of the node process;
- e-stop latency: e-stop published while the robot moves -> zero cmd_vel received, p50 / max
  over --estops trials (each: a new instruction, wait for motion, e-stop, release).

Model: by default a real tiny checkpoint with a known answer (vila_nav.model.testing: "move
forward 75 cm" every time, so the robot moves), or --model PATH (e.g. the shipped model or a
NaVILA checkpoint; then its own answers drive the robot). The episode is a straight line in a
shipped scene (vila_nav.ros.testing.make_straight_episode). Figures depend on the machine: the
command prints what it ran on.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vila-nav bench-ros", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="", help="model directory (default: a checkpoint of the shipped model's size "
                    "that always says 'move forward 75 cm')")
    ap.add_argument("--size", default="small", choices=("tiny", "small"), help="size of the default checkpoint")
    ap.add_argument("--queries", type=int, default=6, help="model decisions in the measured instruction (default 6)")
    ap.add_argument("--rate", type=float, default=20.0, help="cmd_vel rate in Hz (default 20)")
    ap.add_argument("--device", default="cpu", help="model device (default cpu)")
    ap.add_argument("--quantization", default="none", help="none | int8 | int4 | nf4")
    ap.add_argument("--estops", type=int, default=10, help="e-stop latency trials (default 10)")
    return ap


def _pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def _jitter(times: list[float], period: float) -> tuple[float, float, float]:
    """(rate Hz, jitter p50 ms, jitter p95 ms) of message arrival times."""
    if len(times) < 3:
        return float("nan"), float("nan"), float("nan")
    dt = np.diff(np.asarray(times))
    dev = np.abs(dt - period) * 1000.0
    return (len(times) - 1) / (times[-1] - times[0]), _pct(dev, 50), _pct(dev, 95)


def _estop_trial(probe, i: int) -> float:
    """One e-stop while moving: ms from publishing the e-stop to receiving zero cmd_vel."""
    t0 = time.monotonic()
    probe.instruct(f"walk straight ahead (e-stop trial {i + 1})")
    probe.wait_cmd(lambda v, w: abs(v) > 1e-6 or abs(w) > 1e-6, 120.0, after=t0)
    t_pub = time.monotonic()
    probe.estop(True)
    t_zero = probe.wait_cmd(lambda v, w: v == 0.0 and w == 0.0, 5.0, after=t_pub)
    probe.wait_status(lambda s: s.state == "estop", 5.0, after=t_pub)
    probe.estop(False)
    probe.wait_status(lambda s: s.state != "estop", 5.0, after=t_zero)
    return 1000.0 * (t_zero - t_pub)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        from vila_nav.ros.probe import Probe
        from vila_nav.ros.runtime import Spinner, init, shutdown
    except RuntimeError as exc:
        print(f"vila-nav bench-ros: {exc}", file=sys.stderr)
        return 2
    import psutil

    from vila_nav.model.testing import make_answering_checkpoint
    from vila_nav.ros.testing import make_straight_episode

    domain = os.getpid() % 200 + 20
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
    with tempfile.TemporaryDirectory(prefix="vila_nav_bench_ros_") as tmp:
        root = Path(tmp)
        _episode, distance = make_straight_episode(root / "r2r", length_m=(3.0, 8.0))
        model = args.model or str(make_answering_checkpoint(root / "model", base=args.size))
        logs = {n: open(root / f"{n}.log", "w") for n in ("bridge", "node")}
        bridge = subprocess.Popen([sys.executable, "-m", "vila_nav.ros.sim_bridge", "--ros-args",
                                   "-p", f"episode.dataset_path:={root / 'r2r'}", "-p", "episode.max_time_s:=600.0"],
                                  env=env, stdout=logs["bridge"], stderr=subprocess.STDOUT)
        node = subprocess.Popen([sys.executable, "-m", "vila_nav.ros.node", "--ros-args",
                                 "-p", f"model.path:={model}", "-p", f"model.device:={args.device}",
                                 "-p", f"model.quantization:={args.quantization}",
                                 "-p", f"run.max_queries:={args.queries}", "-p", f"cmd_vel.rate_hz:={args.rate}",
                                 "-p", "camera.width:=224", "-p", "camera.height:=224"],
                                env=env, stdout=logs["node"], stderr=subprocess.STDOUT)
        context = init(domain_id=domain)
        probe = Probe(context=context)
        spinner = Spinner([probe], context, num_threads=2)
        try:
            probe.wait_status(lambda s: s.model == "ready", 300.0)
            proc = psutil.Process(node.pid)
            time.sleep(1.0)  # camera frames flowing, watchdogs fed
            proc.cpu_percent(None)
            t_instr = time.monotonic()
            probe.instruct("walk straight ahead and stop in front of you")
            t_move = probe.wait_cmd(lambda v, w: abs(v) > 1e-6 or abs(w) > 1e-6, 120.0, after=t_instr)
            rss = [proc.memory_info().rss]
            end = None
            while end is None:
                rss.append(proc.memory_info().rss)
                try:
                    end = probe.wait_status(lambda s: s.finished and s.generation >= 1, 0.5, after=t_instr)
                except TimeoutError:
                    continue
            t_end = time.monotonic()
            cpu = proc.cpu_percent(None)
            estop_ms = [_estop_trial(probe, i) for i in range(args.estops)]
        except TimeoutError as exc:
            for f in logs.values():
                f.flush()
            print(f"vila-nav bench-ros: {exc}\n" + (root / "node.log").read_text()[-3000:], file=sys.stderr)
            return 1
        finally:
            spinner.stop()
            probe.destroy_node()
            shutdown(context)
            for p in (node, bridge):
                p.send_signal(2)
            for p in (node, bridge):
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()

    period = 1.0 / args.rate
    cmds = probe.cmds_between(t_instr, t_end)
    times = [t for t, _v, _w in cmds]
    rate, j50, j95 = _jitter(times, period)
    # thinking spans from the status stream (receive times)
    spans, start = [], None
    statuses = [(t, s) for t, s in probe.statuses if t_instr <= t <= t_end]
    for t, s in statuses:
        if s.state == "thinking" and start is None:
            start = t
        elif s.state != "thinking" and start is not None:
            spans.append((start, t))
            start = None
    thinking_times = [t for t in times if any(a <= t < b for a, b in spans)]
    think_rate = len(thinking_times) / sum(b - a for a, b in spans) if spans else float("nan")
    # decision latency in the loop: action finished (status executing -> thinking) to the next
    # action started (thinking -> executing); the robot holds zero velocity meanwhile
    pauses, prev, since = [], None, None
    for t, s in statuses:
        if s.state == "thinking" and prev == "executing":
            since = t
        elif s.state == "executing" and prev == "thinking" and since is not None:
            pauses.append(t - since)
            since = None
        prev = s.state
    model_lat, last_lat = [], None
    for _t, s in statuses:  # one entry per answer: the latency changes when an answer arrives
        if s.decision_latency_s is not None and s.decision_latency_s != last_lat:
            model_lat.append(s.decision_latency_s)
        last_lat = s.decision_latency_s

    rows = [
        ("cmd_vel rate, whole instruction", f"{rate:.2f} Hz of {args.rate:g} ({100 * rate / args.rate:.1f} %)"),
        ("cmd_vel rate while the model thinks", f"{think_rate:.2f} Hz ({100 * think_rate / args.rate:.1f} %)"),
        ("cmd_vel jitter p50 / p95", f"{j50:.1f} / {j95:.1f} ms"),
        ("instruction -> first motion", f"{1000 * (t_move - t_instr):.0f} ms"),
        ("decision latency in the loop p50 / p95 (robot paused)", f"{1000 * _pct(pauses, 50):.0f} / {1000 * _pct(pauses, 95):.0f} ms ({len(pauses)} pauses)"),
        ("model call p50 / p95", f"{1000 * _pct(model_lat, 50):.0f} / {1000 * _pct(model_lat, 95):.0f} ms ({len(model_lat)} calls)"),
        ("node CPU (average, % of one core)", f"{cpu:.0f} %"),
        ("node memory (peak RSS)", f"{max(rss) / 2**20:.0f} MiB"),
        ("e-stop -> zero cmd_vel p50 / max", f"{_pct(estop_ms, 50):.0f} / {max(estop_ms, default=float('nan')):.0f} ms ({len(estop_ms)} trials)"),
        ("instruction result", f"{end.state}: {end.reason} ({end.queries} decisions, {t_end - t_instr:.1f} s)"),
    ]
    what = args.model or f"{args.size} answering checkpoint (real VILA architecture, always 'move forward 75 cm')"
    print(f"\n## vila-nav bench-ros\n\nmodel: {what}, "
          f"device {args.device}, quantization {args.quantization}; cmd_vel {args.rate:g} Hz; camera 10 Hz 224x224; "
          f"straight {distance:.1f} m episode; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print("| figure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    return 0
