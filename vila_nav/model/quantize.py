"""Weight quantization of the language model (optionally the vision tower's linear layers).

Modes (the `quantization` argument of vila_nav.model.load); `backend_for` picks the backend and
`model.quantization_backend` records it:
- "none":  float weights.
- "int8":  8-bit weights, per output channel.
           * CPU, float32 model, eager (the default there): "torch-ao-dynamic-int8", PyTorch's
             dynamic int8 (`torch.ao.quantization.quantize_dynamic`; kernels of
             `torch.backends.quantized.engine`: fbgemm on x86, qnnpack on ARM). Every linear layer
             of the LM, lm_head included, is one fused op per call (quantize the activations with
             a per-call scale, int8 x int8 matmul, rescale; 8-bit activations where the kernels
             cannot saturate, see `full_range_activations`); the input embedding table is stored
             as int8 rows with a float scale and offset per row. Fastest int8 measured on CPU here
             (`vila-nav bench-model`), and with quantize_vision the whole small model is >= 3x
             smaller. Float32 only (its kernels take float32 activations).
           * CUDA, a bfloat16/float16 model, or `compiled=True` (the LM will be torch.compiled):
             "torchao-int8-weight-only" (`Int8WeightOnlyConfig`) on the LM's linear layers except
             lm_head; embeddings stay float (torchao would dequantize the whole table at every
             lookup). In eager mode it converts each int8 weight to float at every call (saves
             memory, not time); torch.compile fuses that into the matmul.
           * On request (backend="torchao-int8-dynamic"): torchao's int8 x int8
             `Int8DynamicActivationInt8WeightConfig` on the LM's linear layers except lm_head,
             the successor of torch.ao's dynamic int8. Eagerly it runs several separate ops per
             call (slower than float32 here); under torch.compile about as fast as
             "torch-ao-dynamic-int8" (`vila-nav bench-model --modes int8-torchao-dynamic-compiled`).
           DEPRECATION of torch.ao.quantization: upstream marks it deprecated and announces its
           removal (torch 2.13 still ships it and its kernels). Plan: while a torch has it, CPU
           int8 uses it; a torch without it makes "int8" on a float32 CPU model raise
           QuantizationUnavailable (never a silent switch) naming the ways out (a torch that has
           it, dtype=bfloat16, which selects torchao, or backend="torchao-int8-dynamic" with
           compile); the default moves to "torchao-int8-dynamic" once its eager CPU path is
           competitive.
- "int4":  4-bit weights. CUDA: torchao int4 weight-only, group-wise scales, tinygemm kernel
           (`Int4WeightOnlyConfig(int4_packing_format="tile_packed_to_4d")`; compute capability
           >= 8.0, bfloat16 model: Jetson Orin qualifies). CPU: torchao has no int4 kernel, so
           "int4" uses bitsandbytes NF4 there (the same as "nf4").
- "nf4":   bitsandbytes 4-bit NormalFloat (block size 64), CPU and CUDA.
Except with "torch-ao-dynamic-int8", embeddings and lm_head stay float. The projector always
stays float (small). quantize_vision adds the vision tower's linear layers (its patch
convolution and position embedding stay float). Quantized models cannot be saved: quantize at
load time.
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable

import torch
from torch import nn

from vila_nav.model.config import QUANTIZATION_BACKENDS, QUANTIZATION_MODES

MODES = QUANTIZATION_MODES
QUANT_EXTRA = "pip install 'vila_nav[quant]'  (torchao, bitsandbytes)"
TORCHAO_INT8 = "torchao-int8-weight-only"
TORCHAO_INT8_DYNAMIC = "torchao-int8-dynamic"
TORCH_DYNAMIC_INT8 = "torch-ao-dynamic-int8"
TORCHAO_INT4 = "torchao-int4-weight-only"
BNB_NF4 = "bitsandbytes-nf4"
BACKENDS = QUANTIZATION_BACKENDS  # backend -> the modes it can implement


class QuantizationUnavailable(RuntimeError):
    """The requested mode cannot run on this device / with the installed libraries."""


def _import_torchao():
    try:
        import torchao.quantization as tq
    except ImportError as exc:
        raise QuantizationUnavailable(f"int8/int4 quantization needs torchao: {QUANT_EXTRA}") from exc
    return tq


def _import_bnb():
    try:
        import bitsandbytes as bnb
    except ImportError as exc:
        raise QuantizationUnavailable(f"nf4 quantization needs bitsandbytes: {QUANT_EXTRA}") from exc
    return bnb


def _import_torch_dynamic():
    """torch.ao.quantization's eager dynamic quantization (deprecated upstream; see module docstring)."""
    try:
        from torch.ao.quantization import (
            float_qparams_weight_only_qconfig,
            per_channel_dynamic_qconfig,
            quantize_dynamic,
        )
    except ImportError as exc:
        raise QuantizationUnavailable(
            f"int8 on CPU with a float32 model uses torch.ao.quantization.quantize_dynamic, which torch "
            f"{torch.__version__} no longer provides; use a torch that still has it, load with dtype=bfloat16 "
            f"(int8 then uses torchao weight-only), or quantize_model(model, 'int8', backend='{TORCHAO_INT8}') "
            f"or backend='{TORCHAO_INT8_DYNAMIC}' (int8 x int8; fast under load(compile=True))"
        ) from exc
    engine = torch.backends.quantized.engine
    if engine == "none" or engine not in torch.backends.quantized.supported_engines:
        raise QuantizationUnavailable(
            f"int8 on CPU (torch.ao dynamic int8) needs a quantized engine; this torch has "
            f"{torch.backends.quantized.supported_engines}, current '{engine}'"
        )
    return quantize_dynamic, per_channel_dynamic_qconfig, float_qparams_weight_only_qconfig


def backend_for(
    mode: str, device: torch.device | str, dtype: torch.dtype = torch.float32, compiled: bool = False
) -> str:
    """The default backend of a mode on `device` for a model of `dtype` ("" for none).

    int8: torch.ao dynamic int8 on CPU for float32 models run eagerly; torchao weight-only
    otherwise (CUDA, bfloat16, or `compiled`: torch.compile fuses torchao's dequantisation into
    the matmul, while torch.ao's packed int8 ops are opaque to it and decode ~2x slower).
    Raises QuantizationUnavailable if the mode cannot run there.
    """
    dev = torch.device(device)
    if mode not in MODES:
        raise ValueError(f"quantization must be one of {MODES}, got '{mode}'")
    if mode == "none":
        return ""
    if mode == "int8":
        eager_cpu_fp32 = dev.type == "cpu" and dtype == torch.float32 and not compiled
        return TORCH_DYNAMIC_INT8 if eager_cpu_fp32 else TORCHAO_INT8
    if mode == "int4" and dev.type == "cuda":
        major, minor = torch.cuda.get_device_capability(dev)
        if major < 8:
            raise QuantizationUnavailable(
                f"int4 (torchao tinygemm) needs CUDA compute capability >= 8.0, this GPU has {major}.{minor}; "
                "use quantization='nf4' (bitsandbytes) or 'int8'"
            )
        return TORCHAO_INT4
    return BNB_NF4


def _check_backend(mode: str, backend: str, device: torch.device, dtype: torch.dtype) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"quantization backend must be one of {sorted(BACKENDS)}, got '{backend}'")
    if mode not in BACKENDS[backend]:
        raise ValueError(f"backend '{backend}' implements {'/'.join(BACKENDS[backend])}, not '{mode}'")
    if backend == TORCH_DYNAMIC_INT8 and (device.type != "cpu" or dtype != torch.float32):
        raise QuantizationUnavailable(
            f"backend '{backend}' runs on CPU with float32 models only (got {device.type}, {dtype}); "
            f"use '{TORCHAO_INT8}'"
        )
    if backend == TORCHAO_INT4 and device.type != "cuda":
        raise QuantizationUnavailable(f"backend '{backend}' needs CUDA (torchao has no CPU int4 kernel); use '{BNB_NF4}'")


def _linear_filter(skip: tuple[str, ...]) -> Callable[[nn.Module, str], bool]:
    def keep(module: nn.Module, fqn: str) -> bool:
        return isinstance(module, nn.Linear) and not any(fqn == s or fqn.endswith("." + s) for s in skip)

    return keep


def _int4_group_size(linears: list[nn.Linear]) -> int:
    for g in (128, 64, 32):
        if all(lin.in_features % g == 0 for lin in linears):
            return g
    raise QuantizationUnavailable("int4: some linear layer's input size is not a multiple of 32 (torchao group size)")


def _to_nf4(lin: nn.Linear, bnb) -> nn.Module:
    device = lin.weight.device
    q = bnb.nn.Linear4bit(
        lin.in_features, lin.out_features, bias=lin.bias is not None, compute_dtype=lin.weight.dtype,
        quant_type="nf4", compress_statistics=False, device="meta",
    )
    q.weight = bnb.nn.Params4bit(
        lin.weight.data, requires_grad=False, quant_type="nf4", blocksize=64, compress_statistics=False, module=q
    )
    if lin.bias is not None:
        q.bias = nn.Parameter(lin.bias.data, requires_grad=False)
    return q.to(device)  # Params4bit quantizes when moved to a real device


def _replace(root: nn.Module, keep: Callable[[nn.Module, str], bool], make: Callable[[nn.Linear], nn.Module]) -> int:
    count = 0
    for parent_name, parent in list(root.named_modules()):
        for name, child in list(parent.named_children()):
            fqn = f"{parent_name}.{name}" if parent_name else name
            if keep(child, fqn):
                setattr(parent, name, make(child))
                count += 1
    return count


def full_range_activations(engine: str | None = None) -> bool:
    """Whether torch.ao dynamic int8 may quantize activations to all 256 levels here.

    torch's dynamic Linear quantizes each call's activations to 7 bits (`reduce_range=True`)
    because fbgemm's x86 kernels without AVX-512 VNNI add pairs of uint8 x int8 products in int16
    (vpmaddubsw), which saturates with 8-bit activations. With AVX-512 VNNI the kernels accumulate
    in int32 and cannot saturate; qnnpack (ARM CPUs, Jetson included) always uses 8 bits (it
    ignores `reduce_range`). On the shipped model the eighth bit is what keeps int8's parsed actions
    with fp32's (`vila-nav bench-model`: 98% agreement against 90% with 7 bits).
    engine: a `torch.backends.quantized.engine` name; None = the current one.
    """
    engine = engine or torch.backends.quantized.engine
    if engine == "qnnpack":
        return True
    if engine in ("fbgemm", "x86"):  # x86: fbgemm or oneDNN kernels, both int32 with AVX-512 VNNI
        probe = getattr(torch.cpu, "_is_vnni_supported", None)  # AVX-512 VNNI; private, so absent = no
        return bool(probe()) if probe is not None else False
    return False


@functools.lru_cache(maxsize=None)
def _full_range_linear() -> type:
    """torch.ao's dynamic int8 Linear with 8-bit activations (see full_range_activations)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    class FullRangeDynamicLinear(DynamicLinear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # (..., in) float32 -> (..., out): per-call activation scale over 256 levels
            y = torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=False)
            return y.to(x.dtype)

        def _get_name(self) -> str:
            return "FullRangeDynamicQuantizedLinear"

    return FullRangeDynamicLinear


def _dynamic_int8(module: nn.Module, keep: Callable[[nn.Module, str], bool], embeddings: bool) -> int:
    """torch.ao dynamic int8 in place: linears chosen by `keep` (per-channel int8 weights; 8-bit
    activations where `full_range_activations()`, else torch's 7), and with `embeddings` every
    nn.Embedding (int8 rows, float scale + offset per row); returns the count."""
    quantize_dynamic, linear_qconfig, embedding_qconfig = _import_torch_dynamic()
    from torch.ao.quantization.quantization_mappings import get_default_dynamic_quant_module_mappings

    mapping = dict(get_default_dynamic_quant_module_mappings())
    if full_range_activations():
        mapping[nn.Linear] = _full_range_linear()
    spec: dict = {}
    for name, child in module.named_modules():
        if keep(child, name):
            spec[name] = linear_qconfig
        elif embeddings and type(child) is nn.Embedding:
            spec[name] = embedding_qconfig
    if spec:
        with warnings.catch_warnings():  # the deprecation notice: documented in this module's docstring
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
            quantize_dynamic(module, spec, mapping=mapping, inplace=True)
    return len(spec)


def quantize_module(
    module: nn.Module,
    mode: str,
    device: torch.device,
    skip: tuple[str, ...] = (),
    backend: str | None = None,
    embeddings: bool = False,
) -> tuple[str, int]:
    """Quantize module's nn.Linear layers in place (except names in `skip`); (backend, layers).

    backend: None = `backend_for(mode, device, <module's float dtype>)`. embeddings: also its
    nn.Embedding tables (torch.ao dynamic int8 backend only).
    """
    dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
    dev = torch.device(device)
    if mode == "none":
        return "", 0
    if backend is None:
        backend = backend_for(mode, dev, dtype)
    else:
        _check_backend(mode, backend, dev, dtype)
    keep = _linear_filter(skip)
    linears = [m for n, m in module.named_modules() if keep(m, n)]
    if not linears or not backend:
        return backend, 0
    if backend == TORCH_DYNAMIC_INT8:
        return backend, _dynamic_int8(module, keep, embeddings)
    if backend == TORCHAO_INT8:
        tq = _import_torchao()
        tq.quantize_(module, tq.Int8WeightOnlyConfig(), filter_fn=keep)
    elif backend == TORCHAO_INT8_DYNAMIC:
        tq = _import_torchao()
        tq.quantize_(module, tq.Int8DynamicActivationInt8WeightConfig(), filter_fn=keep)
    elif backend == TORCHAO_INT4:
        tq = _import_torchao()
        if linears[0].weight.dtype != torch.bfloat16:
            raise QuantizationUnavailable("int4 on CUDA (torchao tinygemm) needs dtype=torch.bfloat16")
        cfg = tq.Int4WeightOnlyConfig(group_size=_int4_group_size(linears), int4_packing_format="tile_packed_to_4d")
        tq.quantize_(module, cfg, filter_fn=keep)
    else:
        bnb = _import_bnb()
        _replace(module, keep, lambda lin: _to_nf4(lin, bnb))
    return backend, len(linears)


def quantize_model(
    model, mode: str, include_vision: bool = False, backend: str | None = None, compiled: bool = False
):
    """Quantize a VilaModel in place: the LM (+ the vision tower's linear layers).

    LM: its linear layers except lm_head; with the CPU int8 backend (torch.ao dynamic int8) also
    lm_head and the input embeddings. backend: None = the default (`backend_for`; `compiled`
    says the LM will be wrapped in torch.compile afterwards), or one of BACKENDS that implements
    `mode` on this device (e.g. TORCHAO_INT8 to compare on CPU). Sets model.quantization,
    model.quantization_backend and model.quantized_layers (modules replaced or quantized);
    returns model.
    """
    if mode not in MODES:
        raise ValueError(f"quantization must be one of {MODES}, got '{mode}'")
    if getattr(model, "quantization", "none") != "none":
        raise ValueError(f"model is already quantized ({model.quantization})")
    device = model.device
    if backend is None:
        backend = backend_for(mode, device, model.dtype, compiled)
    dynamic = backend == TORCH_DYNAMIC_INT8
    skip = () if dynamic else ("lm_head",)
    backend, n = quantize_module(model.llm, mode, device, skip=skip, backend=backend or None, embeddings=dynamic)
    if include_vision and mode != "none":
        _, n_vis = quantize_module(model.vision, mode, device, backend=backend)
        n += n_vis
    model.quantization = mode
    model.quantization_backend = backend
    model.quantized_layers = n
    model.reset()  # cached features came from the float tower
    return model


def _tensor_bytes(t: torch.Tensor, seen: set) -> int:
    inner = getattr(t, "__tensor_flatten__", None)
    if inner is not None and type(t) is not torch.Tensor and type(t) is not nn.Parameter:
        try:
            names, _ctx = inner()
        except Exception:  # noqa: BLE001 - not a wrapper subclass after all
            names = None
        if names:
            return sum(_tensor_bytes(getattr(t, n), seen) for n in names)
    key = (t.data_ptr(), t.numel(), t.dtype)
    if t.numel() == 0 or key in seen:
        return 0
    seen.add(key)
    total = t.numel() * t.element_size()
    qs = getattr(t, "quant_state", None)  # bitsandbytes: per-block absmax (+ nested stats)
    if qs is not None:
        for attr in ("absmax", "code", "offset"):
            v = getattr(qs, attr, None)
            if isinstance(v, torch.Tensor):
                total += _tensor_bytes(v, seen)
        if getattr(qs, "state2", None) is not None:
            for attr in ("absmax", "code"):
                v = getattr(qs.state2, attr, None)
                if isinstance(v, torch.Tensor):
                    total += _tensor_bytes(v, seen)
    return total


def _packed_bytes(module: nn.Module) -> int:
    """Bytes of a torch.ao quantized module's packed weights (not parameters, so counted here):
    int8 values plus, per output channel / per row, a 4-byte scale and a 4-byte zero point
    (fbgemm keeps float32 scales and int32 zero points; embedding rows carry a float scale and
    offset), plus a float bias if any."""
    packed = getattr(module, "_packed_params", None)
    if packed is None:
        return 0
    if hasattr(packed, "_weight_bias"):  # dynamic Linear
        weight, bias = packed._weight_bias()
    elif hasattr(packed, "_weight"):  # quantized Embedding
        weight, bias = packed._weight(), None
    else:
        return 0
    channels = weight.shape[0] if weight.qscheme() != torch.per_tensor_affine else 1
    total = weight.numel() * weight.element_size() + channels * 8
    if bias is not None:
        total += bias.numel() * bias.element_size()
    return total


def weight_bytes(module: nn.Module) -> int:
    """Bytes held by a module's parameters and buffers, quantized storage and scales included.

    Tied/shared tensors count once; non-persistent buffers (e.g. rotary tables) count too;
    torch.ao quantized modules' packed weights count as in `_packed_bytes`.
    """
    seen: set = set()
    total = 0
    for p in module.parameters():
        total += _tensor_bytes(p, seen)
    for b in module.buffers():
        total += _tensor_bytes(b, seen)
    for m in module.modules():
        total += _packed_bytes(m)
    return total
