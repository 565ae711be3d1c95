"""The KV-cache argument of transformers' decoders, across versions.

transformers 5.x names a forward pass's key/value cache `cache` (input keyword and output field)
and deprecates `past_key_values`; 4.x (JetPack 6 images) only knows `past_key_values`. Passing
the name the installed version expects keeps both working without deprecation warnings.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.lru_cache(maxsize=32)
def _name_for(forward_type: type) -> str:
    params = inspect.signature(forward_type.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_kwargs(module: Any, cache: Any) -> dict[str, Any]:
    """{name: cache} for module.forward (a transformers causal LM or decoder)."""
    return {_name_for(type(module)): cache}


def output_cache(out: Any) -> Any:
    """The key/value cache a forward pass with use_cache=True returned."""
    keys = out.keys()
    return out["cache"] if "cache" in keys else out["past_key_values"]
