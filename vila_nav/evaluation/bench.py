"""`vila-nav bench-eval`: evaluation throughput without a model (steps/s).

    vila-nav bench-eval [--episodes N] [--agents oracle,random] [key=value ...]

Runs the real evaluator (simulator, agent, recorder, metrics, JSONL rows; no plots or videos)
with model-free agents on the shipped val_unseen split into a temporary directory and prints
steps per second for each agent. With the oracle every step also asks the expert for a
shortest-path action, so it is the slowest model-free agent. Target: >= 100 steps/s on 2 CPU
cores. The figures are printed, never asserted.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="vila-nav bench-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=40, help="episodes per agent (first N by id; default 40)")
    p.add_argument("--agents", default="oracle,random", help="comma-separated: oracle, random, forward")
    p.add_argument("overrides", nargs="*", help="hydra overrides of config/eval.yaml (e.g. dataset.split=...)")
    args = p.parse_args(argv)
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    bad = sorted(set(agents) - {"oracle", "random", "forward"})
    if bad or not agents:
        p.error(f"--agents: unknown agent(s) {bad}; choose from oracle, random, forward")

    from vila_nav.config import compose

    from .config import EvalConfig
    from .runner import evaluate

    print(f"bench-eval: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s) visible, "
          f"{args.episodes} episode(s) per agent")
    print("| agent | episodes | steps | wall (s) | steps/s | CPU (s) | steps per CPU-s | SR |")
    print("|---|---|---|---|---|---|---|---|")
    for name in agents:
        with tempfile.TemporaryDirectory(prefix="vila-nav-bench-") as tmp:
            cfg = compose(EvalConfig, "eval", [f"agent.name={name}", f"dataset.limit={args.episodes}",
                                               f"output_dir={tmp}", "progress=false", "plots=false",
                                               "videos=false", *args.overrides])
            t0, c0 = time.perf_counter(), time.process_time()
            report = evaluate(cfg)
            # both include simulator start-up and scene loading; CPU time counts every thread of
            # this process (Mesa's llvmpipe renders with threads) and is robust to a busy machine
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            steps = report.steps_run
            sr = report.summary["aggregate"]["mean"]["sr"]
            print(f"| {name} | {report.episodes_run} | {steps} | {wall:.2f} | {steps / wall:.1f} | "
                  f"{cpu:.2f} | {steps / cpu:.1f} | {100 * (sr or 0):.1f} |")
    return 0
