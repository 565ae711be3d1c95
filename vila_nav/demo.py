"""`vila-nav demo`: the offline end-to-end demo (the README's main job).

    vila-nav demo [key=value ...]       hydra overrides of config/demo.yaml (DemoConfig below)
    vila-nav demo --core                only the full pure-core walk-through (no simulator, no torch)
    vila-nav demo --print-config        the composed configuration

Examples:
    vila-nav demo episodes=30 'agents=[vila,oracle]' model=/models/navila-llama3-8b-8f device=cuda
    vila-nav demo 'eval_overrides=["agent.quantization=int8"]' output_dir=/tmp/demo videos=true

What it shows, in a minute or two on a laptop CPU, with nothing downloaded:
1. The pure core in a dozen lines: model text -> parsed action -> simulator primitives ->
   velocity profile -> the commander's zero-on-doubt safety, and NaVILA's 8-frame sampling.
2. The product: the VILA policy (the shipped model, or `model=PATH`) and three baselines
   (random, forward-only, the shortest-path oracle) evaluated by the real evaluator
   (vila_nav.evaluation.evaluate) on the shipped R2R-format val_unseen episodes in the embedded
   MiniWorld simulator; one markdown table (NE, OS, SR, SPL, nDTW, SDTW, TL, steps), a top-down
   trajectory PNG per agent and episode, and one episode told agent by agent.

Output (`output_dir`, default runs/demo/): demo.json (this run: config, agents, timing; it also
marks the folder as the demo's own, so a re-run clears it), results.md (the table) and one
evaluator run folder per agent (results.jsonl, summary.json, summary.md, run.json, plots/).
Results are reproducible: the random agent is seeded (`seed`), the others are deterministic.

Exit status: 0 ok; 1 the simulator or the model cannot start (the message says why, e.g. which
system libraries are missing), an episode raised, or output_dir is someone else's folder; 2 bad
configuration; 130 interrupted.
"""
from __future__ import annotations

import ctypes
import dataclasses
import glob
import math
import os
import shutil
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List

import numpy as np

from vila_nav.actions import (
    NavAction,
    ParserConfig,
    format_action,
    parse_action,
    resolve_unparseable,
    to_primitives,
)
from vila_nav.controller import Commander, CommanderConfig, Segment, VelocityLimits, plan, profile_duration
from vila_nav.frames import FrameHistory, FrameHistoryConfig, sample_indices

AGENT_LABELS = {  # table row names
    "random": "random",
    "forward": "forward-only",
    "oracle": "oracle (shortest path)",
}
AGENT_NOTES = {  # one line each under the table
    "vila": "VILA: NaVILA's policy loop ({frames}-frame history, one model query per mid-level action, run as "
            "primitives; {rule})",
    "random": "random: seeded random primitives (rarely STOP)",
    "forward": "forward-only: always MOVE_FORWARD, never STOP (SR 0 by design; how far just walking gets)",
    "oracle": "oracle: the simulator's shortest-path expert, stops within {radius:g} m of the goal (the upper bound)",
}
RULE_NOTES = {  # parser.on_turn_reversal, in the VILA line
    "forward": "a turn back in place runs as a 0.25 m step",
    "allow": "every answer runs as given",
}
MARKER = "demo.json"  # written first into output_dir; marks the folder as the demo's own
RESULTS_MD = "results.md"


@dataclass
class DemoConfig:
    """`vila-nav demo`: schema of config/demo.yaml (override any field: `episodes=20`)."""

    episodes: int = 10  # the first N episodes (by id) of the shipped R2R val_unseen split (120)
    agents: List[str] = field(default_factory=lambda: ["vila", "random", "forward", "oracle"])  # table order
    model: str = ""  # VILA checkpoint directory; "" = the shipped model (skipped with a note if absent)
    device: str = "cpu"  # the VILA model's device: cpu | cuda | cuda:N
    seed: int = 0  # the random agent's seed (per-episode RNGs are derived from it)
    output_dir: str = "runs/demo"  # cleared and rewritten by every run (only if it holds a demo.json)
    plots: bool = True  # top-down trajectory PNG per agent and episode (<agent>/plots/<id>.png)
    videos: bool = False  # first-person MP4 per agent and episode (<agent>/videos/<id>.mp4)
    progress: bool = True  # tqdm progress bars on stderr
    # Extra hydra overrides of config/eval.yaml for every agent's run, e.g. ["sim.max_steps=200",
    # "agent.quantization=int8"]; the demo's own fields above win over them.
    eval_overrides: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from vila_nav.evaluation.config import AGENTS

        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if not self.agents:
            raise ValueError(f"agents must name at least one of {list(AGENTS)}")
        unknown = [a for a in self.agents if a not in AGENTS]
        if unknown:
            raise ValueError(f"agents: unknown {unknown}; choose from {list(AGENTS)}")
        if len(set(self.agents)) != len(self.agents):
            raise ValueError(f"agents: each agent once, got {list(self.agents)}")
        if not self.output_dir:
            raise ValueError("output_dir must be a folder such as runs/demo")
        if self.model and "vila" not in self.agents:
            raise ValueError(f"model={self.model} is only used by the VILA policy: add vila to agents")


class DemoError(RuntimeError):
    """The demo cannot go on (the message says why and what to do)."""


@dataclass
class DemoReport:
    """What a demo run produced."""

    out_dir: Path
    table: str  # the markdown results table
    summaries: dict  # agent name -> the evaluator's summary.json content
    labels: dict  # agent name -> table row name
    skipped: dict  # agent name -> why it was not run
    wall_s: float

RATE_HZ = 20.0  # commander ticks (zero-order hold: each command holds for one period)

OUTPUTS = [
    "The next action is move forward 75 cm.",  # canonical
    "The next action is turn left 30 degree.",  # canonical
    "Sure! I will turn to the right by about thirty degrees.",  # messy but readable
    "Move Forward 1.5 m please",  # messy, longer than one NaVILA step
    "turn left 20 degrees",  # not a multiple of 15: the simulator snaps, the robot does not
    "Go forward 100 cm, then stop.",  # "stop" anywhere wins (NaVILA's rule)
    "I think I should stop because I have finished the instruction.",  # canonical stop
    "The next action is to dance.",  # garbage
    "move forward 5 seconds",  # unreadable amount
]


def _describe_action(action: NavAction) -> str:
    if action.kind == "stop":
        return "stop"
    unit = "m" if action.kind == "forward" else "deg"
    return f"{action.kind} {action.amount:g} {unit}"


def _describe_primitives(prims: list[str]) -> str:
    if not prims:
        return "(none)"
    return " ".join(f"{p} x{prims.count(p)}" for p in dict.fromkeys(prims))


def _describe_segment(seg: Segment) -> str:
    if seg.linear_start or seg.linear_end:
        a, b, unit = seg.linear_start, seg.linear_end, "m/s"
    else:
        a, b, unit = math.degrees(seg.angular_start), math.degrees(seg.angular_end), "deg/s"
    speed = f"{a:.2f} {unit}" if a == b else f"{a:.2f}->{b:.2f} {unit}"
    return f"{seg.duration:.2f} s {speed}"


def _describe_profile(segments: list[Segment]) -> str:
    if not segments:
        return "(none: zero velocity)"
    return " | ".join(_describe_segment(s) for s in segments) + f"   ({profile_duration(segments):.2f} s)"


def _simulate(cmd: Commander, t0: float, until_s: float, events: dict[float, tuple] | None = None,
              heartbeats_until: float = math.inf) -> tuple[float, float, float, str, float]:
    """Run the commander at RATE_HZ from t0 for until_s s with camera heartbeats until
    `heartbeats_until`; `events` maps time -> ("estop", bool) | ("jump", seconds).

    Returns (distance m, angle deg, time of the first zero command after motion or nan, its
    reason, time s spent moving).
    """
    events = dict(events or {})
    dist = ang = moving = 0.0
    jump = 0.0
    first_zero_t, first_zero_reason, moved = math.nan, "", False
    for k in range(int(round(until_s * RATE_HZ)) + 1):
        t = t0 + k / RATE_HZ
        for when, (kind, value) in list(events.items()):
            if t >= t0 + when:
                if kind == "estop":
                    cmd.set_estop(value, t + jump)
                else:
                    jump += value
                del events[when]
        now = t + jump
        if t <= t0 + heartbeats_until:
            cmd.heartbeat("camera", now)
        c = cmd.command(now, period_s=1.0 / RATE_HZ)
        if c.is_zero:
            if moved and math.isnan(first_zero_t):
                first_zero_t, first_zero_reason = t - t0, c.reason
        else:
            moved = True
            moving += 1.0 / RATE_HZ
        dist += c.linear / RATE_HZ
        ang += math.degrees(c.angular) / RATE_HZ
    return dist, ang, first_zero_t, first_zero_reason, moving


def _section_actions(limits: VelocityLimits) -> None:
    print("== 1. Model text -> action -> primitives -> velocity profile -> commander at 20 Hz")
    print(f"limits: {limits.max_linear_mps:g} m/s, {limits.max_angular_dps:g} deg/s, "
          f"accel {limits.max_linear_accel_mps2:g} m/s^2, {limits.max_angular_accel_dps2:g} deg/s^2")
    parser_cfg = ParserConfig()
    t0 = 0.0
    for text in OUTPUTS:
        cmd = Commander(CommanderConfig(limits=limits))
        cmd.heartbeat("camera", t0)
        print(f"\nmodel says: {text!r}")
        action = parse_action(text, parser_cfg)
        if action is None:
            decision = resolve_unparseable(parser_cfg, attempts=0)
            print(f"  action      unparseable -> on_unparseable={parser_cfg.on_unparseable!r}: {decision}")
            cmd.stop("unparseable model output", t0)
            print(f"  commander   zero: {cmd.command(t0 + 0.05).reason!r}")
            continue
        print(f"  action      {_describe_action(action)}   (canonical: {format_action(action)!r})")
        print(f"  primitives  {_describe_primitives(to_primitives(action))}")
        segments = plan(action, limits)
        print(f"  profile     {_describe_profile(segments)}")
        cmd.start(action, t0)
        dist, ang, _t, _r, moving = _simulate(cmd, t0, profile_duration(segments) + 0.5)
        reason = cmd.command(t0 + profile_duration(segments) + 0.5).reason
        if segments:
            ticks = int(round(moving * RATE_HZ))
            print(f"  commander   {ticks} non-zero commands: {dist:.3f} m, {ang:+.1f} deg; "
                  f"then zero: {reason!r}")
        else:
            print(f"  commander   zero: {reason!r}")


def _section_navila_timing() -> None:
    print("\n== 2. NaVILA's robot timing (no ramps: inf acceleration)")
    lim = VelocityLimits.navila()
    parts = []
    for action in (NavAction("forward", 0.25), NavAction("forward", 0.5), NavAction("forward", 0.75),
                   NavAction("turn_left", 15.0), NavAction("turn_left", 30.0), NavAction("turn_right", 45.0)):
        parts.append(f"{_describe_action(action)}: {profile_duration(plan(action, lim)):.2f} s")
    print("  " + ", ".join(parts))


def _section_safety(limits: VelocityLimits) -> None:
    print("\n== 3. Zero on every doubt (forward 0.75 m, 2.00 s profile)")
    forward = NavAction("forward", 0.75)

    cmd = Commander(CommanderConfig(limits=limits))
    cmd.heartbeat("camera", 0.0)
    cmd.start(forward, 0.0)
    dist, _a, t, reason, _m = _simulate(cmd, 0.0, 3.0, events={0.8: ("estop", True)})
    print(f"  e-stop at 0.80 s: zero from {t:.2f} s ({reason!r}) after {dist:.3f} m; "
          f"still {cmd.command(10.0).reason!r} at 10 s")
    cmd.heartbeat("camera", 10.0)
    cmd.set_estop(False, 10.0)
    print(f"  e-stop released at 10 s: {cmd.command(10.05).reason!r}, "
          f"velocity {cmd.command(10.1).linear:.1f} m/s (nothing resumes)")

    cmd = Commander(CommanderConfig(limits=limits))
    cmd.heartbeat("camera", 0.0)
    cmd.start(forward, 0.0)
    dist, _a, t, reason, _m = _simulate(cmd, 0.0, 3.0, heartbeats_until=0.5)
    print(f"  camera silent after 0.50 s (timeout 1.0 s): zero from {t:.2f} s ({reason!r}) "
          f"after {dist:.3f} m")

    cmd = Commander(CommanderConfig(limits=limits))
    cmd.heartbeat("camera", 0.0)
    cmd.start(forward, 0.0)
    dist, _a, t, reason, _m = _simulate(cmd, 0.0, 3.0, events={1.0: ("jump", -1.0)})
    print(f"  clock jumps back 1 s at 1.00 s: zero from {t:.2f} s ({reason!r}) after {dist:.3f} m")

    cmd = Commander(CommanderConfig(limits=limits))
    accepted = cmd.start(forward, 0.0)
    print(f"  no camera heartbeat yet: start accepted? {accepted}; {cmd.command(0.0).reason!r}")


def _fmt_indices(idx: list[int | None]) -> str:
    return " ".join("-" if i is None else str(i) for i in idx)


def _section_frames() -> None:
    print("\n== 4. Frame sampling (K = 8: 7 history + current; '-' = black frame)")
    for n in (0, 1, 3, 8, 20, 100):
        print(f"  N={n:<4d} {_fmt_indices(sample_indices(n, 8))}")
    cfg, n = FrameHistoryConfig(num_frames=8), 100_000
    cap = cfg.max_frames
    hist = FrameHistory(cfg)
    tiny = np.zeros((4, 4, 3), np.uint8)
    for i in range(n):
        hist.add(tiny, stamp=0.5 * i)
    print(f"  bounded history, max_frames={cap}, after {n} frames: {hist.stored_count} stored "
          f"({hist.stored_bytes} bytes), stride {hist.stride}")
    print(f"    sampled {_fmt_indices(hist.sampled_indices())}")
    print(f"    exact   {_fmt_indices(sample_indices(n, 8))}")



# ---- 1. the pure core: a short version (the full one is `vila-nav demo --core`) -------------

TEASER_OUTPUTS = (
    "The next action is move forward 75 cm.",  # canonical NaVILA sentence
    "Sure! I will turn to the right by about thirty degrees.",  # messy but readable
    "The next action is to dance.",  # garbage: the parser's policy decides
)


def core_teaser() -> None:
    """Print the pure core in about a dozen lines."""
    limits, parser_cfg = VelocityLimits(), ParserConfig()
    print("== 1. The pure core: model text -> action -> primitives -> velocity profile -> safety")
    print(f"   (limits {limits.max_linear_mps:g} m/s, {limits.max_angular_dps:g} deg/s; "
          "the full walk-through: vila-nav demo --core)")
    for text in TEASER_OUTPUTS:
        print(f"  model says {text!r}")
        action = parse_action(text, parser_cfg)
        if action is None:
            decision = resolve_unparseable(parser_cfg, attempts=0)
            print(f"    -> unparseable -> on_unparseable={parser_cfg.on_unparseable!r}: {decision} (zero velocity)")
            continue
        print(f"    -> {_describe_action(action)} -> {_describe_primitives(to_primitives(action))} -> "
              f"{_describe_profile(plan(action, limits))}")
    forward = NavAction("forward", 0.75)
    cmd = Commander(CommanderConfig(limits=limits))
    cmd.heartbeat("camera", 0.0)
    cmd.start(forward, 0.0)
    dist, _a, t_estop, _r, _m = _simulate(cmd, 0.0, 3.0, events={0.8: ("estop", True)})
    cmd = Commander(CommanderConfig(limits=limits))
    cmd.heartbeat("camera", 0.0)
    cmd.start(forward, 0.0)
    dist_wd, _a, t_wd, reason_wd, _m = _simulate(cmd, 0.0, 3.0, heartbeats_until=0.5)
    print(f"  safety, forward 0.75 m at {RATE_HZ:g} Hz: e-stop at 0.80 s -> zero from {t_estop:.2f} s after {dist:.2f} m;")
    print(f"    camera silent after 0.50 s -> zero from {t_wd:.2f} s after {dist_wd:.2f} m ({reason_wd!r})")
    # NaVILA's 8 frames (the released checkpoints); a model's own count comes from its config.json
    print(f"  frames: NaVILA's 8-frame sample, current last; of 20 so far: {_fmt_indices(sample_indices(20, 8))}\n")


# ---- 2. the simulator evaluation -------------------------------------------------------------

# Shared libraries that headless MiniWorld rendering loads (pyglet -> EGL -> Mesa llvmpipe), with
# the Debian/Ubuntu package of each; scripts/bootstrap.sh installs the same list.
_GL_LIBRARIES = (
    ("libEGL.so.1", "libegl1"),
    ("libEGL_mesa.so.0", "libegl-mesa0"),
    ("libGL.so.1", "libgl1"),
    ("libGLU.so.1", "libglu1-mesa"),
)
_APT_PACKAGES = "libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libglu1-mesa"
_EGL_VENDOR_DIRS = ("/etc/glvnd/egl_vendor.d", "/usr/share/glvnd/egl_vendor.d")  # libglvnd's defaults


def _egl_vendor_files() -> tuple[list[str], str]:
    """(EGL vendor JSON files libglvnd would read, where it looks), honouring its env variables."""
    names = os.environ.get("__EGL_VENDOR_LIBRARY_FILENAMES")
    if names:
        return [p for p in names.split(":") if os.path.isfile(p)], f"__EGL_VENDOR_LIBRARY_FILENAMES={names}"
    dirs = os.environ.get("__EGL_VENDOR_LIBRARY_DIRS")
    folders = dirs.split(":") if dirs else list(_EGL_VENDOR_DIRS)
    return sorted(f for d in folders for f in glob.glob(os.path.join(d, "*.json"))), " or ".join(folders)


def _software_gl_drivers() -> tuple[list[str], list[str]]:
    """(Mesa software rasteriser drivers found, folders searched)."""
    arch = getattr(sys.implementation, "_multiarch", "")
    folders = [d for d in os.environ.get("LIBGL_DRIVERS_PATH", "").split(":") if d]
    folders += [f"/usr/lib/{arch}/dri" if arch else "", "/usr/lib64/dri", "/usr/lib/dri"]
    folders = [d for d in folders if d]
    found = [f for d in folders for f in glob.glob(os.path.join(d, "*swrast_dri.so"))]
    return found, folders


def missing_system_libraries() -> list[str]:
    """The system pieces headless OpenGL rendering needs that this machine lacks ([] if none),
    each as 'what (Debian/Ubuntu package)'. Loads each library with the dynamic linker."""
    missing = []
    for soname, package in _GL_LIBRARIES:
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(f"{soname} ({package})")
    vendors, where = _egl_vendor_files()
    if not vendors:
        missing.append(f"an EGL vendor file such as Mesa's 50_mesa.json in {where} (libegl-mesa0)")
    drivers, folders = _software_gl_drivers()
    if not drivers:
        missing.append(f"Mesa's software OpenGL driver swrast_dri.so in {' or '.join(folders)} (libgl1-mesa-dri)")
    return missing


def check_simulator(sim_cfg: Any) -> float:
    """Start and close the simulator once; return the seconds it took. DemoError naming the
    missing system libraries (and the apt-get line) when it cannot start."""
    from vila_nav.envs import make_env

    t0 = time.perf_counter()
    try:
        env = make_env(sim_cfg)
    except Exception as exc:  # noqa: BLE001 - pyglet/EGL raise many types; all mean "cannot render"
        missing = missing_system_libraries()
        if missing:
            hint = ("missing system libraries for headless OpenGL: " + "; ".join(missing)
                    + f"\n  install them: sudo apt-get update && sudo apt-get install -y {_APT_PACKAGES}"
                    + "\n  (or run ./scripts/demo, whose bootstrap does it)")
        else:
            hint = ("the system OpenGL libraries were all found (libEGL, an EGL vendor file, libGL, libGLU, "
                    "swrast_dri.so), so the cause is the error above")
        raise DemoError(f"the '{sim_cfg.backend}' simulator cannot start: {type(exc).__name__}: {exc}\n  {hint}") from exc
    env.close()
    return time.perf_counter() - t0


def resolve_vila_model(model: str) -> tuple[Path | None, str]:
    """(checkpoint dir to run the VILA policy with, or None; a note when it is skipped).

    `model` "" means the shipped model (`vila_nav.model.default_model_path()`); when none ships,
    the VILA row is skipped with a note. An explicit path that does not exist is a DemoError.
    """
    if model:
        path = Path(model).expanduser()
        if not path.is_dir():
            raise DemoError(f"model={model}: no such checkpoint directory (a local NaVILA-layout folder: "
                            "config.json, llm/, vision_tower/, mm_projector/)")
        return path, ""
    import vila_nav.model as vmodel

    try:
        return vmodel.default_model_path(), ""
    except FileNotFoundError:
        return None, ("note: no trained VILA model ships with this install yet, so the VILA policy is skipped; "
                      "pass a checkpoint with: vila-nav demo model=/path/to/checkpoint")


def check_output_dir(out: Path) -> None:
    """DemoError if `out` is a file, or a non-empty folder that no demo run wrote (no demo.json)."""
    if out.exists() and not out.is_dir():
        raise DemoError(f"output_dir={out} is a file; choose a folder, e.g. output_dir=runs/demo")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise DemoError(f"output_dir={out} is not empty and was not written by `vila-nav demo` (no {MARKER}); "
                        "refusing to clear it: choose another output_dir")


def prepare_output_dir(out: Path) -> None:
    """Make `out` an empty folder, clearing an earlier demo run (check_output_dir's rules)."""
    check_output_dir(out)
    if out.is_dir():
        shutil.rmtree(out)
    out.mkdir(parents=True)


def base_eval_config(cfg: DemoConfig) -> Any:
    """config/eval.yaml + cfg.eval_overrides, on the shipped R2R val_unseen split (first
    cfg.episodes episodes by id), one shard. ConfigError for a bad override."""
    from vila_nav.config import compose
    from vila_nav.evaluation.config import EvalConfig

    base = compose(EvalConfig, "eval", list(cfg.eval_overrides))
    return dataclasses.replace(
        base,
        dataset=dataclasses.replace(base.dataset, format="r2r", path="", split="val_unseen", languages=None,
                                    limit=cfg.episodes),
        shard=dataclasses.replace(base.shard, index=0, count=1),  # never split by launcher variables
    )


def eval_config(cfg: DemoConfig, base: Any, agent: str, out: Path, model: Path | None) -> Any:
    """The EvalConfig of one agent's run: `base` with the demo's fields, into a fresh <out>/<agent>/."""
    return dataclasses.replace(
        base,
        agent=dataclasses.replace(base.agent, name=agent, model=str(model) if model is not None else "",
                                  device=cfg.device, seed=cfg.seed),
        output_dir=str(out / agent),
        resume=False,
        overwrite=True,
        plots=cfg.plots,
        videos=cfg.videos,
        progress=cfg.progress,
    )


def _vila_note(base: Any, model: Path) -> str:
    """The VILA line under the table: frames per query (history.num_frames resolved against the
    model's num_video_frames, as the evaluator resolves it; read after its evaluation ran, so the
    config.json has passed the loader's checks) and the turning rule."""
    from vila_nav.model.config import VilaConfig

    model_frames = VilaConfig.from_file(model / "config.json").num_video_frames
    frames = base.history.for_model(model_frames, "history.num_frames").num_frames
    return AGENT_NOTES["vila"].format(frames=frames, rule=RULE_NOTES[base.parser.on_turn_reversal])


def _count(n: int, noun: str, plural: str = "") -> str:
    """'1 step', '2 steps' (plural defaults to noun + 's')."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def _outcome(row: dict, max_steps: int) -> str:
    """One agent's episode in words: stopped where, success or not."""
    if row.get("error"):
        return f"error: {row['error']}"
    m = row["metrics"]
    ne = float(m["ne"])
    where = f"{ne:.2f} m from the goal" if math.isfinite(ne) else "the goal unreachable"
    how = (f"STOP after {_count(row['steps'], 'step')}" if row["stop_called"]
           else f"no STOP within {max_steps} steps")
    return f"{how}, {where} -> {'success' if m['sr'] else 'failure'}"


def _tell_episode(episode: Any, reports: dict, labels: dict, max_steps: int) -> None:
    """Print one episode agent by agent, with its plots."""
    start = episode.info.get("geodesic_distance")
    dist = f", {float(start):.1f} m to walk" if start is not None else ""
    print(f"Episode {episode.episode_id} ({episode.scene_id}{dist}):")
    for line in textwrap.wrap(f'"{episode.instruction.text}"', width=96):
        print(f"    {line}")
    width = max(len(labels[a]) for a in reports)
    for agent, report in reports.items():
        row = next((r for r in report.rows if str(r["episode_id"]) == episode.episode_id), None)
        if row is None:
            continue
        plot = report.out_dir / "plots" / f"{episode.episode_id}.png"
        shown = f"   {plot}" if plot.is_file() else ""
        print(f"  {labels[agent]:<{width}}  {_outcome(row, max_steps)}{shown}")
        queries = row.get("agent", {}).get("queries", [])
        if queries:  # the VILA policy: what the model said first and how it was read
            q = queries[0]
            text = q["text"] if len(q["text"]) <= 70 else q["text"][:67] + "..."
            read = "unparseable" if q["action"] is None else _describe_action(NavAction(q["action"][0], q["action"][1]))
            print(f"  {'':<{width}}  {_count(len(queries), 'model query', 'model queries')}; the first said {text!r} -> {read}")


def run(cfg: DemoConfig, base: Any = None) -> DemoReport:
    """The simulator section: evaluate cfg.agents with the evaluator, print and write the results.

    base: base_eval_config(cfg) if already composed. Raises DemoError (clear message) when
    something cannot run, ConfigError for a bad cfg.eval_overrides entry.
    """
    from vila_nav.episodes import EpisodeFormatError
    from vila_nav.evaluation.results import ResultsError, results_table, write_json
    from vila_nav.evaluation.runner import EvalError, EvalFailed, evaluate, select_episodes

    t0 = time.perf_counter()
    out = Path(cfg.output_dir).expanduser()
    base = base if base is not None else base_eval_config(cfg)
    sim = base.sim
    try:
        episodes = select_episodes(base.dataset)
    except (EvalError, EpisodeFormatError, FileNotFoundError) as exc:
        raise DemoError(f"cannot read the shipped episodes: {exc}") from exc
    scenes = {e.scene_id for e in episodes}
    print(f"== 2. The policy and baselines in the embedded simulator ({sim.backend})")
    print(f"  {_count(len(episodes), 'R2R-format val_unseen episode')} in {_count(len(scenes), 'held-out scene')}; "
          f"{sim.width}x{sim.height} RGB, {sim.forward_step_m:g} m / {sim.turn_angle_deg:g} deg steps, "
          f"at most {sim.max_steps} steps; success = STOP within {sim.success_distance_m:g} m of the goal")
    agents, labels, skipped = [], {}, {}
    model: Path | None = None
    for agent in cfg.agents:
        if agent == "vila":
            model, note = resolve_vila_model(cfg.model)
            if model is None:
                print(f"  {note}")
                skipped[agent] = note
                continue
            labels[agent] = f"VILA ({model.name})"
        else:
            labels[agent] = AGENT_LABELS[agent]
        agents.append(agent)
    if not agents:
        raise DemoError("nothing to run: " + "; ".join(skipped.values()))
    check_output_dir(out)  # refuse someone else's folder before anything starts
    print(f"  simulator: started and closed in {check_simulator(sim):.1f} s", flush=True)
    prepare_output_dir(out)
    record = {"tool": "vila-nav demo", "status": "running", "config": dataclasses.asdict(cfg),
              "agents": {}, "skipped": skipped}
    write_json(out / MARKER, record)

    reports: dict[str, Any] = {}
    for agent in agents:
        try:
            report = evaluate(eval_config(cfg, base, agent, out, model))
        except EvalFailed as exc:
            raise DemoError(f"{labels[agent]}: {exc}") from exc
        except (EvalError, EpisodeFormatError, ResultsError, FileNotFoundError) as exc:
            raise DemoError(f"{labels[agent]}: {exc}") from exc
        except (ValueError, ImportError) as exc:  # the model loader's clear errors (device, dtype, quantization)
            raise DemoError(f"{labels[agent]}: cannot start: {exc}") from exc
        reports[agent] = report
        print(f"  {labels[agent]}: {_count(report.episodes_run, 'episode')}, {_count(report.steps_run, 'step')} "
              f"in {report.wall_s:.1f} s",
              flush=True)
        record["agents"][agent] = {"label": labels[agent], "dir": str(report.out_dir),
                                   "mean": report.summary["aggregate"]["mean"]}

    summaries = {a: r.summary for a, r in reports.items()}
    table = results_table([(labels[a], summaries[a]) for a in agents])
    legend = [
        "NE: distance left to the goal (m, geodesic); OS: got within 3 m at some point; SR: success = STOP within 3 m;",
        "SPL: success weighted by path efficiency; nDTW: closeness to the reference route (SDTW = SR x nDTW);",
        "TL: path length (m); steps: actions taken. OS/SR/SPL/nDTW/SDTW in %.",
        *(_vila_note(base, model) if a == "vila" else AGENT_NOTES[a].format(radius=base.agent.oracle_radius)
          for a in agents),  # "vila" runs only with a resolved model
    ]
    print()
    print(table, end="")
    print("\n".join(legend))
    print()
    _tell_episode(episodes[0], reports, labels, sim.max_steps)

    wall = time.perf_counter() - t0
    (out / RESULTS_MD).write_text(
        f"# vila-nav demo\n\n{len(episodes)} episodes of the shipped R2R-format val_unseen split "
        f"({sim.backend} simulator)\n\n{table}\n" + "\n".join(f"- {line}" for line in legend) + "\n"
    )
    record.update(status="finished", wall_s=wall, table=table)
    write_json(out / MARKER, record)

    n_plots = sum(len(list((r.out_dir / "plots").glob("*.png"))) for r in reports.values())
    print(f"\nEverything is in {out}/:")
    print(f"  {RESULTS_MD:<28} the table above; {MARKER}: this run's configuration and timing")
    for agent, report in reports.items():
        rel = report.out_dir.name
        extras = []
        if cfg.plots:
            extras.append("plots/<episode>.png")
        if cfg.videos:
            extras.append("videos/<episode>.mp4")
        print(f"  {rel + '/':<28} summary.md, results.jsonl (per episode: trajectory, actions, metrics)"
              + (", " + ", ".join(extras) if extras else ""))
    if cfg.plots:
        print(f"  {n_plots} top-down plots: map, reference route (green), agent path (blue), start, goal, 3 m circle")
    print(f"Done in {wall:.0f} s. Compare runs with: vila-nav eval-table {out}/<agent> ...; "
          "the full evaluator: vila-nav eval --help")
    return DemoReport(out, table, summaries, labels, skipped, wall)


def core_walkthrough() -> None:
    """Print the full pure-core walk-through (`vila-nav demo --core`)."""
    limits = VelocityLimits()
    print("vila_nav offline demo: the pure core (parser, velocity planning, safety, frame sampling)\n")
    _section_actions(limits)
    _section_navila_timing()
    _section_safety(limits)
    _section_frames()


def main(argv: list[str] | None = None) -> int:
    """`vila-nav demo [--core | --print-config | key=value ...]`; returns the exit status."""
    import logging

    from vila_nav.config import ConfigError, command_config

    argv = list(argv if argv is not None else [])
    if "--core" in argv:  # a mode, not a config field: the old pure-core demo, no simulator
        if argv != ["--core"]:
            print("vila-nav demo: --core takes no other arguments", file=sys.stderr)
            return 2
        core_walkthrough()
        return 0
    cfg = command_config(DemoConfig, "demo", argv, prog="vila-nav demo", doc=__doc__)
    if isinstance(cfg, int):
        return cfg
    # The evaluator's per-run INFO lines would only repeat what the demo prints; warnings still show.
    eval_log = logging.getLogger("vila_nav.evaluation")
    level = eval_log.level
    eval_log.setLevel(logging.WARNING)
    try:
        base = base_eval_config(cfg)  # a bad eval_overrides entry fails here, before any output
        print("vila_nav demo: follow natural-language instructions with a VILA model, offline\n")
        core_teaser()
        run(cfg, base)
    except ConfigError as exc:
        print(f"vila-nav demo: eval_overrides: {exc}", file=sys.stderr)
        return 2
    except DemoError as exc:
        print(f"vila-nav demo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nvila-nav demo: interrupted; partial results are in {cfg.output_dir}", file=sys.stderr)
        return 130
    finally:
        eval_log.setLevel(level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
