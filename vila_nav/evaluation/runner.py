"""The evaluation loop: episodes -> agent in the simulator -> per-episode rows -> summary.

    report = evaluate(cfg)        # cfg: EvalConfig

What it guarantees:
- Every finished episode is appended to `<out>/results.jsonl` and flushed before the next starts;
  an interruption loses at most the episode in progress.
- resume=true skips episodes already in results.jsonl (a truncated last line is dropped and
  logged; episodes that ended with an error are retried). The stored run.json must match the
  configuration (same dataset, agent, simulator, shard...), else it refuses.
- Sharding: episodes are sorted by id (numeric ids numerically) and episode i goes to shard
  i % count; a shard writes to `<out>/shard-<i>-of-<n>/`; `vila-nav eval-merge` joins them.
  Within a shard episodes run grouped by scene (rows are appended in that order; the report
  and merged files are sorted by id). Every result is independent of order and sharding.
- An exception inside one episode is recorded in its row ("error") and the run goes on; the
  run then ends with EvalFailed (non-zero exit), after writing everything else.
- Nothing to evaluate (empty dataset or shard) or nothing evaluated is an EvalError before any
  result file is written; summary.json is only written when at least one episode succeeded.
- Metrics come from a TrajectoryRecorder fed with the recorded positions and geodesic
  distances, never from simulator state after the fact.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import shutil
import time
import traceback
from pathlib import Path
from typing import Any, Mapping, Sequence

from vila_nav.episodes import Episode, load_episodes
from vila_nav.metrics import TrajectoryRecorder, aggregate

from .agents import PRIMITIVES, Agent
from .results import (
    RESULTS,
    RUN_JSON,
    SUMMARY_JSON,
    SUMMARY_MD,
    ResultsError,
    ResultsWriter,
    read_rows,
    rewrite_rows,
    summary_markdown,
    write_json,
    write_text,
)

log = logging.getLogger(__name__)

_PRIMITIVE_IDS = {p: i for i, p in enumerate(PRIMITIVES)}
_ROUND = 4  # decimals (0.1 mm) of the trajectory/distances stored in rows; metrics are unrounded
# Config sections that must match for a resume (the others only change outputs or verbosity).
_RESUME_KEYS = ("dataset", "sim", "agent", "history", "parser", "shard")
_SPEED_ONLY = {"agent": ("num_threads",)}  # settings a resumed run may change: how fast, not what runs


class EvalError(RuntimeError):
    """The evaluation cannot run or produced nothing (clear message; non-zero exit)."""


class EvalFailed(RuntimeError):
    """The run finished but some episodes raised; their rows hold the errors."""

    def __init__(self, message: str, report: "EvalReport"):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class EvalReport:
    out_dir: Path
    summary: dict
    rows: list[dict]
    episodes_run: int  # episodes run by this invocation (not skipped by resume)
    steps_run: int
    wall_s: float


# ---- episode selection and sharding -----------------------------------------------------------


def episode_sort_key(episode_id: str) -> tuple[int, int, str]:
    """Stable order: numeric ids numerically first, then other ids as strings."""
    return (0, int(episode_id), "") if episode_id.isdigit() else (1, 0, episode_id)


def dataset_path(cfg_dataset: Any) -> Path:
    """The configured dataset location, or the shipped `sim/episodes/<format>`."""
    if cfg_dataset.path:
        return Path(cfg_dataset.path).expanduser()
    from vila_nav.paths import sim_dir

    return sim_dir() / "episodes" / cfg_dataset.format


def select_episodes(cfg_dataset: Any) -> list[Episode]:
    """Load the split, sort by id, apply `limit`. Raises EvalError if nothing is left."""
    path = dataset_path(cfg_dataset)
    languages = tuple(cfg_dataset.languages) if cfg_dataset.languages is not None else None
    episodes = load_episodes(cfg_dataset.format, path, cfg_dataset.split, languages, cfg_dataset.role)
    episodes = sorted(episodes, key=lambda e: episode_sort_key(e.episode_id))
    if cfg_dataset.limit is not None:
        episodes = episodes[: cfg_dataset.limit]
    if not episodes:
        lang = f" with languages {list(languages)}" if languages is not None else ""
        raise EvalError(f"no episodes to evaluate: {cfg_dataset.format} split '{cfg_dataset.split}' at {path}{lang} is empty")
    return episodes


def resolve_shard(index: int | None, count: int | None, environ: Mapping[str, str] | None = None) -> tuple[int, int, str]:
    """(index, count, source): from the config, else from launcher environment variables.

    torchrun: RANK/WORLD_SIZE; SLURM arrays: SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of
    SLURM_ARRAY_TASK_COUNT; srun: SLURM_PROCID/SLURM_NTASKS. Nothing set: (0, 1).
    """
    env = os.environ if environ is None else environ
    if index is not None and count is not None:
        return int(index), int(count), "config"

    def pair(i_var: str, n_var: str, offset: int = 0) -> tuple[int, int, str] | None:
        if i_var in env and n_var in env:
            try:
                i, n = int(env[i_var]) - offset, int(env[n_var])
            except ValueError as exc:
                raise EvalError(f"shard from ${i_var}/${n_var}: not integers ({env[i_var]!r}, {env[n_var]!r})") from exc
            if not 0 <= i < n:
                raise EvalError(f"shard from ${i_var}/${n_var}: need 0 <= index < count, got {i} of {n}")
            return i, n, f"${i_var}/${n_var}"
        return None

    found = pair("RANK", "WORLD_SIZE")
    if found is None and "SLURM_ARRAY_TASK_ID" in env:
        found = pair("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", int(env.get("SLURM_ARRAY_TASK_MIN", "0") or 0))
    if found is None:
        found = pair("SLURM_PROCID", "SLURM_NTASKS")
    return found if found is not None else (0, 1, "default")


def shard_episodes(episodes: Sequence[Episode], index: int, count: int) -> list[Episode]:
    """Episode i of the (already sorted) list belongs to shard i % count."""
    return [e for i, e in enumerate(episodes) if i % count == index]


def output_dir(cfg: Any, index: int, count: int) -> Path:
    """`cfg.output_dir` (default runs/eval/<format>-<split>-<agent>), plus shard-<i>-of-<n>/."""
    base = Path(cfg.output_dir).expanduser() if cfg.output_dir else Path("runs") / "eval" / f"{cfg.dataset.format}-{cfg.dataset.split}-{cfg.agent.name}"
    return base / f"shard-{index}-of-{count}" if count > 1 else base


# ---- agents and environment -------------------------------------------------------------------


def _device(device: str) -> str:
    local = os.environ.get("LOCAL_RANK")
    return f"cuda:{int(local)}" if device == "cuda" and local is not None else device


def build_agent(cfg: Any) -> Agent:
    """The agent named by cfg.agent (loads the model for "vila")."""
    from .agents import ForwardAgent, OracleAgent, RandomAgent, VilaAgent

    a = cfg.agent
    if a.name == "random":
        return RandomAgent(a.seed, a.random_weights)
    if a.name == "forward":
        return ForwardAgent()
    if a.name == "oracle":
        return OracleAgent(a.oracle_radius)
    import torch

    import vila_nav.model as vmodel

    if a.num_threads:
        torch.set_num_threads(a.num_threads)  # process-wide, as torch has it
    try:
        path = Path(a.model).expanduser() if a.model else vmodel.default_model_path()
        model = vmodel.load(path, device=_device(a.device), dtype=a.dtype or None, quantization=a.quantization)
    except (vmodel.CheckpointError, FileNotFoundError) as exc:
        raise EvalError(f"cannot load the VILA model for agent.name=vila (set agent.model=PATH): {exc}") from exc
    return VilaAgent(model, cfg.history, cfg.parser, forward_step=_sim_forward_step(cfg.sim),
                     turn_step=_sim_turn_step(cfg.sim), blind=a.blind)


def _make_env(sim: Any) -> Any:
    from vila_nav.envs import make_env

    try:
        return make_env(sim)
    except ImportError as exc:  # an optional simulator backend that is not installed
        raise EvalError(f"cannot start the '{sim.backend}' simulator: {exc}") from exc


def _sim_forward_step(sim: Any) -> float:
    return float(sim.forward_step_m)


def _sim_turn_step(sim: Any) -> float:
    return float(sim.turn_angle_deg)


def _max_steps(sim: Any) -> int:
    return int(sim.max_steps)


def _success_distance(sim: Any) -> float:
    return float(sim.success_distance_m)


# ---- one episode ------------------------------------------------------------------------------


def _goal_distance(env: Any, position: Any, episode: Episode) -> float:
    """Geodesic distance (m) to the nearest goal (VLN-CE episodes have one); inf if unreachable."""
    return min(float(env.geodesic_distance(position, g.position)) for g in episode.goals)


def _r(x: float) -> float | str:
    return round(x, _ROUND) if math.isfinite(x) else x


def run_episode(env: Any, agent: Agent, episode: Episode, max_steps: int, success_distance: float = 3.0,
                keep_frames: bool = False) -> tuple[dict, list, list[str]]:
    """Run one episode to STOP or max_steps; return (row, frames, captions).

    frames (H x W x 3 uint8, observation before each action plus the last) are kept only with
    keep_frames (videos). Metrics are computed from the recorder.
    """
    gt = episode.gt
    reference = gt.locations if gt is not None else episode.reference_path
    rec = TrajectoryRecorder(reference=reference, success_distance=success_distance)
    obs = env.reset(episode)
    agent.reset(episode)
    pos = env.position
    rec.start(pos, _goal_distance(env, pos, episode))
    frames, captions = ([obs], [""]) if keep_frames else ([], [])
    collisions = 0  # primitives that a wall or an object blocked or shortened (the env's collided flag)
    while rec.steps < max_steps and not rec.stop_called:
        action = agent.act(obs, env)
        if action not in _PRIMITIVE_IDS:
            raise ValueError(f"agent {agent.name!r} returned {action!r}; expected one of {PRIMITIVES}")
        obs = env.step(action)
        collisions += bool(env.collided)
        pos = env.position
        rec.record(action, pos, _goal_distance(env, pos, episode))
        if keep_frames:
            frames.append(obs)
            captions.append(f"{rec.steps}: {action}")
    row: dict[str, Any] = {
        "episode_id": episode.episode_id,
        "trajectory_id": episode.trajectory_id,
        "scene_id": episode.scene_id,
        "instruction": episode.instruction.text,
        "language": episode.instruction.language,
        "metrics": rec.metrics(),
        "steps": rec.steps,
        "stop_called": rec.stop_called,
        "max_steps_reached": not rec.stop_called,
        "collisions": collisions,
        "ndtw_reference": "gt" if gt is not None else "reference_path",
        "trajectory": [[_r(v) for v in p] for p in rec.positions],
        "distances": [_r(d) for d in rec.distances],
        "actions": [_PRIMITIVE_IDS[a] for a in rec.actions],  # VLN-CE ids: 0 STOP, 1 FWD, 2 L, 3 R
    }
    agent_log = agent.episode_log()
    if agent_log:
        row["agent"] = agent_log
    return row, frames, captions


def _error_row(episode: Episode, exc: BaseException) -> dict:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {
        "episode_id": episode.episode_id,
        "trajectory_id": episode.trajectory_id,
        "scene_id": episode.scene_id,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(tb[-3:]),
    }


def _safe_name(episode_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", episode_id) or "_"


# ---- the run ----------------------------------------------------------------------------------


def config_record(cfg: Any, index: int, count: int) -> dict:
    """The JSON-able configuration stored in run.json (dataset path and shard resolved)."""
    record = dataclasses.asdict(cfg)
    record["dataset"]["path"] = str(dataset_path(cfg.dataset))
    record["shard"] = {"index": index, "count": count}
    return record


def _check_resume(out: Path, record: dict) -> None:
    import json

    run_file = out / RUN_JSON
    if not run_file.is_file():
        return
    old = json.loads(run_file.read_text()).get("config", {})

    def part(cfg: dict, key: str):
        value = json.loads(json.dumps(cfg.get(key)))
        if isinstance(value, dict):
            for name in _SPEED_ONLY.get(key, ()):
                value.pop(name, None)
        return value

    differing = [k for k in _RESUME_KEYS if part(old, k) != part(record, k)]
    if differing:
        raise EvalError(
            f"{out} holds results of a different configuration (differs in: {', '.join(differing)}); "
            "use another output_dir, or resume=false overwrite=true to start over"
        )


def prepare_output(cfg: Any, out: Path, record: dict, wanted: set[str]) -> list[dict]:
    """Apply the resume/overwrite policy; return the finished rows to keep."""
    rows, truncated = read_rows(out / RESULTS)
    if not rows and not truncated:
        return []
    if not cfg.resume:
        if not cfg.overwrite:
            raise EvalError(f"{out / RESULTS} already holds {len(rows)} episode(s); set resume=true to "
                            "continue it, overwrite=true to delete it, or choose another output_dir")
        for name in (RESULTS, SUMMARY_JSON, SUMMARY_MD, RUN_JSON):
            (out / name).unlink(missing_ok=True)
        for sub in ("plots", "videos"):
            shutil.rmtree(out / sub, ignore_errors=True)
        log.warning("%s: deleted earlier results (overwrite=true)", out)
        return []
    _check_resume(out, record)
    foreign = [r["episode_id"] for r in rows if r["episode_id"] not in wanted]
    if foreign:
        raise EvalError(f"{out / RESULTS} holds episodes that are not in this selection (e.g. {foreign[:5]}); "
                        "it belongs to another dataset/shard: use another output_dir")
    keep, seen = [], set()
    for r in rows:
        if r.get("error") or r["episode_id"] in seen:
            continue
        seen.add(r["episode_id"])
        keep.append(r)
    if truncated or len(keep) != len(rows):
        log.warning("%s: resuming with %d finished episode(s); %d errored/duplicate row(s) will be retried",
                    out, len(keep), len(rows) - len(keep))
        rewrite_rows(out / RESULTS, keep)
    return keep


def _save_plot(env: Any, episode: Episode, row: dict, path: Path) -> None:
    from .plots import plot_episode

    plot_episode(env.top_down_map(), episode, row, path)


def evaluate(cfg: Any, progress: bool | None = None) -> EvalReport:
    """Run `cfg.agent` over the configured split/shard; return the report.

    Raises EvalError when there is nothing to evaluate or nothing was evaluated, EvalFailed when
    some episodes raised (after everything else was written).
    """
    index, count, source = resolve_shard(cfg.shard.index, cfg.shard.count)
    episodes = select_episodes(cfg.dataset)
    mine = shard_episodes(episodes, index, count)
    if not mine:
        raise EvalError(f"shard {index} of {count} ({source}) has no episodes: the split has only {len(episodes)}")
    out = output_dir(cfg, index, count)
    record = config_record(cfg, index, count)
    done_rows = prepare_output(cfg, out, record, {e.episode_id for e in mine})
    done = {r["episode_id"] for r in done_rows}
    # Run order: grouped by scene (fewer scene loads; results do not depend on the order).
    pending = sorted((e for e in mine if e.episode_id not in done), key=lambda e: (e.scene_id, episode_sort_key(e.episode_id)))
    log.info("shard %d/%d (%s): %d episodes, %d already done, %d to run -> %s",
             index, count, source, len(mine), len(done), len(pending), out)
    t0 = time.perf_counter()
    steps_run, new_rows = 0, []
    # Agent (model) and simulator first: a failure there leaves no files behind.
    agent = build_agent(cfg) if pending else None
    env = _make_env(cfg.sim) if pending else None
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RUN_JSON, {"config": record})
    if pending:
        from tqdm import tqdm

        max_steps, success_distance = _max_steps(cfg.sim), _success_distance(cfg.sim)
        show = cfg.progress if progress is None else progress
        bar = tqdm(total=len(pending), desc=f"eval {cfg.agent.name} [{index}/{count}]", unit="ep", disable=not show)
        successes = 0
        try:
            with ResultsWriter(out / RESULTS) as writer:
                for episode in pending:
                    try:
                        row, frames, captions = run_episode(env, agent, episode, max_steps, success_distance, cfg.videos)
                        if cfg.plots:
                            _save_plot(env, episode, row, out / "plots" / f"{_safe_name(episode.episode_id)}.png")
                        if cfg.videos:
                            from .videos import write_video

                            write_video(out / "videos" / f"{_safe_name(episode.episode_id)}.mp4", frames, captions, cfg.video_fps)
                        steps_run += row["steps"]
                        successes += int(row["metrics"]["sr"])
                    except Exception as exc:  # noqa: BLE001 - recorded in the row, the run goes on
                        log.error("episode %s failed: %s: %s", episode.episode_id, type(exc).__name__, exc)
                        row = _error_row(episode, exc)
                    writer.write(row)
                    new_rows.append(row)
                    bar.update(1)
                    bar.set_postfix(SR=f"{successes / max(1, len(new_rows)):.2f}",
                                    steps_s=f"{steps_run / max(1e-9, time.perf_counter() - t0):.0f}")
        finally:
            bar.close()
            env.close()
    wall = time.perf_counter() - t0

    rows, _ = read_rows(out / RESULTS)
    rows.sort(key=lambda r: episode_sort_key(str(r["episode_id"])))
    summary = make_summary(cfg.agent.name, record["dataset"], rows, shard={"index": index, "count": count},
                           selected=len(mine),
                           run={"wall_s": wall, "episodes_run": len(new_rows), "steps_run": steps_run,
                                "steps_per_s": steps_run / wall if wall > 0 and steps_run else None})
    report = EvalReport(out, summary, rows, len(new_rows), steps_run, wall)
    agg = summary["aggregate"]
    if agg["evaluated"] == 0:
        raise EvalError(f"no episode was evaluated successfully in {out}: all {agg['errors']} raised "
                        f"(first: {next((r['error'] for r in rows if r.get('error')), '?')}); see {out / RESULTS}")
    write_summary(out, cfg.agent.name, summary)
    if agg["errors"]:
        raise EvalFailed(f"{agg['errors']} of {agg['episodes']} episode(s) raised an error (listed in "
                         f"{out / SUMMARY_MD}); rerun with resume=true to retry them", report)
    return report


def make_summary(name: str, dataset: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], *, shard: Mapping | None = None,
                 selected: int | None = None, run: Mapping | None = None) -> dict:
    """summary.json content: agent name, dataset, shard, aggregate metrics, run facts."""
    ordered = sorted(rows, key=lambda r: episode_sort_key(str(r["episode_id"])))
    summary: dict[str, Any] = {"name": name, "dataset": dict(dataset)}
    if shard is not None:
        summary["shard"] = dict(shard)
    summary["episodes_selected"] = selected if selected is not None else len(rows)
    summary["aggregate"] = aggregate(ordered)
    refs = [r.get("ndtw_reference") for r in ordered if not r.get("error")]
    summary["ndtw_reference"] = {k: refs.count(k) for k in ("gt", "reference_path") if refs.count(k)}
    # Blocked or shortened primitives (rows written before this field existed are left out).
    counted = [int(r["collisions"]) for r in ordered if not r.get("error") and "collisions" in r]
    summary["collisions"] = {"total": sum(counted), "episodes_with_any": sum(c > 0 for c in counted),
                             "episodes_counted": len(counted)}
    summary["run"] = dict(run or {})
    return summary


def write_summary(out: Path, name: str, summary: Mapping[str, Any]) -> None:
    """Write summary.json and summary.md (atomically)."""
    write_json(out / SUMMARY_JSON, summary)
    write_text(out / SUMMARY_MD, summary_markdown(name, summary))


__all__ = [
    "EvalError", "EvalFailed", "EvalReport", "ResultsError", "build_agent", "episode_sort_key", "evaluate",
    "make_summary", "output_dir", "resolve_shard", "run_episode", "select_episodes", "shard_episodes",
    "write_summary",
]
