"""EpisodeGenConfig: what `vila-nav gen-episodes` generates (hydra-composable dataclass)."""
from __future__ import annotations

from dataclasses import dataclass, field

from vila_nav.envs.config import SimConfig

FORMATS = ("r2r", "rxr")
SPLITS = ("train", "val_seen", "val_unseen")


@dataclass
class EpisodeGenConfig:
    """Episode counts per split and format, path lengths and the expert's stopping radius.

    Defaults write the shipped demo set (val_unseen only). The training set:
    `vila-nav gen-episodes splits=[train,val_seen] out_dir=/data/episodes`.
    """

    out_dir: str = ""  # dataset root ("" = the shipped sim/episodes/); writes <out_dir>/<format>/<split>/...
    formats: list[str] = field(default_factory=lambda: ["r2r", "rxr"])
    splits: list[str] = field(default_factory=lambda: ["val_unseen"])
    r2r_episodes: dict[str, int] = field(default_factory=lambda: {"train": 3000, "val_seen": 200, "val_unseen": 120})
    rxr_episodes: dict[str, int] = field(default_factory=lambda: {"train": 1500, "val_seen": 100, "val_unseen": 60})
    seed: int = 0
    r2r_geodesic_m: list[float] = field(default_factory=lambda: [4.0, 15.0])  # [min, max] start-goal geodesic
    rxr_geodesic_m: list[float] = field(default_factory=lambda: [5.0, 18.0])  # RxR routes run longer
    goal_radius_m: float = 3.0  # written to goals[].radius (VLN-CE success distance)
    expert_goal_radius_m: float = 0.25  # the reference route stops this close to the goal (geodesic)
    min_clearance_m: float = 0.3  # starts and goals keep this far from walls and objects
    other_room_prob: float = 0.85  # chance the start is sampled in another room than the goal
    landmark_goal_prob: float = 0.7  # chance the goal is placed next to a landmark
    max_tries: int = 60  # sampling attempts per episode before giving up (an error)
    workers: int = 2  # processes (0 = in this process)
    sim: SimConfig = field(default_factory=SimConfig)

    def __post_init__(self) -> None:
        for f in self.formats:
            if f not in FORMATS:
                raise ValueError(f"formats: unknown format {f!r}; expected a subset of {FORMATS}")
        for s in self.splits:
            if s not in SPLITS:
                raise ValueError(f"splits: unknown split {s!r}; expected a subset of {SPLITS}")
        for name in ("r2r_episodes", "rxr_episodes"):
            counts = getattr(self, name)
            for s, n in counts.items():
                if s not in SPLITS or int(n) < 0:
                    raise ValueError(f"{name}: expected {{split: count >= 0}} for splits {SPLITS}, got {dict(counts)}")
        for name in ("r2r_geodesic_m", "rxr_geodesic_m"):
            lo_hi = list(getattr(self, name))
            if len(lo_hi) != 2 or not 0 < lo_hi[0] < lo_hi[1]:
                raise ValueError(f"{name} must be [min, max] with 0 < min < max, got {lo_hi}")
        if not 0 < self.expert_goal_radius_m < self.goal_radius_m:
            raise ValueError(f"expert_goal_radius_m must be in (0, goal_radius_m), got {self.expert_goal_radius_m}")
        if self.expert_goal_radius_m < self.sim.forward_step_m / 2:
            raise ValueError(
                f"expert_goal_radius_m ({self.expert_goal_radius_m}) below half a forward step "
                f"({self.sim.forward_step_m / 2}): the expert could circle the goal"
            )
        for name in ("other_room_prob", "landmark_goal_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_tries < 1 or self.workers < 0:
            raise ValueError(f"max_tries must be >= 1 and workers >= 0, got {self.max_tries}, {self.workers}")

    def count(self, fmt: str, split: str) -> int:
        """Episodes to generate for a format and split."""
        return int((self.r2r_episodes if fmt == "r2r" else self.rxr_episodes).get(split, 0))

    def geodesic_range(self, fmt: str) -> tuple[float, float]:
        """(min, max) start-goal geodesic distance (m) for a format."""
        lo, hi = self.r2r_geodesic_m if fmt == "r2r" else self.rxr_geodesic_m
        return float(lo), float(hi)
