"""vila_nav.model: NaVILA-compatible VILA models on stock transformers (torch).

    import vila_nav.model as vm
    model = vm.load("/path/to/navila-llama3-8b-8f", device="cuda", quantization="int4")
    text = model.generate(frames, "Walk to the kitchen and stop at the fridge.")
    model.reset()  # at every episode start (clears the per-frame feature cache)

One concept per file: config (config.json / runtime options), preprocess (frames -> pixels),
vision (SigLIP tower + feature selection), projector (mlp_downsample...), prompt (templates,
question, image slots), tokenizer (offline BPE for small models), cache (per-frame features),
kv_cache (the decoders' cache argument across transformers versions), vila (the composed model
and greedy decode), quantize (int8/int4/nf4), checkpoint (strict
load/save), testing (random tiny/small checkpoints), ask and bench (CLI commands).
The public names below are imported on first use, so the torch-free modules (config, prompt,
cache, preprocess) can be imported without torch.
"""
from __future__ import annotations

import importlib
import logging
import os

# vila_nav never downloads anything: every model loads from a local directory. Some libraries
# reach for a model hub on their own, e.g. bitsandbytes' CPU backend asks the kernels hub for a
# gemm kernel when it is imported on a CPU with AVX512-BF16. Hub access is therefore off for the
# process (set before transformers / huggingface_hub are imported, which read it once), unless
# the user has set HF_HUB_OFFLINE themselves.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# transformers imports torchao whenever it is installed (the quant extra); on a machine without
# CUDA torchao logs that its optional CUDA kernels did not load, and torch warns about its enum
# registrations, on every start. Neither concerns any path vila_nav runs (int4 on CUDA raises a
# clear error of its own when torchao cannot serve it), so they are kept out of users' logs.
logging.getLogger("torchao").setLevel(logging.ERROR)
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)

_EXPORTS = {
    "load": "vila_nav.model.checkpoint",
    "save": "vila_nav.model.checkpoint",
    "load_from_config": "vila_nav.model.checkpoint",
    "default_model_path": "vila_nav.model.checkpoint",
    "CheckpointError": "vila_nav.model.checkpoint",
    "VilaModel": "vila_nav.model.vila",
    "ModelConfig": "vila_nav.model.config",
    "VilaConfig": "vila_nav.model.config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vila_nav.model' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
