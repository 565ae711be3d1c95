"""Strict, offline loading and saving of NaVILA-layout checkpoints (safetensors + JSON only).

Layout (NaVILA's released one; the project's own checkpoints use it too):
    <root>/config.json          model_type "llava_llama", llm_cfg / vision_tower_cfg / mm_projector_cfg...
    <root>/llm/                 causal LM (config.json, *.safetensors) + tokenizer files
    <root>/vision_tower/        SiglipVisionModel (config.json, *.safetensors) + preprocessor_config.json
    <root>/mm_projector/        config.json {mm_projector_type} + model.safetensors

Before any weight is read, every sub-folder's safetensors headers are checked against the module
its config describes: a missing, unexpected or wrongly shaped tensor, a truncated or corrupted
file, or pickle-only weights (*.bin, *.pt, *.pth: never unpickled) is a CheckpointError naming
the file and the key. Nothing is ever downloaded (local_files_only everywhere).
"""
from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from vila_nav.model.config import REQUIRED_PARTS, ConfigFileError, VilaConfig

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
SAFETENSORS_INDEX = "model.safetensors.index.json"
VISION_PREFIX = "vision_model."  # key prefix of SiglipVisionModel in NaVILA's files (transformers 4.x)


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as-is (the message names the file and the key)."""


# -- paths ------------------------------------------------------------------------------------
def default_model_path() -> Path:
    """The shipped model directory, `vila_nav.paths.assets_dir() / "navila-tiny"`."""
    from vila_nav.paths import assets_dir

    path = assets_dir() / "navila-tiny"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"the shipped model is not installed at {path} (no config.json). Pass a local checkpoint "
            "directory instead (e.g. --model PATH), or train one with the training recipe."
        )
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """`path` as an existing local checkpoint directory, else a CheckpointError saying what to pass."""
    raw = str(path)
    p = Path(raw).expanduser()
    if not p.exists():
        looks_like_hub_id = bool(re.fullmatch(r"[\w.\-]+/[\w.\-]+", raw)) and not raw.startswith((".", "/", "~"))
        hint = (
            f"'{raw}' looks like a model-hub id; vila_nav never downloads anything. "
            if looks_like_hub_id
            else f"'{raw}' does not exist. "
        )
        raise CheckpointError(
            hint + "Pass a local directory holding a NaVILA-layout checkpoint "
            "(config.json, llm/, vision_tower/, mm_projector/), e.g. one you copied to the robot."
        )
    if not p.is_dir():
        raise CheckpointError(f"'{raw}' is a file; pass the checkpoint directory (the one holding config.json)")
    return p


# -- safetensors headers ----------------------------------------------------------------------
def _weight_files(folder: Path) -> list[Path]:
    index = folder / SAFETENSORS_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{index}: not a valid safetensors index ({exc})") from None
        files = sorted({folder / name for name in weight_map.values()})
        for f in files:
            if not f.is_file():
                raise CheckpointError(f"{index}: lists shard {f.name}, which is missing")
        return files
    files = sorted(folder.glob("*.safetensors"))
    if files:
        return files
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{folder}: only pickle-based weights ({', '.join(pickles)}); vila_nav never unpickles files "
            "(unpickling runs arbitrary code). Convert them to safetensors on a trusted machine "
            "(e.g. safetensors.torch.save_file(torch.load(f, weights_only=True), 'model.safetensors'))."
        )
    raise CheckpointError(f"{folder}: no weights (*.safetensors) found")


def read_headers(folder: Path) -> dict[str, tuple[Path, tuple[int, ...], str]]:
    """key -> (file, shape, dtype) over every safetensors file of `folder` (no tensor data read)."""
    from safetensors import SafetensorError, safe_open

    out: dict[str, tuple[Path, tuple[int, ...], str]] = {}
    for f in _weight_files(folder):
        try:
            with safe_open(str(f), framework="pt") as h:
                for key in h.keys():
                    sl = h.get_slice(key)
                    if key in out:
                        raise CheckpointError(f"{f}: tensor '{key}' also appears in {out[key][0].name}")
                    out[key] = (f, tuple(int(d) for d in sl.get_shape()), str(sl.get_dtype()))
        except SafetensorError as exc:
            raise CheckpointError(f"{f}: corrupted or truncated safetensors file ({exc})") from None
    return out


def _tied_groups(module: nn.Module) -> list[set[str]]:
    groups: dict[int, set[str]] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        groups.setdefault(id(p), set()).add(name)
    return [g for g in groups.values() if len(g) > 1]


def check_tensors(module: nn.Module, headers: dict, folder: Path, strip: str = "") -> None:
    """Raise CheckpointError unless `headers` (key -> file, shape) match module's state dict exactly.

    `strip`: a key prefix that may or may not be present, on either side (SigLIP's
    "vision_model."): names are compared without it. A tied parameter (e.g. lm_head =
    embed_tokens) may be stored once.
    """

    def bare(key: str) -> str:
        return key[len(strip):] if strip and key.startswith(strip) else key

    expected = {bare(k): tuple(v.shape) for k, v in module.state_dict().items()}
    stored = {bare(k): (k, f, shape) for k, (f, shape, _dt) in headers.items()}
    if len(stored) != len(headers):
        raise CheckpointError(f"{folder}: tensor names clash once the '{strip}' prefix is removed")
    tied = [{bare(n) for n in g} for g in _tied_groups(module)]
    missing = [k for k in expected if k not in stored]
    missing = [k for k in missing if not any(k in g and any(o in stored for o in g) for g in tied)]
    if missing:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        raise CheckpointError(f"{folder}: missing tensor(s) {shown}")
    unexpected = sorted(k for k in stored if k not in expected)
    if unexpected:
        key, f, _ = stored[unexpected[0]]
        more = f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise CheckpointError(f"{f}: unexpected tensor '{key}'{more}")
    for k, (key, f, shape) in sorted(stored.items()):
        if shape != expected[k]:
            raise CheckpointError(f"{f}: tensor '{key}' has shape {list(shape)}, the model expects {list(expected[k])}")


# -- helpers ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide transformers' progress bars while loading/saving."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _read_json(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return raw


def _resolve_dtype(dtype, device: torch.device, stored: str | None) -> torch.dtype:
    names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": None}
    if isinstance(dtype, str):
        if dtype not in names:
            raise ValueError(f"dtype must be one of {sorted(names)} or a torch dtype, got '{dtype}'")
        dtype = names[dtype]
    if dtype is None:  # float32 on CPU; the checkpoint's own dtype on CUDA
        if device.type == "cpu":
            return torch.float32
        return {"F16": torch.float16, "BF16": torch.bfloat16}.get(stored or "", torch.float32)
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype {dtype} unsupported; use torch.float32, torch.bfloat16 or torch.float16 (CUDA)")
    if dtype == torch.float16 and device.type == "cpu":
        raise ValueError("float16 is only supported on CUDA; on CPU use torch.float32 or torch.bfloat16")
    return dtype


def _resolve_device(device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' requested but CUDA is not available here; use device='cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got '{device}'")
    return dev


# -- parts ------------------------------------------------------------------------------------
def _load_llm(folder: Path, headers: dict, dtype: torch.dtype, device: torch.device):
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        cfg = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{folder}/config.json: cannot build a causal LM config ({exc})") from None
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(cfg)
    check_tensors(skeleton, headers, folder)
    with _quiet():
        llm, info = AutoModelForCausalLM.from_pretrained(
            str(folder), config=cfg, local_files_only=True, use_safetensors=True, dtype=dtype,
            device_map={"": str(device)},  # straight to the device: no second copy in host memory
            output_loading_info=True,
        )
    _check_info(info, folder)
    return llm.eval()


def _load_vision(folder: Path, dtype: torch.dtype, device: torch.device):
    from transformers import SiglipVisionConfig, SiglipVisionModel

    headers = read_headers(folder)
    try:
        cfg = SiglipVisionConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{folder}/config.json: not a SigLIP vision config ({exc})") from None
    if getattr(cfg, "model_type", "") != "siglip_vision_model":
        raise CheckpointError(f"{folder}/config.json: model_type must be 'siglip_vision_model', got '{cfg.model_type}'")
    prefixed = [k.startswith(VISION_PREFIX) for k in headers]
    if any(prefixed) and not all(prefixed):
        raise CheckpointError(f"{folder}: tensor names mix '{VISION_PREFIX}'-prefixed and bare keys")
    # The pooling head is unused (features come from hidden_states); build it only if stored.
    cfg.vision_use_head = any(k.startswith(("head.", VISION_PREFIX + "head.")) for k in headers)
    with torch.device("meta"):
        skeleton = SiglipVisionModel(cfg)
    check_tensors(skeleton, headers, folder, strip=VISION_PREFIX)
    with _quiet():
        tower, info = SiglipVisionModel.from_pretrained(
            str(folder), config=cfg, local_files_only=True, use_safetensors=True, dtype=dtype,
            device_map={"": str(device)},
            output_loading_info=True,
        )
    _check_info(info, folder)
    return tower.eval()


def _load_projector(folder: Path, vcfg: VilaConfig, dtype: torch.dtype, device: torch.device):
    from safetensors import safe_open

    from vila_nav.model.projector import Projector

    sub = _read_json(folder / "config.json")
    ptype = sub.get("mm_projector_type")
    if ptype != vcfg.projector_type:
        raise CheckpointError(
            f"{folder}/config.json: mm_projector_type {ptype!r} differs from the root config's "
            f"'{vcfg.projector_type}'"
        )
    proj = Projector(ptype, vcfg.mm_hidden_size, vcfg.hidden_size)
    headers = read_headers(folder)
    check_tensors(proj, headers, folder)
    state = {}
    for key, (f, _shape, _dt) in headers.items():
        with safe_open(str(f), framework="pt") as h:
            state[key] = h.get_tensor(key)
    proj.load_state_dict(state, strict=True)
    return proj.to(device=device, dtype=dtype).eval()


def _check_info(info: dict, folder: Path) -> None:
    for what in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = sorted(str(k) for k in info.get(what, ()) or ())
        if keys:
            raise CheckpointError(f"{folder}: transformers reported {what.replace('_', ' ')}: {', '.join(keys[:5])}")
    if info.get("error_msgs"):
        raise CheckpointError(f"{folder}: {info['error_msgs'][0]}")


def _load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    if not any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json")):
        raise CheckpointError(f"{folder}: no tokenizer files (tokenizer.json / tokenizer_config.json)")
    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{folder}: cannot load the tokenizer ({exc})") from None


# -- public -----------------------------------------------------------------------------------
def load(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    quantization: str = "none",
    *,
    quantization_backend: str = "",
    quantize_vision: bool = False,
    cache_size: int = 0,
    max_new_tokens: int = 32,
    template: str = "llama_3",
    compile: bool = False,
):
    """Load a NaVILA-layout checkpoint from a local directory; returns a VilaModel.

    dtype None: float32 on CPU, the checkpoint's stored dtype on CUDA; float16 is CUDA-only.
    quantization: "none" | "int8" | "int4" | "nf4" (see vila_nav.model.quantize);
    quantization_backend: "" = the device's default, else a backend that implements the mode
    (e.g. "torchao-int8-dynamic"). Strict: see the module docstring. Never touches the network.
    compile: torch.compile the LM's forward.
    """
    from vila_nav.model.preprocess import ImageProcessor
    from vila_nav.model.prompt import get_template
    from vila_nav.model.quantize import quantize_model
    from vila_nav.model.vila import VilaModel
    from vila_nav.model.vision import VisionTower

    root = resolve_checkpoint(path)
    dev = _resolve_device(device)
    try:
        vcfg = VilaConfig.from_file(root / "config.json")
    except ConfigFileError as exc:
        raise CheckpointError(str(exc)) from None
    folders = {}
    for part in REQUIRED_PARTS:
        folder = root / part
        if not folder.is_dir():
            raise CheckpointError(f"{root}: missing sub-folder '{part}/' (named by '{part}_cfg' in config.json)")
        folders[part] = folder
    tpl = get_template(template)

    llm_headers = read_headers(folders["llm"])
    stored = next((dt for k, (_f, _s, dt) in sorted(llm_headers.items()) if "embed" in k), None)
    torch_dtype = _resolve_dtype(dtype, dev, stored)
    llm = _load_llm(folders["llm"], llm_headers, torch_dtype, dev)
    tower = _load_vision(folders["vision_tower"], torch_dtype, dev)
    if int(tower.config.hidden_size) != vcfg.mm_hidden_size:
        raise CheckpointError(
            f"{folders['vision_tower']}/config.json: hidden_size {tower.config.hidden_size} != root mm_hidden_size {vcfg.mm_hidden_size}"
        )
    if int(llm.config.hidden_size) != vcfg.hidden_size:
        raise CheckpointError(
            f"{folders['llm']}/config.json: hidden_size {llm.config.hidden_size} != root hidden_size {vcfg.hidden_size}"
        )
    projector = _load_projector(folders["mm_projector"], vcfg, torch_dtype, dev)
    tokenizer = _load_tokenizer(folders["llm"])
    n_embed = llm.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > n_embed:
        raise CheckpointError(f"{folders['llm']}: tokenizer has {len(tokenizer)} tokens but the embedding only {n_embed} rows")
    try:
        processor = ImageProcessor.from_folder(folders["vision_tower"], int(tower.config.image_size))
        vision = VisionTower(tower, vcfg.mm_vision_select_layer, vcfg.mm_vision_select_feature)
    except ValueError as exc:
        raise CheckpointError(f"{root}: {exc}") from None
    model = VilaModel(
        vcfg, vision, projector, llm, tokenizer, processor,
        template=tpl, cache_size=cache_size, max_new_tokens=max_new_tokens,
    )
    model.eval()
    if quantization != "none":
        quantize_model(model, quantization, include_vision=quantize_vision, backend=quantization_backend or None,
                       compiled=compile)
    elif quantize_vision or quantization_backend:
        raise ValueError("quantize_vision / quantization_backend need a quantization mode other than 'none'")
    if compile:
        # dynamic=True: one graph for every prompt / KV-cache length.
        model.llm.forward = torch.compile(model.llm.forward, dynamic=True)
    return model


def load_from_config(cfg) -> object:
    """Load with a ModelConfig (hydra schema); cfg.path "" means the shipped model."""
    path = cfg.path or default_model_path()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    return load(
        path, device=cfg.device, dtype=cfg.torch_dtype, quantization=cfg.quantization,
        quantization_backend=cfg.quantization_backend, quantize_vision=cfg.quantize_vision, cache_size=cfg.cache_size,
        max_new_tokens=cfg.max_new_tokens, template=cfg.template, compile=cfg.compile,
    )


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def save(model, path: str | Path) -> Path:
    """Write `model` in NaVILA's layout with save_pretrained / safetensors; returns the root.

    Quantized models are refused (save the float model; quantize at load time).
    """
    from safetensors.torch import save_file

    if getattr(model, "quantization", "none") != "none":
        raise ValueError(
            f"cannot save a quantized model ({model.quantization}); save the unquantized model and pass "
            "quantization=... to load()"
        )
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    llm_dir, vis_dir, proj_dir = (root / p for p in REQUIRED_PARTS)
    for d in (llm_dir, vis_dir, proj_dir):
        d.mkdir(exist_ok=True)
    # Record each part's dtype in its config (fresh configs have none; loaded ones do).
    model.llm.config.dtype = model.dtype
    model.vision.model.config.dtype = next(model.vision.model.parameters()).dtype
    with _quiet():
        model.llm.save_pretrained(str(llm_dir))
        model.tokenizer.save_pretrained(str(llm_dir))
    _portable_tokenizer_config(llm_dir / "tokenizer_config.json")

    tower = model.vision.model
    tower.config.save_pretrained(str(vis_dir))
    state = {
        (k if k.startswith(VISION_PREFIX) else VISION_PREFIX + k): v.detach().contiguous().cpu()
        for k, v in tower.state_dict().items()
    }  # NaVILA's key names (transformers 4.x SiglipVisionModel)
    save_file(state, str(vis_dir / "model.safetensors"), metadata={"format": "pt"})
    model.image_processor.save_pretrained(vis_dir)

    proj = model.projector
    dtype_name = _dtype_name(next(proj.parameters()).dtype)
    proj_cfg = {
        "architectures": ["MultimodalProjector"],
        "mm_projector_type": proj.projector_type,
        "model_type": "v2l_projector",
        "torch_dtype": dtype_name,
    }
    (proj_dir / "config.json").write_text(json.dumps(proj_cfg, indent=2, sort_keys=True) + "\n")
    pstate = {k: v.detach().contiguous().cpu() for k, v in proj.state_dict().items()}
    save_file(pstate, str(proj_dir / "model.safetensors"), metadata={"format": "pt"})

    vcfg: VilaConfig = model.config
    root_cfg = vcfg.to_dict()
    llm_cfg = json.loads((llm_dir / "config.json").read_text())
    vis_cfg = json.loads((vis_dir / "config.json").read_text())
    root_cfg["llm_cfg"] = {**llm_cfg, "_name_or_path": "./llm"}
    root_cfg["vision_tower_cfg"] = {**vis_cfg, "_name_or_path": "./vision_tower"}
    root_cfg["mm_projector_cfg"] = {**proj_cfg, "_name_or_path": "./mm_projector"}
    root_cfg["model_dtype"] = f"torch.{_dtype_name(model.dtype)}"
    (root / "config.json").write_text(json.dumps(root_cfg, indent=2, sort_keys=True) + "\n")
    return root


def _portable_tokenizer_config(path: Path) -> None:
    # transformers 5 writes tokenizer_class "TokenizersBackend", unknown to 4.x (NaVILA's stack);
    # "PreTrainedTokenizerFast" (what Llama-3 ships) loads the same tokenizer.json in both.
    if not path.is_file():
        return
    raw = json.loads(path.read_text())
    if raw.get("tokenizer_class") == "TokenizersBackend":
        raw["tokenizer_class"] = "PreTrainedTokenizerFast"
        path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
