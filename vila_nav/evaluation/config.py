"""EvalConfig: the typed schema of `vila-nav eval` (composed with hydra from config/eval.yaml).

    vila-nav eval agent.name=oracle dataset.limit=20 output_dir=runs/eval/oracle

Every field is validated in __post_init__, so a wrong value fails before anything loads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

from vila_nav.actions import ParserConfig
from vila_nav.envs import SimConfig
from vila_nav.frames import FrameHistoryConfig

AGENTS = ("vila", "random", "forward", "oracle")
FORMATS = ("r2r", "rxr")


def _history_eval_default() -> FrameHistoryConfig:
    # num_frames 0: as many frames per query as the evaluated model takes (its num_video_frames).
    return FrameHistoryConfig(num_frames=0)


def _parser_eval_default() -> ParserConfig:
    # In simulation the model decodes greedily and the observation does not change while the
    # agent waits, so a re-query returns the same text: stop at once on unparseable output.
    return ParserConfig(on_unparseable="stop")


@dataclass
class DatasetConfig:
    """Which VLN-CE episodes to evaluate."""

    format: str = "r2r"  # r2r | rxr
    path: str = ""  # dataset root, split dir or episode file; "" = the shipped sim/episodes/<format>
    split: str = "val_unseen"
    languages: Optional[List[str]] = None  # RxR only: prefix match, ["en"] = en-US + en-IN; null = all
    role: str = "guide"  # RxR only: guide | follower file
    limit: Optional[int] = None  # first N episodes after the stable sort by episode id; null = all

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"dataset.format must be one of {FORMATS}, got {self.format!r}")
        if not self.split:
            raise ValueError("dataset.split must be a split name such as 'val_unseen'")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"dataset.limit must be >= 1 or null (all), got {self.limit}")
        if self.languages is not None and self.format != "rxr":
            raise ValueError("dataset.languages only applies to format=rxr")


@dataclass
class AgentConfig:
    """Which agent acts, and its options."""

    name: str = "vila"  # vila | random | forward | oracle
    model: str = ""  # VILA checkpoint directory; "" = the shipped model
    device: str = "cpu"  # cpu | cuda | cuda:N ("cuda" under torchrun uses cuda:$LOCAL_RANK)
    dtype: str = ""  # "" = the model loader's default; float32 | float16 | bfloat16
    quantization: str = "none"  # passed to vila_nav.model.load
    # torch CPU threads for the VILA model (0 = torch's default, one per core). On a CPU that is
    # busy with other work set 1: threads that wait on each other's busy core make it many times slower.
    num_threads: int = 0
    blind: bool = False  # vila: black frames instead of observations (ablation)
    seed: int = 0  # random: per-episode RNG seeded by (seed, episode_id)
    random_weights: List[float] = field(default_factory=lambda: [0.02, 0.68, 0.15, 0.15])  # STOP, FWD, L, R
    oracle_radius: float = 1.0  # m; oracle STOPs within it (< 3.0 m success distance)

    def __post_init__(self) -> None:
        if self.name not in AGENTS:
            raise ValueError(f"agent.name must be one of {AGENTS}, got {self.name!r}")
        if isinstance(self.num_threads, bool) or not isinstance(self.num_threads, int) or self.num_threads < 0:
            raise ValueError(f"agent.num_threads must be an int >= 0 (0 = torch's default), got {self.num_threads!r}")
        if len(self.random_weights) != 4:
            raise ValueError(f"agent.random_weights must be 4 numbers (STOP, MOVE_FORWARD, TURN_LEFT, "
                             f"TURN_RIGHT), got {list(self.random_weights)}")
        if not (math.isfinite(self.oracle_radius) and 0 < self.oracle_radius < 3.0):
            raise ValueError(f"agent.oracle_radius must be in (0, 3.0) m, got {self.oracle_radius}")


@dataclass
class ShardConfig:
    """Shard `index` of `count`: episode i (after the stable sort by id) goes to shard i % count.

    Both null: taken from RANK/WORLD_SIZE (torchrun), SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT
    (SLURM job arrays) or SLURM_PROCID/SLURM_NTASKS (srun), in that order; else one shard.
    """

    index: Optional[int] = None
    count: Optional[int] = None

    def __post_init__(self) -> None:
        if (self.index is None) != (self.count is None):
            raise ValueError("shard.index and shard.count must be given together (or both null)")
        if self.count is not None and not (self.count >= 1 and 0 <= self.index < self.count):  # type: ignore[operator]
            raise ValueError(f"shard must satisfy 0 <= index < count, got index={self.index} count={self.count}")


@dataclass
class EvalConfig:
    """`vila-nav eval`: an agent over a VLN-CE split in the embedded simulator."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    history: FrameHistoryConfig = field(default_factory=_history_eval_default)
    parser: ParserConfig = field(default_factory=_parser_eval_default)
    shard: ShardConfig = field(default_factory=ShardConfig)
    output_dir: str = ""  # "" = runs/eval/<format>-<split>-<agent> (relative to the working dir)
    resume: bool = True  # skip episodes already in results.jsonl
    overwrite: bool = False  # with resume=false: delete earlier results instead of refusing
    plots: bool = False  # top-down trajectory PNG per episode (plots/)
    videos: bool = False  # RGB MP4 per episode (videos/)
    video_fps: float = 5.0
    progress: bool = True  # tqdm progress bar on stderr

    def __post_init__(self) -> None:
        if not (math.isfinite(self.video_fps) and self.video_fps > 0):
            raise ValueError(f"video_fps must be > 0, got {self.video_fps}")
