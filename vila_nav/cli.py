"""`vila-nav`: one command line for every tool.

Each sub-command lives in its own module and is imported only when used, so `vila-nav instruct`
starts without torch and `vila-nav eval` without rclpy. Hydra-backed commands take `key=value`
overrides after their own flags.
"""
from __future__ import annotations

import importlib
import sys

# name -> ("module:function", one-line help). The function takes argv (list[str]) and returns an
# exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("vila_nav.demo:main", "offline end-to-end demo of what the package does"),
    "gen-episodes": ("vila_nav.episode_gen.gen_episodes:main", "generate VLN-CE R2R/RxR episodes for the embedded scenes"),
    "gen-scenes": ("vila_nav.scenes.gen_scenes:main", "generate the embedded simulator's scene specs (sim/scenes/)"),
    "bench-sim": ("vila_nav.envs.bench_sim:main", "benchmark the embedded simulator: steps/s at 224x224, reset time"),
    "bench-expert": ("vila_nav.episode_gen.bench_expert:main", "the shortest-path expert's routes as labels: SR, SPL, answer histogram"),
    "ask": ("vila_nav.model.ask:main", "one NaVILA decision from images or a video: model text + parsed action"),
    "average-checkpoints": ("vila_nav.model.average:main", "the uniform weight average of several checkpoints of one run, as a new checkpoint"),
    "bench-model": ("vila_nav.model.bench:main", "benchmark the VILA model: latency, cache, quantization, 8B arithmetic"),
    "eval": ("vila_nav.evaluation.command:main", "evaluate an agent on a VLN-CE split in the simulator (hydra overrides)"),
    "eval-merge": ("vila_nav.evaluation.merge:main", "merge sharded evaluation results into one run"),
    "eval-table": ("vila_nav.evaluation.compare:main", "several evaluation summaries in one markdown table"),
    "bench-eval": ("vila_nav.evaluation.bench:main", "evaluation steps/s with model-free agents (oracle, random)"),
    "build-sft": ("vila_nav.training.sft_command:main", "navigation SFT data from expert + recovery rollouts (hydra overrides)"),
    "train": ("vila_nav.training.train_command:main", "train / fine-tune the VILA model on SFT data with accelerate (hydra overrides)"),
    "probe-instruction": ("vila_nav.training.probe:main", "does a model read the instruction? P(answer) with its own vs a swapped one"),
    "bench-train": ("vila_nav.training.bench:main", "training samples/s and decision latency of a model size (figures only)"),
    "instruct": ("vila_nav.ros.instruct:main", "send a navigation instruction to vila_nav_node (--follow to watch it)"),
    "status": ("vila_nav.ros.status_cli:main", "print vila_nav_node's state (--watch to follow)"),
    "bench-ros": ("vila_nav.ros.bench:main", "benchmark the ROS loop: cmd_vel rate/jitter, latencies, CPU, memory"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: vila-nav COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_t, help_) in sorted(COMMANDS.items())]
    lines += ["", "Run `vila-nav COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"vila-nav: unknown command '{name}'\n\n{_usage()}", file=sys.stderr)
        return 2
    target, _help = COMMANDS[name]
    module, func = target.split(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
