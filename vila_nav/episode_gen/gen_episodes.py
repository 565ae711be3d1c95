"""`vila-nav gen-episodes`: write VLN-CE R2R/RxR episode datasets for the embedded scenes.

    vila-nav gen-episodes                                   # the shipped demo set: val_unseen
    vila-nav gen-episodes splits=[train,val_seen] out_dir=/data/vila_nav_episodes workers=2
    vila-nav gen-episodes formats=[r2r] r2r_episodes.train=10000 splits=[train] out_dir=...

Writes <out_dir>/r2r/<split>/<split>.json.gz + <split>_gt.json.gz and
<out_dir>/rxr/<split>/<split>_guide.json.gz + <split>_guide_gt.json.gz. train and val_seen use
the train scenes, val_unseen the held-out scenes (sim/scenes/splits.json).
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    """Entry point: hydra overrides of EpisodeGenConfig (key=value)."""
    from vila_nav.config import command_config
    from vila_nav.episode_gen.config import EpisodeGenConfig

    cfg = command_config(EpisodeGenConfig, "gen_episodes", argv, prog="vila-nav gen-episodes", doc=__doc__)
    if isinstance(cfg, int):
        return cfg
    from vila_nav.episode_gen.dataset import generate_dataset

    summary = generate_dataset(cfg)
    if not summary:
        print("vila-nav gen-episodes: nothing to generate (all requested counts are 0)", file=sys.stderr)
        return 1
    for (fmt, split), s in summary.items():
        print(f"{fmt} {split}: {s['episodes']} episodes in {s['scenes']} scenes, {s['seconds']:.1f} s "
              f"({s['seconds'] / s['episodes'] * 1000:.0f} ms/episode); mean geodesic {s['mean_geodesic_m']:.2f} m, "
              f"{s['mean_actions']:.1f} actions, {s['mean_words']:.0f} words -> {s['file']}")
    return 0
