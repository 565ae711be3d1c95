"""Resumable training state without pickle: safetensors for tensors, JSON for everything else.

(accelerate's save_state writes torch.save pickles; a checkpoint here must never need unpickling.)

    <checkpoint>/trainer_state/state.json            step, config, parameter names, optimizer
                                                     param_groups, scheduler state, Python RNG
    <checkpoint>/trainer_state/optimizer.safetensors "<param index>.<name>" -> AdamW's step,
                                                     exp_avg, exp_avg_sq (fp32, as in memory)
    <checkpoint>/trainer_state/rng-rank<r>.safetensors torch CPU (and CUDA) generator states and
                                                     numpy's global MT19937 key of process r
    <checkpoint>/trainer_state/<name>.safetensors    each training-only head's state_dict
                                                     (aux_head, match_head, ...)

The model weights are the checkpoint's NaVILA layout next to trainer_state/. JSON floats are
written with repr (shortest round-trip), so learning rates and betas come back bit-exact, and
the parameter names are stored in optimizer order and checked on load, so state can never be
attached to the wrong tensors.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vila_nav.training.store import readable

FORMAT = "vila_nav.train_state/1"
STATE_DIR = "trainer_state"
STATE_JSON = "state.json"
OPTIMIZER_FILE = "optimizer.safetensors"


class TrainStateError(ValueError):
    """A training state that is missing or does not match the run being resumed."""


def head_file(folder: str | Path, name: str) -> Path:
    """Where a training-only head `name` (e.g. "match_head") lives in a trainer_state/ folder."""
    return Path(folder) / f"{name}.safetensors"


def save_heads(folder: str | Path, heads: dict[str, torch.nn.Module]) -> None:
    """Write each training-only head's state_dict next to the training state."""
    from safetensors.torch import save_file

    for name, head in heads.items():
        save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, str(head_file(folder, name)))


def load_head(head: torch.nn.Module, folder: str | Path, name: str) -> None:
    """Restore a training-only head strictly (same keys and shapes). FileNotFoundError (its
    filename the path) when the file is missing; TrainStateError when it does not fit `head`."""
    from safetensors.torch import load_file

    path = head_file(folder, name)
    if not path.is_file():
        raise FileNotFoundError(2, "no such file", str(path))
    state = load_file(str(path))
    want = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        raise TrainStateError(f"{path} holds {got}, the head needs {want}")
    head.load_state_dict(state)


def _rng_file(folder: Path, rank: int) -> Path:
    return folder / f"rng-rank{rank}.safetensors"


def save_rng(folder: str | Path, rank: int = 0) -> Path:
    """Write this process's torch (CPU + CUDA) and numpy global RNG states."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"torch_cpu": torch.get_rng_state(), "numpy_mt19937": torch.from_numpy(np.asarray(keys, dtype=np.uint32).view(np.int32).copy())}
    if torch.cuda.is_available():
        for d, st in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{d}"] = st
    info = {"numpy": {"name": name, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": _py_state()}
    meta = {"vila_nav": json.dumps(info, sort_keys=True)}  # one entry: safetensors orders several by hash
    out = _rng_file(folder, rank)
    save_file(tensors, str(out), metadata=meta)
    readable(out)
    return out


def load_rng(folder: str | Path, rank: int = 0) -> None:
    """Restore what save_rng wrote for `rank`."""
    from safetensors import safe_open

    path = _rng_file(Path(folder), rank)
    if not path.is_file():
        raise TrainStateError(f"{path}: missing (was the run saved with a different number of processes?)")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        torch.set_rng_state(f.get_tensor("torch_cpu"))
        keys = f.get_tensor("numpy_mt19937").numpy().view(np.uint32)
        if torch.cuda.is_available():
            states = [f.get_tensor(k) for k in sorted(k for k in f.keys() if k.startswith("torch_cuda_"))]
            if states:
                torch.cuda.set_rng_state_all(states[: torch.cuda.device_count()])
    info = json.loads(meta["vila_nav"])
    np_meta = info["numpy"]
    np.random.set_state((np_meta["name"], keys, np_meta["pos"], np_meta["has_gauss"], np_meta["cached_gaussian"]))
    version, internal, gauss = info["python"]
    random.setstate((version, tuple(internal), gauss))


def _py_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def save_state(folder: str | Path, *, optimizer: torch.optim.Optimizer, scheduler: Any, param_names: Sequence[str],
               step: int, extra: dict | None = None) -> Path:
    """Write optimizer + scheduler + step (+ JSON-able `extra`) into `folder` (rank 0 only)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sd = optimizer.state_dict()
    tensors = {}
    for index, entry in sd["state"].items():
        for name, value in entry.items():
            if not torch.is_tensor(value):
                raise TrainStateError(f"optimizer state {index}.{name} is not a tensor ({type(value).__name__})")
            tensors[f"{index}.{name}"] = value.detach().contiguous().cpu()
    save_file(tensors, str(folder / OPTIMIZER_FILE), metadata={"format": FORMAT})
    readable(folder / OPTIMIZER_FILE)
    state = {
        "format": FORMAT,
        "step": int(step),
        "param_names": list(param_names),
        "optimizer": {"class": type(optimizer).__name__, "param_groups": sd["param_groups"]},
        "scheduler": scheduler.state_dict(),
        "extra": extra or {},
    }
    tmp = folder / (STATE_JSON + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(folder / STATE_JSON)
    return folder


def read_state(folder: str | Path) -> dict:
    """state.json of a trainer_state folder (validated format)."""
    path = Path(folder) / STATE_JSON
    if not path.is_file():
        raise TrainStateError(f"{path}: missing; not a complete training checkpoint")
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrainStateError(f"{path}: not valid JSON ({exc})") from exc
    if state.get("format") != FORMAT:
        raise TrainStateError(f"{path}: format {state.get('format')!r}, expected {FORMAT!r}")
    return state


def load_state(folder: str | Path, *, optimizer: torch.optim.Optimizer, scheduler: Any,
               param_names: Sequence[str]) -> dict:
    """Restore optimizer and scheduler from `folder`; returns state.json (step, extra ...).

    Raises TrainStateError if the trainable parameters differ from the saved ones (names, order).
    """
    from safetensors import safe_open

    folder = Path(folder)
    state = read_state(folder)
    saved = state["param_names"]
    if list(saved) != list(param_names):
        diff = sorted(set(saved) ^ set(param_names))[:5]
        raise TrainStateError(
            f"{folder}: the trainable parameters differ from the checkpoint's ({len(saved)} saved, "
            f"{len(param_names)} now; e.g. {diff or 'same names, other order'}); resume with the same "
            "`trainable` settings and model"
        )
    if state["optimizer"]["class"] != type(optimizer).__name__:
        raise TrainStateError(f"{folder}: optimizer {state['optimizer']['class']}, this run uses {type(optimizer).__name__}")
    groups = state["optimizer"]["param_groups"]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    path = folder / OPTIMIZER_FILE
    if not path.is_file():
        raise TrainStateError(f"{path}: missing")
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            index, name = key.split(".", 1)
            per_param.setdefault(int(index), {})[name] = f.get_tensor(key)
    try:
        optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise TrainStateError(f"{path}: does not fit the optimizer ({exc})") from exc
    scheduler.load_state_dict(state["scheduler"])
    return state
