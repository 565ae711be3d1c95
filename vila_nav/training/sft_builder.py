"""Build a navigation SFT dataset from VLN-CE episodes (`vila-nav build-sft`).

    report = build_sft(cfg)          # cfg: SftConfig

For every episode (sorted by id, `dataset.limit` applies): one clean expert rollout
(`expert=true`), `recovery.rollouts_per_episode` perturbed ones and, with `dagger.model`,
`dagger.rollouts_per_episode` rollouts driven partly by that model (rollout.py; with
`dagger.label_model_decisions` its own decisions are recorded too), each with its
own RNG seeded by (seed, episode id, rollout index), so the data does not depend on episode
order. Rollouts whose expert does not end within `expert_radius_m` of the goal, and episodes
the simulator rejects (ValueError, e.g. a start inside a wall; logged), are dropped and counted
in the manifest's stats. Then label rebalancing weights (rebalance.py) are computed
over all samples, and the dataset is written in the format of store.py (frames squashed to
frame_size, PNG or raw, manifest with label histograms before / after rebalancing, the config,
the generator version and SHA-256 of every file). With `workers` > 1 the rollouts run in spawned
simulator processes and are written in episode order: the dataset is byte-identical.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Sequence

from vila_nav.training.sft_config import SftConfig

log = logging.getLogger(__name__)

GENERATOR = "vila_nav.training.sft_builder/1"


@dataclasses.dataclass
class SftReport:
    out_dir: Path
    manifest: dict
    wall_s: float


def output_dir(cfg: SftConfig) -> Path:
    """The configured output directory, or runs/sft/<format>-<split>."""
    if cfg.output_dir:
        return Path(cfg.output_dir).expanduser()
    return Path("runs") / "sft" / f"{cfg.dataset.format}-{cfg.dataset.split}"


@dataclasses.dataclass
class _Outcome:
    """One rollout as the writer needs it (picklable: it comes back from worker processes)."""

    source: str  # "expert" | "recovery" | "dagger"
    dropped: str  # "" = kept, else the reason
    primitives: int
    perturbations: int
    frames: Any = None  # EncodedFrames when kept and there are decisions
    decisions: list = dataclasses.field(default_factory=list)


def _episode_rollouts(env: Any, episode: Any, cfg: SftConfig) -> list[_Outcome]:
    """The expert and recovery rollouts of one episode, frames squashed and encoded."""
    from vila_nav.training.rollout import Perturbation, rollout_rng, run_rollout
    from vila_nav.training.store import encode_rollout

    rc = cfg.recovery
    perturbation = Perturbation(rc.perturb_prob, rc.max_perturbations, rc.max_primitives, rc.min_decisions_before)
    common = dict(expert_radius_m=cfg.expert_radius_m, max_steps=cfg.sim.max_steps, max_merge=cfg.max_merge,
                  forward_step=cfg.sim.forward_step_m, turn_step=cfg.sim.turn_angle_deg,
                  face_goal_deg=cfg.face_goal_deg)
    runs = ([("expert", None)] if cfg.expert else []) + [("recovery", k + 1) for k in range(rc.rollouts_per_episode)]
    if cfg.dagger.enabled:
        runs += [("dagger", DAGGER_RNG_OFFSET + k) for k in range(cfg.dagger.rollouts_per_episode)]
    out: list[_Outcome] = []
    for source, k in runs:
        try:
            if k is None:
                r = run_rollout(env, episode, **common)
            elif source == "dagger":
                policy = _policy(cfg)
                policy.start(episode.instruction.text)
                r = run_rollout(env, episode, policy=policy, policy_prob=cfg.dagger.policy_prob,
                                label_policy=cfg.dagger.label_model_decisions,
                                rng=rollout_rng(cfg.seed, episode.episode_id, k), **common)
            else:
                r = run_rollout(env, episode, perturbation=perturbation,
                                rng=rollout_rng(cfg.seed, episode.episode_id, k), **common)
        except ValueError as exc:  # an episode the simulator rejects (e.g. start not navigable)
            log.warning("episode %s skipped: %s", episode.episode_id, exc)
            return out + [_Outcome(source, "invalid_episode", 0, 0)]
        # A rollout whose labels all come from look-aheads at states it reached keeps them even
        # when its learner ran out of steps (rollout.py); any other failed rollout is dropped.
        usable = r.ok or (source == "dagger" and cfg.dagger.label_model_decisions and r.reason == "max_steps")
        o = _Outcome(source, "" if usable else r.reason, len(r.executed), len(r.perturbed_steps))
        if not usable:
            log.debug("episode %s %s rollout dropped: %s (%.2f m from the goal)",
                      episode.episode_id, source, r.reason, r.final_distance_m)
        elif r.decisions:  # a recovery rollout may have no perturbation at all
            o.frames = encode_rollout(r.frames, cfg.frame_size, cfg.frame_encoding)
            o.decisions = list(r.decisions)
        out.append(o)
    return out


_WORKER_ENV: Any = None
_POLICY: tuple[tuple, Any] | None = None  # (what it was built from, ModelPolicy) of this process
DAGGER_RNG_OFFSET = 1000  # rollout index of dagger rollout k: independent of the recovery seeds


def _policy(cfg: SftConfig):
    """This process's ModelPolicy for cfg.dagger.model (loaded once)."""
    global _POLICY
    d = cfg.dagger
    key = (d.model, d.device, d.quantization, d.on_turn_reversal, cfg.sim.forward_step_m, cfg.sim.turn_angle_deg)
    if _POLICY is None or _POLICY[0] != key:
        from vila_nav.actions import ParserConfig
        from vila_nav.model import load
        from vila_nav.training.policy import ModelPolicy

        model = load(d.model, device=d.device, quantization=d.quantization)
        _POLICY = (key, ModelPolicy(model, ParserConfig(on_turn_reversal=d.on_turn_reversal),
                                    cfg.sim.forward_step_m, cfg.sim.turn_angle_deg))
    return _POLICY[1]


def _init_worker(sim_cfg: Any) -> None:
    import atexit

    import torch

    from vila_nav.envs import make_env

    torch.set_num_threads(1)  # one simulator (and dagger model) per core
    global _WORKER_ENV
    _WORKER_ENV = make_env(sim_cfg)
    atexit.register(_WORKER_ENV.close)


def _work(job: tuple[SftConfig, list[Any]]) -> list[list[_Outcome]]:
    cfg, episodes = job
    return [_episode_rollouts(_WORKER_ENV, ep, cfg) for ep in episodes]


def _outcomes(cfg: SftConfig, episodes: Sequence[Any], env: Any) -> Iterator[list[_Outcome]]:
    """Per episode, in order: in this process, or in cfg.workers spawned processes (same output:
    every rollout has its own seed and the simulator is deterministic)."""
    if cfg.workers <= 1:
        for ep in episodes:
            yield _episode_rollouts(env, ep, cfg)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(1, min(8, len(episodes) // (4 * cfg.workers)))
    jobs = [(cfg, list(episodes[i : i + chunk])) for i in range(0, len(episodes), chunk)]
    # spawn: workers start clean (no inherited GL context or threads), the same on every OS
    with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(cfg.sim,)) as pool:
        for part in pool.map(_work, jobs):
            yield from part


def build_sft(cfg: SftConfig, episodes: Sequence[Any] | None = None, env: Any = None) -> SftReport:
    """Roll out, label, rebalance and write; see the module docstring.

    episodes: use these instead of loading `cfg.dataset`; env: an open NavEnv to use with
    workers <= 1 (else one is made from cfg.sim and closed at the end).
    """
    from vila_nav.training.rebalance import rebalance_weights
    from vila_nav.training.store import SftWriter, read_manifest

    t0 = time.perf_counter()
    if episodes is None:
        from vila_nav.evaluation.runner import select_episodes

        episodes = select_episodes(cfg.dataset)
    own_env = env is None and cfg.workers <= 1
    if own_env:
        from vila_nav.envs import make_env

        env = make_env(cfg.sim)
    writer = SftWriter(output_dir(cfg), num_frames=cfg.num_frames, frame_size=cfg.frame_size,
                       encoding=cfg.frame_encoding, shard_rollouts=cfg.shard_rollouts, overwrite=cfg.overwrite)
    stats: dict[str, Counter] = {"rollouts": Counter(), "dropped": Counter(), "primitives": Counter(),
                                 "perturbations": Counter()}
    try:
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(episodes), desc="build-sft", unit="episode", dynamic_ncols=True)
        for episode, outcomes in zip(episodes, _outcomes(cfg, episodes, env)):
            for o in outcomes:
                stats["primitives"][o.source] += o.primitives
                stats["perturbations"][o.source] += o.perturbations
                if o.dropped:
                    stats["dropped"][f"{o.source}:{o.dropped}"] += 1
                    continue
                stats["rollouts"][o.source] += 1
                if o.frames is not None:
                    writer.add_encoded(episode, o.frames, o.decisions)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        answers = [row["answer"] for shard in writer.rows for row in shard]
        weights = rebalance_weights(answers, cfg.rebalance.target_ratio, cfg.rebalance.max_repeat, cfg.seed)
        summary: dict[str, Any] = {k: dict(sorted(v.items())) for k, v in stats.items()}
        summary["episodes_in"] = len(episodes)  # (no timings or worker count: the manifest is reproducible)
        config = json.loads(json.dumps(dataclasses.asdict(cfg)))
        config.pop("workers", None)
        config.pop("progress", None)
        path = writer.finish(weights, config=config, stats=summary, generator=GENERATOR)
    except BaseException:
        writer.abort()
        raise
    finally:
        if own_env:
            env.close()
    return SftReport(path, read_manifest(path), time.perf_counter() - t0)
