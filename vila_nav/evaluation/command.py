"""`vila-nav eval`: evaluate an agent on a VLN-CE split in the embedded simulator.

    vila-nav eval [--print-config] [key=value ...]      (hydra overrides of config/eval.yaml)

Examples:
    vila-nav eval agent.name=oracle dataset.limit=20
    vila-nav eval agent.name=vila agent.model=/models/navila-8b agent.device=cuda
    vila-nav eval dataset.format=rxr dataset.path=/data/RxR_VLNCE_v0 'dataset.languages=[en]'
    vila-nav eval shard.index=0 shard.count=4 output_dir=runs/eval/r2r-vila   (then eval-merge)

Exit status: 0 all episodes evaluated; 1 nothing to evaluate, nothing evaluated, or some
episodes raised (their rows hold the error; rerun to retry); 2 bad configuration; 130 interrupted
(finished episodes are kept; run the same command again to resume).
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from vila_nav.config import command_config
    from vila_nav.episodes import EpisodeFormatError

    from .config import EvalConfig
    from .runner import EvalError, EvalFailed, evaluate, output_dir, resolve_shard
    from .results import ResultsError

    cfg = command_config(EvalConfig, "eval", argv, prog="vila-nav eval", doc=__doc__)
    if isinstance(cfg, int):
        return cfg
    try:
        report = evaluate(cfg)
    except EvalFailed as exc:
        print((exc.report.out_dir / "summary.md").read_text(), end="")
        print(f"vila-nav eval: error: {exc}", file=sys.stderr)
        return 1
    except (EvalError, EpisodeFormatError, ResultsError, FileNotFoundError) as exc:
        print(f"vila-nav eval: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        index, count, _ = resolve_shard(cfg.shard.index, cfg.shard.count)
        print(f"\nvila-nav eval: interrupted; finished episodes are kept in {output_dir(cfg, index, count)}; "
              "run the same command again to resume", file=sys.stderr)
        return 130
    print((report.out_dir / "summary.md").read_text(), end="")
    rate = f", {report.steps_run / report.wall_s:.1f} steps/s" if report.steps_run and report.wall_s > 0 else ""
    print(f"\n{report.episodes_run} episode(s) run now ({report.steps_run} steps in {report.wall_s:.1f} s{rate}); "
          f"results in {report.out_dir}")
    return 0
