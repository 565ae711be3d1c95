"""TrainConfig: the typed schema of `vila-nav train` (preset config/train.yaml, schema `train_schema`).

    vila-nav train data.train=[runs/sft/r2r-train] data.val=runs/sft/r2r-val_seen max_steps=2000

Every field is validated in __post_init__, so a wrong value fails before a model is built.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

MIXED_PRECISION = ("no", "bf16", "fp16")


@dataclass
class ScratchModelConfig:
    """The model trained from scratch (ignored with init_from): a vila_nav.model.testing preset.

    image_size / num_video_frames (null = the preset's) are the two recipe choices that matter
    most on a CPU: input resolution (tokens per frame) and frames per decision (the 1/4/8
    ablation). Any other Preset field goes in `overrides`, added on the command line with a
    leading "+": `+model.overrides.llm_layers=4`. The tokenizer is a byte-level BPE trained on
    the training instructions, the ten answers and the prompt text; with phrase_tokens the
    prompt's fixed pieces and the ten answers become single tokens (same text, shorter sequences).
    """

    preset: str = "small"  # tiny | small
    image_size: Optional[int] = None  # px, square tower input (a multiple of the patch size)
    num_video_frames: Optional[int] = None  # K frames per decision
    overrides: Dict[str, Any] = field(default_factory=dict)
    tokenizer_vocab_size: int = 2048
    phrase_tokens: bool = True  # the prompt's fixed text and the ten answers are one token each

    def __post_init__(self) -> None:
        from vila_nav.model.testing import PRESETS, Preset

        if self.preset not in PRESETS:
            raise ValueError(f"model.preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        known = {f.name for f in dataclasses.fields(Preset)}
        unknown = sorted(set(self.overrides) - known)
        if unknown:
            raise ValueError(f"model.overrides: unknown preset field(s) {unknown}; valid: {sorted(known)}")
        for name in ("image_size", "num_video_frames"):
            if name in self.overrides:
                raise ValueError(f"set model.{name} instead of model.overrides.{name}")
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError(f"model.{name} must be >= 1 or null, got {value}")
        if int(self.tokenizer_vocab_size) < 262:
            raise ValueError(f"model.tokenizer_vocab_size must be >= 262, got {self.tokenizer_vocab_size}")
        self.build_preset()  # the Preset validates the combination (e.g. image_size % patch_size)

    def build_preset(self):
        """The Preset with image_size / num_video_frames / overrides applied."""
        from vila_nav.model.testing import PRESETS

        changes = dict(self.overrides)
        for name in ("image_size", "num_video_frames"):
            if getattr(self, name) is not None:
                changes[name] = int(getattr(self, name))
        return dataclasses.replace(PRESETS[self.preset], **changes)


@dataclass
class TrainableConfig:
    """Which parts of the VILA model receive gradients (the others are frozen)."""

    vision_tower: bool = True
    projector: bool = True
    llm: bool = True

    def __post_init__(self) -> None:
        if not (self.vision_tower or self.projector or self.llm):
            raise ValueError("trainable: at least one of vision_tower, projector, llm must be true")


@dataclass
class DataConfig:
    """SFT datasets (directories written by `vila-nav build-sft`)."""

    train: List[str] = field(default_factory=lambda: ["runs/sft/r2r-train"])
    val: str = ""  # SFT dataset of val_seen decisions ("" = no validation)
    use_weights: bool = True  # repeat samples by their rebalancing weight (false: each once per epoch)
    limit: Optional[int] = None  # first N training samples only (smoke tests); null = all
    num_workers: int = 0  # DataLoader worker processes (0 = load in the training process)
    blind: bool = False  # black frames instead of the stored ones (the "blind" baseline: language only)
    sources: Optional[List[str]] = None  # train only on these sample sources, e.g. [expert] (no recovery or dagger data)

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("data.train must list at least one SFT dataset directory")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"data.limit must be >= 1 or null, got {self.limit}")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {self.num_workers}")
        if self.sources is not None and (not self.sources or not set(self.sources) <= {"expert", "recovery", "dagger"}):
            raise ValueError(f"data.sources must be null or a non-empty subset of [expert, recovery, dagger], "
                             f"got {list(self.sources)}")


@dataclass
class OptimConfig:
    """AdamW with a linear warmup then cosine decay to 0 (transformers' schedule)."""

    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: List[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    warmup_steps: int = 100
    grad_clip: float = 1.0  # max global grad norm (0 = no clipping)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0 or self.eps <= 0 or self.grad_clip < 0 or self.warmup_steps < 0:
            raise ValueError("optim: weight_decay, grad_clip, warmup_steps must be >= 0 and eps > 0")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"optim.betas must be two numbers in [0, 1), got {list(self.betas)}")


@dataclass
class ValConfig:
    """Validation on the val SFT set: teacher-forced loss and exact-match, plus greedy decoding."""

    every: int = 500  # optimizer steps between validations (0 = only at the end)
    max_samples: int = 512  # val samples for loss / exact match (first N in file order)
    decode_samples: int = 128  # of those, how many are greedily decoded and parsed
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.every < 0 or self.max_samples < 1 or self.decode_samples < 0 or self.batch_size < 1:
            raise ValueError("val: every >= 0, max_samples >= 1, decode_samples >= 0, batch_size >= 1")


OBJECT_HEADS = ("linear", "names")  # aux.objects_head: a free linear layer, or tied to the word embeddings


@dataclass
class AuxConfig:
    """Training-only auxiliary losses (vila_nav.training.objective); checkpoints never hold them."""

    vision_weight: float = 0.0  # the current view's visual tokens -> the answer's direction (0 = off)
    # The LM's state where the answer starts -> the distance to the goal, in bins (a progress
    # monitor; 0 = off). Needs SFT data with goal_distance_m (built by this version of build-sft).
    progress_weight: float = 0.0
    progress_edges_m: list[float] = field(default_factory=lambda: [1.0, 2.0, 3.0, 5.0, 8.0])  # bin edges (m)
    # The current view's visual tokens -> which named objects it shows, within each range (the
    # simulator's ground truth; 0 = off). Needs SFT data with visible_objects (embedded simulator).
    objects_weight: float = 0.0
    objects_ranges_m: list[float] = field(default_factory=lambda: [2.0, 4.0, 8.0])  # "in view within r" (m)
    # linear: a free linear layer on the view's tokens; names: tied to the LM's word embeddings
    # (a name scores by how close the view's visual tokens come to its words; name_head.py).
    objects_head: str = "linear"
    # The LM's state where the answer starts -> is the object the instruction's last sentence
    # names in view within match_range_m (0 = off). Needs SFT data with visible_objects.
    match_weight: float = 0.0
    match_range_m: float = 3.0
    # Also score every goal-match row with another row's instruction (labelled for its goal), so
    # the frames alone cannot give the label away (one more LM pass over those prompts).
    match_swapped: bool = False

    def __post_init__(self) -> None:
        for name in ("vision_weight", "progress_weight", "objects_weight", "match_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"aux.{name} must be a finite number >= 0, got {value!r}")
        check_edges(self.progress_edges_m, "aux.progress_edges_m")
        check_edges(self.objects_ranges_m, "aux.objects_ranges_m")
        if self.objects_head not in OBJECT_HEADS:
            raise ValueError(f"aux.objects_head must be one of {list(OBJECT_HEADS)}, got {self.objects_head!r}")
        check_edges([self.match_range_m], "aux.match_range_m")


def check_edges(edges, name: str) -> list[float]:
    """Distance edges as floats; ValueError naming `name` unless increasing distances > 0 (m)."""
    out = [float(e) for e in edges]
    if not out or out[0] <= 0 or any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"{name} must be increasing distances > 0 (m), got {list(edges)}")
    return out


@dataclass
class TrainConfig:
    """`vila-nav train`: supervised fine-tuning of the VILA model on SFT datasets."""

    output_dir: str = ""  # "" = runs/train/default
    init_from: str = ""  # NaVILA-layout checkpoint to fine-tune ("" = from scratch, see `model`)
    model: ScratchModelConfig = field(default_factory=ScratchModelConfig)
    trainable: TrainableConfig = field(default_factory=TrainableConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    val: ValConfig = field(default_factory=ValConfig)
    aux: AuxConfig = field(default_factory=AuxConfig)
    batch_size: int = 8  # samples per process per micro-step
    grad_accum: int = 1  # micro-steps per optimizer step (global batch = batch_size x processes x grad_accum)
    max_steps: int = 1000  # optimizer steps
    mixed_precision: str = "no"  # no | bf16 | fp16 (fp16: CUDA only)
    gradient_checkpointing: bool = False  # recompute LLM / tower activations in backward (less memory, ~30% slower)
    cpu: bool = False  # force CPU even when CUDA is available
    threads: int = 0  # torch intra-op threads (0 = torch's default)
    seed: int = 0  # model init, data order, torch RNG
    save_every: int = 500  # optimizer steps between checkpoints (the last step is always saved)
    keep_checkpoints: int = 2  # newest step checkpoints kept (older ones deleted)
    log_every: int = 10  # optimizer steps between log lines / log.jsonl rows
    resume: bool = True  # continue from the newest checkpoint in output_dir if there is one
    resume_from: str = ""  # a specific step checkpoint directory to continue from
    overwrite: bool = False  # with resume=false: delete an earlier run in output_dir
    max_seconds: Optional[float] = None  # stop (with a checkpoint) after this wall time (s)
    stop_after_steps: Optional[int] = None  # stop (with a checkpoint) after this many steps of this invocation
    progress: bool = True  # tqdm progress bar on stderr

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.grad_accum < 1 or self.max_steps < 1:
            raise ValueError("batch_size, grad_accum and max_steps must be >= 1")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.save_every < 1 or self.log_every < 1 or self.keep_checkpoints < 1 or self.threads < 0:
            raise ValueError("save_every, log_every, keep_checkpoints must be >= 1 and threads >= 0")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0 or null, got {self.max_seconds}")
        if self.stop_after_steps is not None and self.stop_after_steps < 1:
            raise ValueError(f"stop_after_steps must be >= 1 or null, got {self.stop_after_steps}")
        if self.resume_from and not self.resume:
            raise ValueError("resume_from needs resume=true")
