"""`vila-nav train`: supervised fine-tuning of a VILA navigation model on SFT datasets.

    vila-nav train [--print-config] [key=value ...]      (hydra overrides of config/train.yaml)

Examples:
    vila-nav train data.train=[runs/sft/r2r-train] data.val=runs/sft/r2r-val_seen output_dir=runs/train/small
    vila-nav train output_dir=runs/train/small                  # run again: resumes from its newest checkpoint
    vila-nav train init_from=/models/navila-llama3-8b-8f trainable.vision_tower=false mixed_precision=bf16
    accelerate launch --num_processes 8 -m vila_nav.cli train ...     (or torchrun --nproc_per_node 8 -m vila_nav.cli train ...)

SIGTERM (what schedulers, torchrun and `timeout` send) or Ctrl-C ends the run after its current
optimizer step with a checkpoint of that step; a second one stops at once.

Exit status: 0 trained to max_steps (or stopped at max_seconds with a checkpoint); 1 the run
could not start or failed; 2 bad configuration; 130 interrupted (run the same command to resume
from the newest checkpoint).
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from vila_nav.config import command_config

    from .train_config import TrainConfig

    cfg = command_config(TrainConfig, "train", argv, prog="vila-nav train", doc=__doc__)
    if isinstance(cfg, int):
        return cfg

    from vila_nav.model.checkpoint import CheckpointError

    from .interrupt import StopRequest
    from .state import TrainStateError
    from .store import SftFormatError
    from .trainer import TrainError, output_dir, train

    try:
        result = train(cfg)
    except (TrainError, TrainStateError, SftFormatError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"vila-nav train: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nvila-nav train: interrupted; run the same command to resume from the newest checkpoint in "
              f"{output_dir(cfg)}", file=sys.stderr)
        return 130
    interrupted = result.stopped in StopRequest.NAMES
    if not result.main_process:
        return 130 if interrupted else 0  # one summary per run, from the main process
    last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
    print(f"steps {result.start_step} -> {result.step} ({result.stopped}); last loss {last}; "
          f"{result.samples_per_s:.2f} samples/s")
    if result.validation:
        v = result.validation
        acc = f", action accuracy {v['val_action_acc']:.3f}" if "val_action_acc" in v else ""
        print(f"validation: loss {v['val_loss']:.4f}, exact match {v['val_exact']:.3f}{acc}")
    print(f"model: {result.final or result.last_checkpoint}; log and loss curve in {result.output_dir}")
    if interrupted:
        print(f"vila-nav train: {result.stopped} at step {result.step}, saved in {result.last_checkpoint}; run the "
              "same command to resume", file=sys.stderr)
        return 130
    return 0
