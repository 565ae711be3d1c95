"""SftConfig: the typed schema of `vila-nav build-sft` (preset config/sft.yaml, schema `sft_schema`).

    vila-nav build-sft dataset.split=train recovery.rollouts_per_episode=1 output_dir=runs/sft/train

Every field is validated in __post_init__, so a wrong value fails before a simulator is built.
Units: metres (m), pixels (px).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from vila_nav.actions import check_turn_reversal
from vila_nav.envs.config import SimConfig
from vila_nav.evaluation.config import DatasetConfig
from vila_nav.training.rollout import check_face_goal_deg

FRAME_ENCODINGS = ("png", "raw")


def _train_split() -> DatasetConfig:
    return DatasetConfig(format="r2r", split="train")


def _check_prob(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


@dataclass
class RecoveryConfig:
    """DAgger-style recovery data: perturbed expert rollouts relabelled by the expert.

    Each perturbed rollout follows the expert, but at every decision point with probability
    `perturb_prob` (at most `max_perturbations` times per rollout, never before
    `min_decisions_before` expert decisions) it executes a random mid-level action instead (a
    random direction among forward / left / right, 1..`max_primitives` primitives). Decision
    points after the first perturbation are recorded with the expert's label for the actual
    state (source "recovery"); those before it repeat the clean rollout and are not recorded.
    """

    rollouts_per_episode: int = 1  # perturbed rollouts per episode (0 = no recovery data)
    perturb_prob: float = 0.25  # per decision point
    max_perturbations: int = 2  # per rollout
    max_primitives: int = 3  # a perturbation is 1..max_primitives equal primitives
    min_decisions_before: int = 1  # expert decisions before the first perturbation may happen

    def __post_init__(self) -> None:
        _check_prob("recovery.perturb_prob", self.perturb_prob)
        for name, low in (("rollouts_per_episode", 0), ("max_perturbations", 1), ("max_primitives", 1),
                          ("min_decisions_before", 0)):
            if int(getattr(self, name)) < low:
                raise ValueError(f"recovery.{name} must be >= {low}, got {getattr(self, name)!r}")


@dataclass
class DaggerConfig:
    """DAgger proper: rollouts driven partly by a trained model, relabelled by the expert.

    With `model` set (a NaVILA-layout checkpoint directory, e.g. the last training run's
    final/), every episode gets `rollouts_per_episode` extra rollouts in which, at each decision
    point, the model's own answer runs instead of the expert's with probability `policy_prob`.
    Decision points after its first deviation are recorded with the expert's label for the
    state actually reached (source "dagger"), so the next training round sees the states its
    predecessor drives itself into. The model runs on `device` with NaVILA's frame sampling.

    `label_model_decisions` also records the decisions the model takes itself, each labelled
    with the expert's answer for that state by a look-ahead in the simulator (rollout.py), so a
    model that loops is told at every state of the loop what to do; its rollouts that run out
    of steps are kept (their labels are still the expert's). Needs a simulator that can save
    and restore its state (MiniWorld).

    `on_turn_reversal` applies the deployed turn-reversal rule to the model's answers
    (parser.on_turn_reversal of the evaluator and the node; vila_nav.turn_guard): build with the
    value the model will run with, so the data holds the states it really reaches.
    """

    model: str = ""  # "" = no dagger rollouts
    rollouts_per_episode: int = 1
    policy_prob: float = 0.5  # per decision point
    device: str = "cpu"
    quantization: str = "none"
    label_model_decisions: bool = False  # also record the model's own decisions, expert-labelled
    on_turn_reversal: str = "allow"  # "allow" | "forward": the model's turn back in place runs | is a forward step

    def __post_init__(self) -> None:
        _check_prob("dagger.policy_prob", self.policy_prob)
        check_turn_reversal(self.on_turn_reversal, "dagger.on_turn_reversal")
        if int(self.rollouts_per_episode) < 0:
            raise ValueError(f"dagger.rollouts_per_episode must be >= 0, got {self.rollouts_per_episode!r}")

    @property
    def enabled(self) -> bool:
        return bool(self.model) and int(self.rollouts_per_episode) > 0


@dataclass
class RebalanceConfig:
    """Label rebalancing by repetition (see vila_nav.training.rebalance for the exact rule).

    Every answer whose count is below target_ratio x (count of the most frequent answer) is
    repeated up to that target, at most max_repeat times per sample; nothing is dropped.
    target_ratio 0 = no rebalancing (every weight 1).
    """

    target_ratio: float = 0.5
    max_repeat: int = 8

    def __post_init__(self) -> None:
        _check_prob("rebalance.target_ratio", self.target_ratio)
        if int(self.max_repeat) < 1:
            raise ValueError(f"rebalance.max_repeat must be >= 1, got {self.max_repeat!r}")


@dataclass
class SftConfig:
    """`vila-nav build-sft`: navigation SFT data from expert (and perturbed) rollouts."""

    dataset: DatasetConfig = field(default_factory=_train_split)  # which VLN-CE episodes
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = ""  # "" = runs/sft/<format>-<split>
    overwrite: bool = False  # replace an existing dataset at output_dir
    num_frames: int = 8  # K frames per sample (K - 1 history + current); loaders may re-sample
    frame_size: int = 112  # px: stored frames squashed to frame_size^2 (bicubic); 0 = simulator size
    frame_encoding: str = "png"  # png (lossless, ~5x smaller) | raw (uint8 tensors)
    expert: bool = True  # record the clean expert rollout of every episode
    expert_radius_m: float = 1.0  # the expert says STOP within this geodesic distance of the goal
    face_goal_deg: float = 0.0  # > 0: before STOP the expert turns until the goal is within this many degrees ahead
    max_merge: int = 3  # equal primitives merged into one answer (3: 75 cm / 45 deg)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    dagger: DaggerConfig = field(default_factory=DaggerConfig)
    rebalance: RebalanceConfig = field(default_factory=RebalanceConfig)
    shard_rollouts: int = 64  # rollouts per shard (frames of one shard are held in memory)
    seed: int = 0  # perturbations and rebalancing
    workers: int = 0  # simulator processes (0 or 1 = this process); the output does not depend on it
    progress: bool = True  # tqdm progress bar on stderr

    def __post_init__(self) -> None:
        if int(self.num_frames) < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames!r}")
        if int(self.frame_size) < 0:
            raise ValueError(f"frame_size must be >= 0 px (0 = simulator size), got {self.frame_size!r}")
        if self.frame_encoding not in FRAME_ENCODINGS:
            raise ValueError(f"frame_encoding must be one of {FRAME_ENCODINGS}, got {self.frame_encoding!r}")
        if not (math.isfinite(self.expert_radius_m) and 0 < self.expert_radius_m < self.sim.success_distance_m):
            raise ValueError(f"expert_radius_m must be in (0, sim.success_distance_m={self.sim.success_distance_m}) m, "
                             f"got {self.expert_radius_m!r}")
        check_face_goal_deg(self.face_goal_deg, self.sim.turn_angle_deg, "sim.turn_angle_deg")
        if int(self.max_merge) < 1:
            raise ValueError(f"max_merge must be >= 1, got {self.max_merge!r}")
        if int(self.shard_rollouts) < 1:
            raise ValueError(f"shard_rollouts must be >= 1, got {self.shard_rollouts!r}")
        if int(self.workers) < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers!r}")
        if self.dagger.enabled and self.dagger.label_model_decisions and self.sim.backend != "miniworld":
            raise ValueError(f"dagger.label_model_decisions needs a simulator that can save and restore its state "
                             f"(sim.backend=miniworld), got sim.backend={self.sim.backend}")
        if not self.expert and self.recovery.rollouts_per_episode == 0 and not self.dagger.enabled:
            raise ValueError("nothing to record: expert=false, recovery.rollouts_per_episode=0 and no dagger.model")
