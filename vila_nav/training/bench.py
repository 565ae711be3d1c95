"""`vila-nav bench-train`: training throughput and decision latency of a model configuration.

    vila-nav bench-train [--steps N] [key=value ...]     (hydra overrides of config/train.yaml)

Builds the from-scratch model of `model.*` exactly as `vila-nav train` does (random weights,
the BPE tokenizer with phrase tokens unless model.phrase_tokens=false), makes `batch_size` synthetic decisions (random frames at the model's input size, a
typical R2R-length instruction, a canonical answer) and prints, as measured in this run:
parameters and fp32 checkpoint size, tokens per sample, the time of a training step (forward +
backward + AdamW; min and median of --steps), samples/s, and one greedy decision with a cold
and a warm feature cache (vision, prefill, per-token decode, and the total for a canonical
answer in this tokenizer: ~11 tokens without phrase tokens, 2 with them). Compare sizes with e.g. `model.image_size=64` or
`model.num_video_frames=4`. Nothing is asserted: figures only.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

INSTRUCTION = ("Walk out of the bedroom and turn left into the hallway. Go past the kitchen counter and "
               "the red chair, then enter the living room and stop next to the grey sofa.")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="vila-nav bench-train", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="hydra overrides of config/train.yaml (model.*, batch_size, threads)")
    p.add_argument("--steps", type=int, default=5, help="timed training steps (after one warm-up step)")
    args = p.parse_args(argv)

    import torch

    from vila_nav.config import ConfigError, compose
    from vila_nav.training.train_config import TrainConfig

    try:
        cfg = compose(TrainConfig, "train", args.overrides)
    except ConfigError as exc:
        print(f"vila-nav bench-train: {exc}", file=sys.stderr)
        return 2
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        _bench(cfg, args.steps)
    finally:
        torch.set_num_threads(threads_before)
    return 0


def _bench(cfg, steps: int) -> None:
    import numpy as np
    import torch

    from vila_nav.actions import CANONICAL_OUTPUTS
    from vila_nav.training.collate import SftCollator
    from vila_nav.training.initial_model import initial_model
    from vila_nav.training.objective import SftObjective

    model = initial_model(cfg, [INSTRUCTION])  # the trainer's model: tokenizer (phrase tokens) included
    model.train()
    k, size = model.num_frames, int(model.vision.image_size)
    rng = np.random.default_rng(0)
    items = []
    for b in range(cfg.batch_size):
        frames = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(k)]
        keys = [(b, i) for i in range(k)]
        items.append({"frames": frames, "frame_keys": keys, "instruction": INSTRUCTION,
                      "answer": CANONICAL_OUTPUTS[b % len(CANONICAL_OUTPUTS)], "id": str(b)})
    collator = SftCollator(model.tokenizer, model.image_processor, k)
    objective = SftObjective(model)
    params = [p for p in objective.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    # As the trainer does (accelerate): autocast for mixed_precision bf16, weights stay fp32. The
    # benchmark model is on the CPU, where fp16 autocast is not offered (the trainer refuses it too).
    amp = {"bf16": torch.bfloat16}.get(cfg.mixed_precision)
    device_type = "cpu"
    times = []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        batch = collator(items)
        with torch.autocast(device_type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = objective(batch)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - t0)
    n_params = sum(p.numel() for p in model.parameters())
    seq = len(batch["input_ids"][0]) - k + k * model.projector.num_tokens(model.vision.num_tokens)
    model.eval()
    answer_len = len(collator.answer_ids(CANONICAL_OUTPUTS[2]))  # "... move forward 75 cm." + <|eot_id|>
    model.max_new_tokens = answer_len + 1  # a random model's own answers vary in length
    frames = items[0]["frames"]
    with torch.no_grad():
        model.reset()
        model.generate(frames, INSTRUCTION)
        cold = dict(model.last_stats)
        shifted = frames[1:] + [rng.integers(0, 256, (size, size, 3), dtype=np.uint8)]  # one new frame
        model.generate(shifted, INSTRUCTION)
        warm = dict(model.last_stats)
    best, median = min(times), statistics.median(times)
    print(f"model: preset {cfg.model.preset}, {size} px, {k} frames, {n_params / 1e6:.2f} M parameters "
          f"({n_params * 4 / 1e6:.1f} MB fp32)")
    print(f"sequence: {seq} tokens per sample ({k * model.projector.num_tokens(model.vision.num_tokens)} visual)")
    print(f"train step, batch {cfg.batch_size}, {torch.get_num_threads()} threads, mixed precision "
          f"{cfg.mixed_precision}: min {best:.3f} s, median {median:.3f} s "
          f"-> {cfg.batch_size / best:.1f} samples/s (best), {cfg.batch_size / median:.1f} samples/s (median)")
    for name, st in (("cold cache", cold), ("one new frame", warm)):
        per_token = st["decode_s"] / max(st["new_tokens"] - 1, 1)
        print(f"decision, {name}: vision {st['vision_s']:.3f} s ({st['vision_calls']} frames), prefill "
              f"{st['prefill_s']:.3f} s, decode {per_token * 1e3:.1f} ms/token -> about "
              f"{st['vision_s'] + st['prefill_s'] + (answer_len - 1) * per_token:.3f} s for an answer of "
              f"{answer_len} tokens (stop token included)")
