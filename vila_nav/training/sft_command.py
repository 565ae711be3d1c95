"""`vila-nav build-sft`: navigation SFT data (expert + recovery rollouts) in NaVILA's answer form.

    vila-nav build-sft [--print-config] [key=value ...]      (hydra overrides of config/sft.yaml)

Examples (the package ships only val_unseen episodes: first write train and val_seen next to them
with `vila-nav gen-episodes splits=[train,val_seen]`, or pass dataset.path=<its out_dir>/r2r):
    vila-nav build-sft                                        # train split -> runs/sft/r2r-train
    vila-nav build-sft dataset.split=val_seen recovery.rollouts_per_episode=0 rebalance.target_ratio=0
    vila-nav build-sft dataset.limit=20 output_dir=/tmp/sft-small overwrite=true

Exit status: 0 written; 1 nothing to build or a failure (no partial dataset is left behind);
2 bad configuration; 130 interrupted.
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from vila_nav.config import command_config

    from .sft_config import SftConfig

    cfg = command_config(SftConfig, "sft", argv, prog="vila-nav build-sft", doc=__doc__)
    if isinstance(cfg, int):
        return cfg

    from vila_nav.episodes import EpisodeFormatError
    from vila_nav.evaluation.runner import EvalError

    from .sft_builder import build_sft

    try:
        report = build_sft(cfg)
    except (EvalError, EpisodeFormatError, FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"vila-nav build-sft: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nvila-nav build-sft: interrupted; nothing was written", file=sys.stderr)
        return 130
    m = report.manifest
    c = m["counts"]
    print(f"{c['samples']} samples ({c['weighted_samples']} after rebalancing) from {c['rollouts']} rollouts of "
          f"{c['episodes']} episodes, {c['frames']} frames, {c['bytes'] / 1e6:.1f} MB in {report.wall_s:.1f} s")
    print(f"sources: {m['sources']}; dropped rollouts: {m['stats'].get('dropped', {})}")
    width = max(len(a) for a in m["labels"])
    for answer, n in m["labels"].items():
        print(f"  {answer:<{width}}  {n:>7}  -> {m['labels_weighted'][answer]:>7}")
    print(f"dataset: {report.out_dir}")
    return 0
