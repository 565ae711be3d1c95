"""Generate whole VLN-CE datasets (splits x formats) over the shipped scenes and write them.

Episode k of a split is generated in scene `scenes[k % len(scenes)]` with its own Generator
seeded by (seed, format, split, k), so the output does not depend on the number of worker
processes. Files are written with vila_nav.episodes.save_r2r / save_rxr:
<out>/r2r/<split>/<split>.json.gz (+ _gt), <out>/rxr/<split>/<split>_guide.json.gz (+ _gt).
"""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from vila_nav.episode_gen.config import FORMATS, SPLITS, EpisodeGenConfig
from vila_nav.episodes import Episode

_FORMAT_CODE = {f: i for i, f in enumerate(FORMATS)}
_SPLIT_CODE = {s: i for i, s in enumerate(SPLITS)}


def _generate_group(args: tuple[EpisodeGenConfig, str, str, str, list[int]]) -> list[tuple[int, Episode]]:
    """Worker: episodes `indices` of one split in one scene."""
    from vila_nav.envs.nav_scene import NavScene
    from vila_nav.episode_gen.sampler import _Candidates, sample_episode
    from vila_nav.scenes.store import load_scene

    cfg, fmt, split, scene_id, indices = args
    scene = NavScene(load_scene(scene_id, cfg.sim.scenes_dir or None), cfg.sim)
    cand = _Candidates(scene, cfg.min_clearance_m)
    out = []
    for k in indices:
        rng = np.random.default_rng([cfg.seed, _FORMAT_CODE[fmt], _SPLIT_CODE[split], k])
        out.append((k, sample_episode(scene, cfg, fmt, str(k + 1), rng, cand)))
    return out


def generate_split(cfg: EpisodeGenConfig, fmt: str, split: str, progress: bool = True) -> list[Episode]:
    """All episodes of one format and split, ordered by episode id."""
    from vila_nav.scenes.store import scenes_for_split

    n = cfg.count(fmt, split)
    if n == 0:
        return []
    scenes = scenes_for_split(split, cfg.sim.scenes_dir or None)
    groups: dict[str, list[int]] = defaultdict(list)
    for k in range(n):
        groups[scenes[k % len(scenes)]].append(k)
    jobs = [(cfg, fmt, split, sid, idx) for sid, idx in groups.items()]
    results: list[tuple[int, Episode]] = []
    from tqdm import tqdm

    bar = tqdm(total=n, desc=f"{fmt} {split}", unit="ep", disable=not progress)
    if cfg.workers <= 1:
        for job in jobs:
            part = _generate_group(job)
            results += part
            bar.update(len(part))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # spawn: workers start clean (no inherited GL context or threads), same on every OS
        with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=mp.get_context("spawn")) as pool:
            for part in pool.map(_generate_group, jobs):
                results += part
                bar.update(len(part))
    bar.close()
    return [ep for _, ep in sorted(results, key=lambda t: t[0])]


def write_split(root: str | Path, fmt: str, split: str, episodes: list[Episode]) -> Path:
    """Write one split with the shared VLN-CE savers; returns the episode file."""
    from vila_nav.episodes import build_instruction_vocab, save_r2r, save_rxr

    if fmt == "r2r":
        vocab, episodes = build_instruction_vocab(episodes)
        return save_r2r(Path(root) / "r2r", split, episodes, instruction_vocab=vocab)
    return save_rxr(Path(root) / "rxr", split, episodes, role="guide")


def generate_dataset(cfg: EpisodeGenConfig, progress: bool = True) -> dict[tuple[str, str], dict]:
    """Generate and write every (format, split) of cfg; returns a summary per (format, split)."""
    from vila_nav.paths import sim_dir

    root = Path(cfg.out_dir) if cfg.out_dir else sim_dir() / "episodes"
    summary = {}
    for fmt in cfg.formats:
        for split in cfg.splits:
            t0 = time.perf_counter()
            episodes = generate_split(cfg, fmt, split, progress)
            if not episodes:
                continue
            path = write_split(root, fmt, split, episodes)
            summary[(fmt, split)] = {
                "file": str(path),
                "episodes": len(episodes),
                "scenes": len({e.scene_id for e in episodes}),
                "seconds": time.perf_counter() - t0,
                "mean_geodesic_m": float(np.mean([e.info["geodesic_distance"] for e in episodes])),
                "mean_actions": float(np.mean([len(e.gt.actions) for e in episodes if e.gt])),
                "mean_words": float(np.mean([len(e.instruction.text.split()) for e in episodes])),
            }
    return summary
