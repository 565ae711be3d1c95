"""Resolve the node's model parameters and load the model (runs on the inference thread).

path "" means the model shipped with the package (`vila_nav.model.default_model_path()`);
device "auto" means CUDA when torch sees a GPU, else CPU; dtype "auto" lets the loader choose
(fp16 on CUDA, fp32 on CPU). torch is imported here, lazily, never by the node module itself.
"""
from __future__ import annotations

from pathlib import Path

from vila_nav.ros.node_config import ModelSection


def resolve_path(section: ModelSection) -> Path:
    """The model directory the parameters name (raises FileNotFoundError with what to do)."""
    if section.path:
        path = Path(section.path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"model.path '{section.path}' is not a directory (a NaVILA-layout checkpoint)")
        return path
    from vila_nav.model import default_model_path

    return Path(default_model_path())


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; anything else unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(section: ModelSection):
    """Load the model the parameters describe: generate(frames, instruction) -> str, reset(), num_frames."""
    from vila_nav import model as vila_model

    path = resolve_path(section)
    device = resolve_device(section.device)
    if section.cpu_threads:
        import torch

        torch.set_num_threads(section.cpu_threads)
    dtype = None if section.dtype == "auto" else section.dtype
    return vila_model.load(path, device=device, dtype=dtype, quantization=section.quantization,
                           cache_size=section.cache_size)
