"""Configuration: the checkpoint's own config.json (VilaConfig) and the runtime options (ModelConfig).

VilaConfig mirrors the root config.json of NaVILA's released layout (model_type "llava_llama"):
every field is read from the file, unknown fields are kept verbatim so a save writes them back,
and the `*_cfg` dicts name the sub-folders (key minus "_cfg": llm/, vision_tower/, mm_projector/).
ModelConfig is the hydra schema of `config/model.yaml` (device, dtype, quantization, cache...).
"""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

MODEL_TYPE = "llava_llama"
ARCHITECTURE = "LlavaLlamaModel"
REQUIRED_PARTS = ("llm", "vision_tower", "mm_projector")
SELECT_FEATURES = ("cls_patch", "patch")
PROJECTOR_TYPES = ("mlp_downsample", "linear", "mlp2x_gelu")
QUANTIZATION_MODES = ("none", "int8", "int4", "nf4")
# quantization backend -> the modes it implements (vila_nav.model.quantize; "" = the device's default)
QUANTIZATION_BACKENDS = {
    "torch-ao-dynamic-int8": ("int8",), "torchao-int8-weight-only": ("int8",), "torchao-int8-dynamic": ("int8",),
    "torchao-int4-weight-only": ("int4",), "bitsandbytes-nf4": ("int4", "nf4"),
}
DTYPES = ("auto", "float32", "bfloat16", "float16")


class ConfigFileError(ValueError):
    """config.json of a checkpoint is missing, malformed or describes something unsupported."""


def _need(raw: dict, key: str, kind, source: str):
    if key not in raw:
        raise ConfigFileError(f"{source}: missing field '{key}'")
    val = raw[key]
    if kind is int and isinstance(val, bool) or not isinstance(val, kind):
        raise ConfigFileError(f"{source}: field '{key}' must be {getattr(kind, '__name__', kind)}, got {val!r}")
    return val


@dataclasses.dataclass
class VilaConfig:
    """The root config.json of a NaVILA-layout checkpoint (fields as named in the file)."""

    llm_cfg: dict
    vision_tower_cfg: dict
    mm_projector_cfg: dict
    hidden_size: int  # LLM hidden size H (4096 for Llama-3-8B)
    mm_hidden_size: int  # vision tower hidden size C (1152 for SigLIP so400m)
    num_video_frames: int = 8  # frames per decision K (K - 1 history + current)
    mm_vision_select_layer: int = -2  # index into the tower's hidden_states (-2 = penultimate)
    mm_vision_select_feature: str = "cls_patch"
    image_aspect_ratio: str = "resize"
    mm_use_im_start_end: bool = False
    mm_use_im_patch_token: bool = False
    model_dtype: str = "torch.bfloat16"
    extra: dict = dataclasses.field(default_factory=dict)  # every other field, written back verbatim

    def __post_init__(self):
        src = "config.json"
        if self.num_video_frames < 1:
            raise ConfigFileError(f"{src}: num_video_frames must be >= 1, got {self.num_video_frames}")
        if self.mm_vision_select_feature not in SELECT_FEATURES:
            raise ConfigFileError(
                f"{src}: mm_vision_select_feature '{self.mm_vision_select_feature}' unsupported; use one of {SELECT_FEATURES}"
            )
        if self.image_aspect_ratio != "resize":
            raise ConfigFileError(
                f"{src}: image_aspect_ratio '{self.image_aspect_ratio}' unsupported; NaVILA uses 'resize' (the only mode here)"
            )
        if self.mm_use_im_start_end or self.mm_use_im_patch_token:
            raise ConfigFileError(f"{src}: mm_use_im_start_end / mm_use_im_patch_token must be false (as in NaVILA)")
        if self.projector_type not in PROJECTOR_TYPES:
            raise ConfigFileError(
                f"{src}: mm_projector_cfg.mm_projector_type '{self.projector_type}' unsupported; use one of {PROJECTOR_TYPES}"
            )
        for part in REQUIRED_PARTS:
            if not isinstance(getattr(self, f"{part}_cfg"), dict):
                raise ConfigFileError(f"{src}: '{part}_cfg' must be a dict")

    @property
    def projector_type(self) -> str:
        return str(self.mm_projector_cfg.get("mm_projector_type", ""))

    @property
    def parts(self) -> dict[str, dict]:
        """Sub-folder name -> its `*_cfg` dict, for every `*_cfg` dict in the file."""
        out = {"llm": self.llm_cfg, "vision_tower": self.vision_tower_cfg, "mm_projector": self.mm_projector_cfg}
        for key, val in self.extra.items():
            if key.endswith("_cfg") and isinstance(val, dict):
                out[key[: -len("_cfg")]] = val
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config.json") -> VilaConfig:
        """Parse and validate a root config dict (clear errors naming `source` and the field)."""
        if not isinstance(raw, dict):
            raise ConfigFileError(f"{source}: expected a JSON object")
        model_type = raw.get("model_type")
        if model_type != MODEL_TYPE:
            raise ConfigFileError(
                f"{source}: model_type is {model_type!r}; expected '{MODEL_TYPE}' (NaVILA/VILA layout)"
            )
        fields = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kw: dict[str, Any] = {}
        for part in REQUIRED_PARTS:
            kw[f"{part}_cfg"] = _need(raw, f"{part}_cfg", dict, source)
        kw["hidden_size"] = _need(raw, "hidden_size", int, source)
        kw["mm_hidden_size"] = _need(raw, "mm_hidden_size", int, source)
        kinds = {
            "num_video_frames": int,
            "mm_vision_select_layer": int,
            "mm_vision_select_feature": str,
            "image_aspect_ratio": str,
            "mm_use_im_start_end": bool,
            "mm_use_im_patch_token": bool,
            "model_dtype": str,
        }
        for key, kind in kinds.items():
            if key in raw and raw[key] is not None:
                kw[key] = _need(raw, key, kind, source)
        extra = {k: copy.deepcopy(v) for k, v in raw.items() if k not in fields}
        try:
            return cls(**kw, extra=extra)
        except ConfigFileError as exc:
            raise ConfigFileError(str(exc).replace("config.json", source, 1)) from None

    @classmethod
    def from_file(cls, path: str | Path) -> VilaConfig:
        """Read and validate `<root>/config.json`."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigFileError(f"{path}: not found (a NaVILA-layout checkpoint has config.json at its root)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigFileError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(raw, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The root config dict (NaVILA field names), unknown fields included."""
        out = dict(copy.deepcopy(self.extra))
        for f in dataclasses.fields(self):
            if f.name != "extra":
                out[f.name] = copy.deepcopy(getattr(self, f.name))
        out["model_type"] = MODEL_TYPE
        out.setdefault("architectures", [ARCHITECTURE])
        return dict(sorted(out.items()))


@dataclasses.dataclass
class ModelConfig:
    """Runtime options of the model (hydra schema `model_schema`, preset config/model.yaml).

    path: checkpoint directory ("" = the shipped model); device: "cpu", "cuda", "cuda:0"...;
    dtype: "auto" (float32 on CPU, the checkpoint's dtype on CUDA) | float32 | bfloat16 | float16
    (CUDA only); quantization: none | int8 (float32 on CPU, eager: PyTorch dynamic int8; CUDA,
    bfloat16 or compiled: torchao int8 weight-only) | int4 (torchao int4
    weight-only on CUDA, bitsandbytes NF4 on CPU) | nf4 (bitsandbytes NF4); quantization_backend:
    "" (the default above) or one of QUANTIZATION_BACKENDS that implements the mode, e.g.
    torchao-int8-dynamic (torchao int8 x int8, with compile); quantize_vision: also
    quantize the vision tower's linear layers; cache_size: frames kept in the feature cache
    (0 = 4 x num_video_frames); max_new_tokens: decode budget per decision; template: chat template;
    num_threads: torch CPU threads (0 = torch's default; set it on a shared or busy CPU);
    compile: wrap the LM's forward in torch.compile (slow first decision; lets torchao fuse the
    int8 dequantisation into the matmul, which eager mode does not; int8 then uses torchao).
    """

    path: str = ""
    device: str = "cpu"
    dtype: str = "auto"
    quantization: str = "none"
    quantization_backend: str = ""
    quantize_vision: bool = False
    cache_size: int = 0
    max_new_tokens: int = 32
    template: str = "llama_3"
    num_threads: int = 0
    compile: bool = False

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype must be one of {DTYPES}, got '{self.dtype}'")
        if self.quantization not in QUANTIZATION_MODES:
            raise ValueError(f"model.quantization must be one of {QUANTIZATION_MODES}, got '{self.quantization}'")
        if self.quantization_backend:
            modes = QUANTIZATION_BACKENDS.get(self.quantization_backend)
            if modes is None:
                raise ValueError(f"model.quantization_backend must be '' or one of {sorted(QUANTIZATION_BACKENDS)}, "
                                 f"got '{self.quantization_backend}'")
            if self.quantization not in modes:
                raise ValueError(f"model.quantization_backend '{self.quantization_backend}' implements "
                                 f"quantization={'/'.join(modes)}, not '{self.quantization}'")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"model.device must be 'cpu' or 'cuda[:N]', got '{self.device}'")
        if self.cache_size < 0:
            raise ValueError(f"model.cache_size must be >= 0, got {self.cache_size}")
        if self.num_threads < 0:
            raise ValueError(f"model.num_threads must be >= 0, got {self.num_threads}")
        if self.max_new_tokens < 1:
            raise ValueError(f"model.max_new_tokens must be >= 1, got {self.max_new_tokens}")

    @property
    def torch_dtype(self):
        """The dtype as a torch.dtype (None for "auto")."""
        import torch

        return None if self.dtype == "auto" else getattr(torch, self.dtype)
