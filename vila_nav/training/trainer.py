"""The SFT training loop (`vila-nav train`), built on accelerate.

    result = train(cfg)          # cfg: TrainConfig

One process per device; the same code runs on 1 CPU, 1 GPU, 8 GPUs (`accelerate launch` or
`torchrun`) and several nodes: accelerate reads the launcher's environment, wraps the objective
in DDP and puts it on the process's device. Sample order is a function of (seed, step) and
rank (sampler.py), so no data state is saved and every process knows its next batch.

Each optimizer step: grad_accum micro-batches (DDP gradient sync only on the last) -> clip ->
AdamW step -> cosine-with-warmup LR step. Every step's loss (mean over micro-batches and
processes) is appended to `<out>/log.jsonl`; validation rows go there too.

Output directory:
    config.yaml                        the composed configuration
    log.jsonl                          {"step", "epoch", "loss", "lr", "samples", "elapsed_s"} per
                                       step, {"step", "val_loss", "val_exact", ...} per validation
    loss_curve.png                     redrawn at every checkpoint and at the end
    checkpoints/step-0000500/          NaVILA layout (loadable with vila_nav.model.load) +
                                       trainer_state/ (optimizer, scheduler, RNG: state.py)
    final/                             NaVILA layout of the model after max_steps

Checkpoints are written to a hidden temporary directory and renamed when complete. Resuming
(resume=true, the default) continues from the newest checkpoint in output_dir (or resume_from)
and reproduces the uninterrupted run: same weights, optimizer moments, LR schedule, RNG states
and batch order. The settings that shape the run (model, data, optim, batch sizes, seed, mixed
precision, number of processes) must match the checkpoint's; max_steps may grow (the cosine
schedule is then stretched, which is no longer bit-identical to a run started with it).
SIGTERM or Ctrl-C ends the loop after its current optimizer step with a checkpoint of that step
(interrupt.py); so do max_seconds and stop_after_steps.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from vila_nav.training.interrupt import StopRequest
from vila_nav.training.state import (STATE_DIR, TrainStateError, load_head, load_rng, load_state, read_state,
                                     save_heads, save_rng, save_state)
from vila_nav.training.train_config import TrainConfig

log = logging.getLogger(__name__)

LOG_FILE = "log.jsonl"
CURVE_FILE = "loss_curve.png"
CHECKPOINTS = "checkpoints"
FINAL = "final"
# Config sections that must match the checkpoint's to resume exactly.
_RESUME_KEYS = ("init_from", "model", "trainable", "data.train", "data.use_weights", "data.limit", "optim",
                "batch_size", "grad_accum", "seed", "mixed_precision", "aux")


class TrainError(RuntimeError):
    """The run cannot start or continue (clear message)."""


@dataclasses.dataclass
class TrainResult:
    output_dir: Path
    step: int  # optimizer steps done (total, including resumed ones)
    start_step: int  # where this invocation started
    losses: list[float]  # per optimizer step run by this invocation
    last_checkpoint: Path | None
    final: Path | None  # final/ when max_steps was reached
    stopped: str  # "max_steps" | "max_seconds" | "stop_after_steps" | "SIGTERM" | "SIGINT"
    samples_per_s: float  # training throughput of this invocation (all processes)
    validation: dict | None  # the last validation result (main process only)
    main_process: bool  # False on the other processes of a distributed run


def output_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.output_dir or "runs/train/default").expanduser()


def _get(cfg_dict: dict, dotted: str) -> Any:
    cur: Any = cfg_dict
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete step checkpoint in `out`/checkpoints (None if there is none)."""
    root = out / CHECKPOINTS
    if not root.is_dir():
        return None
    done = [p for p in root.glob("step-*") if (p / STATE_DIR / "state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def _read_log(path: Path, upto_step: int) -> list[dict]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interruption
            if row.get("step", 0) <= upto_step:
                rows.append(row)
    return rows


def _param_groups(named: list[tuple[str, torch.nn.Parameter]], weight_decay: float):
    """AdamW groups: weight decay on matrices, none on biases, norms and other vectors."""
    decay = [(n, p) for n, p in named if p.ndim >= 2]
    no_decay = [(n, p) for n, p in named if p.ndim < 2]
    groups = [{"params": [p for _, p in decay], "weight_decay": weight_decay},
              {"params": [p for _, p in no_decay], "weight_decay": 0.0}]
    names = [n for n, _ in decay] + [n for n, _ in no_decay]  # optimizer state index order
    return groups, names


def _accelerator(cfg: TrainConfig):
    try:
        from accelerate import Accelerator
    except ImportError as exc:  # pragma: no cover - the train extra
        raise ImportError("vila-nav train needs accelerate: pip install 'vila_nav[train]' (or accelerate)") from exc
    if cfg.mixed_precision == "fp16" and (cfg.cpu or not torch.cuda.is_available()):
        raise TrainError("mixed_precision=fp16 needs CUDA; on CPU use mixed_precision=bf16 or no")
    from accelerate.state import AcceleratorState

    # accelerate keeps one AcceleratorState per process and refuses a second run (a notebook, the test
    # suite) with another mixed_precision. Drop the per-run settings; the process-group state
    # (PartialState: ranks, backend) is kept, so launched multi-process runs are unaffected.
    AcceleratorState._reset_state()
    return Accelerator(mixed_precision=cfg.mixed_precision, cpu=cfg.cpu, step_scheduler_with_optimizer=False)


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) SFT as configured; see the module docstring."""
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg)
    finally:
        torch.set_num_threads(threads_before)  # train() is also a library call: leave the process as it was


def _train(cfg: TrainConfig) -> TrainResult:
    from accelerate.utils import set_seed
    from transformers import get_cosine_schedule_with_warmup

    from vila_nav.config import to_yaml
    from vila_nav.training.collate import DecisionDataset, SftCollator
    from vila_nav.training.curve import plot_loss_curve
    from vila_nav.training.initial_model import initial_model
    from vila_nav.training.objective import SftObjective
    from vila_nav.training.sampler import BatchPlan, PlanSampler
    from vila_nav.training.store import SftDataset
    from vila_nav.training.trainable import configure_trainable

    acc = _accelerator(cfg)
    main_proc, rank, world = acc.is_main_process, acc.process_index, acc.num_processes
    out = output_dir(cfg)
    cfg_dict = json.loads(json.dumps(dataclasses.asdict(cfg)))

    # -- where to start -------------------------------------------------------------------------
    resume_ckpt: Path | None = None
    if cfg.resume_from:
        resume_ckpt = Path(cfg.resume_from).expanduser()
        if not (resume_ckpt / STATE_DIR / "state.json").is_file():
            raise TrainError(f"resume_from={resume_ckpt}: not a complete training checkpoint (no {STATE_DIR}/state.json)")
    elif cfg.resume:
        resume_ckpt = latest_checkpoint(out)
    elif latest_checkpoint(out) is not None:
        if not cfg.overwrite:
            raise TrainError(f"{out} holds checkpoints of an earlier run; resume=true continues it, "
                             "overwrite=true deletes it, or choose another output_dir")
        if main_proc:
            shutil.rmtree(out)
    acc.wait_for_everyone()
    start_step = 0
    saved: dict | None = None
    if resume_ckpt is not None:
        saved = read_state(resume_ckpt / STATE_DIR)
        _check_resume(saved, cfg_dict, world, resume_ckpt)
        start_step = int(saved["step"])
    # -- data (read before anything is written: a wrong path leaves no output behind) ------------
    store = SftDataset(cfg.data.train, limit=cfg.data.limit, sources=cfg.data.sources)
    val_store = SftDataset(cfg.data.val) if cfg.data.val else None
    if main_proc:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(to_yaml(cfg))

    set_seed(cfg.seed)
    # -- model ------------------------------------------------------------------------------------
    if resume_ckpt is not None:
        from vila_nav.model import load

        model = load(resume_ckpt, device="cpu", dtype=torch.float32)
    else:
        model = initial_model(cfg, (s.instruction for s in store.samples))
    store.num_frames = model.num_frames  # re-sample frames if the data was built with another K
    parts = configure_trainable(model, cfg.trainable)
    for part, counts in parts.items():
        if main_proc:
            log.info("%s: %d trainable, %d frozen parameters", part, counts["trainable"], counts["frozen"])
    if cfg.gradient_checkpointing:
        _enable_checkpointing(model.llm)
        if cfg.trainable.vision_tower:
            _enable_checkpointing(model.vision.model)
    size = int(model.vision.image_size)
    shapes = {tuple(m["frame_shape"][:2]) for m in store.manifests}
    if main_proc and shapes != {(size, size)}:
        log.info("stored frames are %s px, the model takes %d px: every frame is resized while training "
                 "(build the SFT data with frame_size=%d to skip that)", sorted(shapes), size, size)
    if cfg.aux.progress_weight > 0:
        _require_distances(store)
    uses_objects = cfg.aux.objects_weight > 0 or cfg.aux.match_weight > 0
    object_names = _object_names(store) if uses_objects else ()
    objective = SftObjective(model, aux_weight=cfg.aux.vision_weight, progress_weight=cfg.aux.progress_weight,
                             progress_edges_m=cfg.aux.progress_edges_m, objects_weight=cfg.aux.objects_weight,
                             object_names=object_names, objects_ranges_m=cfg.aux.objects_ranges_m,
                             objects_head=cfg.aux.objects_head,
                             match_weight=cfg.aux.match_weight, match_range_m=cfg.aux.match_range_m,
                             match_swapped=cfg.aux.match_swapped)
    if resume_ckpt is not None:
        for name, head in objective.heads().items():
            _load_head(head, resume_ckpt / STATE_DIR, name)
    named = [(n, p) for n, p in objective.named_parameters() if p.requires_grad]
    groups, names = _param_groups(named, cfg.optim.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), eps=cfg.optim.eps)
    scheduler = get_cosine_schedule_with_warmup(optimizer, cfg.optim.warmup_steps, cfg.max_steps)
    objective, optimizer = acc.prepare(objective, optimizer)
    inner_opt = getattr(optimizer, "optimizer", optimizer)
    if resume_ckpt is not None:
        load_state(resume_ckpt / STATE_DIR, optimizer=inner_opt, scheduler=scheduler, param_names=names)
        load_rng(resume_ckpt / STATE_DIR, rank)
        if main_proc:
            log.info("resumed from %s at step %d", resume_ckpt, start_step)
    if start_step >= cfg.max_steps and main_proc:
        log.info("step %d >= max_steps %d: nothing to do", start_step, cfg.max_steps)

    weights = store.weights if cfg.data.use_weights else [1] * len(store)
    plan = BatchPlan(weights, cfg.batch_size, world, cfg.seed)
    collator = SftCollator(model.tokenizer, model.image_processor, model.num_frames, model.template)
    loader = torch.utils.data.DataLoader(
        DecisionDataset(store, blind=cfg.data.blind),
        batch_sampler=PlanSampler(plan, start_step * cfg.grad_accum, cfg.max_steps * cfg.grad_accum, rank),
        collate_fn=collator,
        num_workers=cfg.data.num_workers,
    )
    if val_store is not None:
        val_store.num_frames = model.num_frames
    val_set = DecisionDataset(val_store, blind=cfg.data.blind) if val_store is not None else None
    if main_proc:
        log.info("%d training samples (%d with rebalancing weights), %d per epoch used, %d batches/epoch; "
                 "global batch %d x %d accumulation; %s on %s x %d", len(store), sum(weights),
                 plan.batches_per_epoch * plan.global_batch, plan.batches_per_epoch, plan.global_batch,
                 cfg.grad_accum, cfg.mixed_precision, acc.device, world)

    # -- loop ------------------------------------------------------------------------------------
    log_path = out / LOG_FILE
    rows = _read_log(log_path, start_step) if main_proc else []
    if main_proc:
        _write_rows(log_path, rows)
    step, micro = start_step, start_step * cfg.grad_accum
    losses: list[float] = []
    pending: list[torch.Tensor] = []
    last_ckpt, validation, stopped = resume_ckpt, None, "max_steps"
    t0 = time.perf_counter()
    train_s, samples_done = 0.0, 0
    t_step = time.perf_counter()
    elapsed0 = float(rows[-1].get("elapsed_s", 0.0)) if rows else 0.0
    bar = None
    if main_proc and cfg.progress and start_step < cfg.max_steps:
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)
    objective.train()
    unwrapped = acc.unwrap_model(objective)
    logged = ("lm_loss",) + unwrapped.aux_losses()  # the losses each log row reports

    def checkpoint(at: int) -> Path:
        path = _save_checkpoint(acc, unwrapped.model, inner_opt, scheduler, names, at, out, cfg, cfg_dict,
                                heads=unwrapped.heads())
        if main_proc:
            plot_loss_curve(rows, out / CURVE_FILE, title=f"{out.name}: step {at}")
        return path

    with StopRequest() as stop_request:  # SIGTERM / Ctrl-C: checkpoint at the end of this step
        for batch in loader:
            last_micro = (micro + 1) % cfg.grad_accum == 0
            sync = contextlib.nullcontext() if last_micro or world == 1 else acc.no_sync(objective)
            with sync:
                result = objective(batch)
                acc.backward(result["loss"] / cfg.grad_accum)
            pending.append(torch.stack([result[k] for k in logged]))
            samples_done += len(batch["answers"]) * world
            micro += 1
            if not last_micro:
                continue
            if cfg.optim.grad_clip > 0:
                acc.clip_grad_norm_([p for _, p in named], cfg.optim.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            # the logged losses, mean over micro-steps and processes
            means = dict(zip(logged, (float(v) for v in acc.reduce(torch.stack(pending).mean(dim=0), reduction="mean"))))
            loss = means.pop("lm_loss")
            pending = []
            losses.append(loss)
            now = time.perf_counter()
            train_s += now - t_step
            if not math.isfinite(loss):
                raise TrainError(f"loss is {loss} at step {step}; lower optim.lr or check the data")
            if main_proc:
                row = {"step": step, "epoch": round(plan.epoch_of(micro), 4), "loss": loss,
                       "lr": scheduler.get_last_lr()[0], "samples": step * plan.global_batch * cfg.grad_accum,
                       "elapsed_s": round(elapsed0 + now - t0, 3), **means}  # + each auxiliary loss it computes
                rows.append(row)
                _append_row(log_path, row)
                if bar is not None:
                    bar.update(1)
                    if step % cfg.log_every == 0:
                        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{row['lr']:.2e}")
                elif step % cfg.log_every == 0:
                    log.info("step %d loss %.4f lr %.3e", step, loss, row["lr"])
            out_of_time = cfg.max_seconds is not None and now - t0 >= cfg.max_seconds
            signalled = stop_request.received is not None
            if world > 1:  # every process must stop at the same step (a signal may reach only some)
                flags = acc.reduce(torch.tensor([float(out_of_time), float(signalled)], device=acc.device), reduction="sum")
                out_of_time, signalled = bool(flags[0] > 0), bool(flags[1] > 0)
            out_of_steps = cfg.stop_after_steps is not None and step - start_step >= cfg.stop_after_steps
            if val_set is not None and not signalled and (
                    (cfg.val.every and step % cfg.val.every == 0) or step == cfg.max_steps):
                validation = _validate(acc, unwrapped, val_set, collator, cfg, step, rows, log_path)
            if step % cfg.save_every == 0 or step == cfg.max_steps or out_of_time or out_of_steps or signalled:
                last_ckpt = checkpoint(step)
            t_step = time.perf_counter()
            if (out_of_time or out_of_steps or signalled) and step < cfg.max_steps:
                stopped = ((stop_request.received or "SIGTERM") if signalled  # another process got it
                           else "max_seconds" if out_of_time else "stop_after_steps")
                if main_proc:
                    log.info("%s at step %d: checkpoint %s; run the same command to resume", stopped, step, last_ckpt)
                break
    if bar is not None:
        bar.close()
    final = None
    if step >= cfg.max_steps:
        final = out / FINAL
        if main_proc:
            _save_model(unwrapped.model, final)
            plot_loss_curve(rows, out / CURVE_FILE, title=f"{out.name}: step {step}")
        acc.wait_for_everyone()
    rate = samples_done / train_s if train_s > 0 else 0.0
    return TrainResult(out, step, start_step, losses, last_ckpt, final, stopped, rate, validation, main_proc)


def _enable_checkpointing(module) -> None:
    # transformers >= 5 renamed gradient_checkpointing_enable to activation_checkpointing_enable.
    if hasattr(module, "activation_checkpointing_enable"):
        module.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def _check_resume(saved: dict, cfg_dict: dict, world: int, ckpt: Path) -> None:
    # A setting added after the checkpoint was written is absent from its config: it ran with the
    # dataclass default (e.g. aux.progress_weight = 0, off), so compare against that.
    before = _merged(dataclasses.asdict(TrainConfig()), saved.get("extra", {}).get("config", {}))
    diff = [k for k in _RESUME_KEYS if _get(before, k) != _get(cfg_dict, k)]
    if diff:
        shown = "; ".join(f"{k}: checkpoint {_get(before, k)!r}, now {_get(cfg_dict, k)!r}" for k in diff)
        raise TrainError(f"cannot resume from {ckpt}: settings differ ({shown}); use the checkpoint's settings, "
                         "or start a new run (another output_dir, or init_from=<checkpoint> to fine-tune from it)")
    was = saved.get("extra", {}).get("world_size")
    if was is not None and was != world:
        raise TrainError(f"cannot resume from {ckpt}: it was trained with {was} processes, this run has {world} "
                         "(the batch order depends on it)")
    if _get(before, "max_steps") != cfg_dict["max_steps"]:
        log.warning("max_steps changed from %s to %s: the cosine schedule is stretched from here on",
                    _get(before, "max_steps"), cfg_dict["max_steps"])


def _merged(defaults: dict, saved: dict) -> dict:
    """`saved` with the keys it lacks taken from `defaults`, recursively."""
    out = dict(defaults)
    for k, v in saved.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _require_distances(store) -> None:
    """The progress loss needs every training sample's goal distance: fail up front, naming the data."""
    missing = sorted({store.paths[s.dataset] for s in store.samples if s.goal_distance_m is None}, key=str)
    if missing:
        raise TrainError(f"aux.progress_weight > 0 needs SFT data that records goal_distance_m; {', '.join(map(str, missing))} "
                         "does not (built by an older build-sft): rebuild it with `vila-nav build-sft`, or set "
                         "aux.progress_weight=0")


def _object_names(store) -> tuple[str, ...]:
    """The object loss's label names: every name the training data shows (sorted), so a resumed
    run (same data) gets the same head. Fails up front, naming the data, if a sample lacks them."""
    missing = sorted({store.paths[s.dataset] for s in store.samples if s.visible_objects is None}, key=str)
    if missing:
        raise TrainError(f"aux.objects_weight / aux.match_weight > 0 need SFT data that records visible_objects; "
                         f"{', '.join(map(str, missing))} "
                         "does not (built by an older build-sft, or from a simulator that does not know them): rebuild "
                         "it with `vila-nav build-sft` on the embedded simulator, or set aux.objects_weight=0 aux.match_weight=0")
    names = sorted({name for s in store.samples for name in s.visible_objects})
    if not names:
        raise TrainError("aux.objects_weight / aux.match_weight > 0 but no training sample shows a named object: "
                         "set aux.objects_weight=0 aux.match_weight=0")
    return tuple(names)


def _load_head(head, folder: Path, name: str) -> None:
    """Restore a training-only head saved with a training state (strict: same keys and shapes)."""
    try:
        load_head(head, folder, name)
    except FileNotFoundError as exc:
        raise TrainError(f"cannot resume: {exc.filename} is missing (the checkpoint was trained without that aux "
                         "loss; resume with the same aux.* weights, or start a new run with init_from=)") from exc
    except TrainStateError as exc:
        raise TrainError(f"cannot resume: {exc}") from exc


def _save_model(model, path: Path) -> None:
    from vila_nav.model.checkpoint import save

    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    save(model, tmp)
    if path.exists():
        shutil.rmtree(path)
    tmp.replace(path)


def _save_checkpoint(acc, model, optimizer, scheduler, names, step: int, out: Path, cfg: TrainConfig,
                     cfg_dict: dict, heads: dict | None = None) -> Path:
    """NaVILA layout + trainer_state/, written to a temporary name and renamed when complete."""
    from vila_nav.model.checkpoint import save

    root = out / CHECKPOINTS
    final = root / f"step-{step:07d}"
    tmp = root / f".step-{step:07d}.tmp"
    if acc.is_main_process:
        if tmp.exists():
            shutil.rmtree(tmp)
        save(model, tmp)
    acc.wait_for_everyone()
    save_rng(tmp / STATE_DIR, acc.process_index)
    acc.wait_for_everyone()
    if acc.is_main_process:
        save_state(tmp / STATE_DIR, optimizer=optimizer, scheduler=scheduler, param_names=names, step=step,
                   extra={"config": cfg_dict, "world_size": acc.num_processes})
        save_heads(tmp / STATE_DIR, heads or {})
        if final.exists():
            shutil.rmtree(final)
        tmp.replace(final)
        done = sorted((p for p in root.glob("step-*") if p != final), key=lambda p: int(p.name.split("-")[1]))
        for old in done[: max(0, len(done) - (cfg.keep_checkpoints - 1))]:
            shutil.rmtree(old)
    acc.wait_for_everyone()
    return final


def _validate(acc, objective, val_set, collator, cfg: TrainConfig, step: int, rows: list, log_path: Path) -> dict | None:
    from vila_nav.training.validation import validate

    result = None
    if acc.is_main_process:
        result = validate(objective, val_set, collator, batch_size=cfg.val.batch_size, max_samples=cfg.val.max_samples,
                          decode_samples=cfg.val.decode_samples, autocast=acc.autocast)
        row = {"step": step, **result}
        rows.append(row)
        _append_row(log_path, row)
        acc_txt = f", action acc {result['val_action_acc']:.3f}" if "val_action_acc" in result else ""
        log.info("step %d: val loss %.4f, exact %.3f%s", step, result["val_loss"], result["val_exact"], acc_txt)
    acc.wait_for_everyone()
    return result


def _write_rows(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def _append_row(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")
