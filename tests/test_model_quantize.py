"""Quantized modes run on CPU, agree with float32 on a tiny model, and fail clearly where they can't."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import vila_nav.model as vm
from vila_nav.model.quantize import (
    BNB_NF4,
    TORCH_DYNAMIC_INT8,
    TORCHAO_INT4,
    TORCHAO_INT8,
    TORCHAO_INT8_DYNAMIC,
    QuantizationUnavailable,
    backend_for,
    full_range_activations,
    quantize_model,
    weight_bytes,
)

INSTRUCTION = "Turn left and stop by the plant."


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tiny_checkpoint):
    return tiny_checkpoint(seed=0)


@pytest.fixture(scope="module")
def base(ckpt):
    return vm.load(ckpt)


def _decisions(n: int):
    rng = np.random.default_rng(11)
    return [[rng.integers(0, 256, (42, 42, 3), dtype=np.uint8) for _ in range(8)] for _ in range(n)]


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=0))


def _linears(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_int8_on_cpu_is_dynamic_int8_everywhere_in_the_lm_and_matches_fp32_greedy(ckpt, base):
    m = vm.load(ckpt, quantization="int8")
    assert m.quantization == "int8" and m.quantization_backend == TORCH_DYNAMIC_INT8
    assert backend_for("int8", "cpu") == TORCH_DYNAMIC_INT8
    # q k v o gate up down per layer, lm_head and the input embedding table
    assert m.quantized_layers == 2 * 7 + 1 + 1
    assert not _linears(m.llm)  # every float linear replaced
    linear_name = "FullRangeDynamicQuantizedLinear" if full_range_activations() else "DynamicQuantizedLinear"
    assert m.llm.model.layers[0].mlp.up_proj._get_name() == linear_name
    assert m.llm.lm_head._get_name() == linear_name
    assert m.llm.get_input_embeddings()._get_name() == "QuantizedEmbedding"
    assert _linears(m.vision) and _linears(m.projector)  # tower and projector stay float
    assert m.device == torch.device("cpu") and m.dtype == torch.float32
    for frames in _decisions(4):
        assert m.generate_ids(frames, INSTRUCTION) == base.generate_ids(frames, INSTRUCTION)
        assert _cos(m.logits(frames, INSTRUCTION), base.logits(frames, INSTRUCTION)) > 0.999
    assert weight_bytes(m.llm) < 0.3 * weight_bytes(base.llm)


def test_full_range_activations_only_where_the_kernels_cannot_saturate(monkeypatch):
    assert full_range_activations("qnnpack")  # ARM: qnnpack always uses 8 bits
    assert not full_range_activations("onednn")  # not established there: torch's 7 bits
    for vnni in (True, False):
        monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda vnni=vnni: vnni)
        assert full_range_activations("fbgemm") is vnni and full_range_activations("x86") is vnni
    monkeypatch.delattr(torch.cpu, "_is_vnni_supported")  # a torch without the private probe
    assert not full_range_activations("x86")


def _quantize_int8(module: torch.nn.Module, full: bool, monkeypatch) -> None:
    """torch.ao dynamic int8 in place, with 8-bit (full) or 7-bit activations."""
    from vila_nav.model.quantize import quantize_module

    monkeypatch.setattr("vila_nav.model.quantize.full_range_activations", lambda engine=None: full)
    q = quantize_module(module, "int8", torch.device("cpu"), backend=TORCH_DYNAMIC_INT8)
    assert q == (TORCH_DYNAMIC_INT8, 1)


@pytest.mark.skipif(not full_range_activations(), reason="this CPU's int8 kernels need 7-bit activations")
def test_full_range_int8_linear_is_the_8_bit_kernel_and_closer_to_float(monkeypatch):
    torch.manual_seed(0)
    lin = torch.nn.Linear(256, 128)
    x = torch.randn(16, 256)  # LM hidden states: roughly zero-mean, unit scale
    ref = lin(x).detach()
    full, stock = (torch.nn.Sequential(torch.nn.Linear(256, 128)) for _ in range(2))
    for m in (full, stock):
        m[0].load_state_dict(lin.state_dict())
    _quantize_int8(full, True, monkeypatch)
    _quantize_int8(stock, False, monkeypatch)
    assert full[0]._get_name() == "FullRangeDynamicQuantizedLinear" and stock[0]._get_name() == "DynamicQuantizedLinear"
    packed = full[0]._packed_params._packed_params
    assert torch.equal(full(x), torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False))
    err_full, err_stock = (float((m(x) - ref).pow(2).mean()) for m in (full, stock))
    # one more activation bit: about a quarter of the squared error where activation rounding dominates
    assert err_full < 0.6 * err_stock, (err_full, err_stock)


def test_int8_with_vision_quantizes_the_tower_and_agrees(ckpt, base):
    m = vm.load(ckpt, quantization="int8", quantize_vision=True)
    assert m.quantization_backend == TORCH_DYNAMIC_INT8
    assert not _linears(m.vision) and _linears(m.projector)  # tower's linears int8, projector float
    assert m.quantized_layers == 2 * 7 + 1 + 1 + 2 * 6  # + q k v out fc1 fc2 per tower layer
    for frames in _decisions(3):
        assert m.generate_ids(frames, INSTRUCTION) == base.generate_ids(frames, INSTRUCTION)
        assert _cos(m.logits(frames, INSTRUCTION), base.logits(frames, INSTRUCTION)) > 0.999
    # each tower linear (with bias): fp32 weight + bias -> int8 weight + 8 bytes per channel + fp32 bias
    saved = sum(3 * lin.weight.numel() - 8 * lin.out_features for lin in _linears(base.vision))
    assert weight_bytes(m.vision) == weight_bytes(base.vision) - saved


def test_int8_torchao_weight_only_backend_on_cpu_matches_fp32_greedy(ckpt, base):
    m = quantize_model(vm.load(ckpt), "int8", backend=TORCHAO_INT8)
    assert m.quantization == "int8" and m.quantization_backend == TORCHAO_INT8
    assert m.quantized_layers == 2 * 7  # q k v o gate up down per layer; lm_head kept
    assert type(m.llm.lm_head.weight) in (torch.Tensor, torch.nn.Parameter)
    assert type(m.llm.model.layers[0].mlp.up_proj.weight).__name__ == "Int8Tensor"
    for frames in _decisions(3):
        assert m.generate_ids(frames, INSTRUCTION) == base.generate_ids(frames, INSTRUCTION)
        assert _cos(m.logits(frames, INSTRUCTION), base.logits(frames, INSTRUCTION)) > 0.9999
    assert weight_bytes(m.llm) < weight_bytes(base.llm)


def test_int8_torchao_dynamic_backend_is_int8_by_int8_and_matches_fp32_greedy(ckpt, base):
    m = quantize_model(vm.load(ckpt), "int8", backend=TORCHAO_INT8_DYNAMIC)
    assert m.quantization == "int8" and m.quantization_backend == TORCHAO_INT8_DYNAMIC
    assert m.quantized_layers == 2 * 7  # q k v o gate up down per layer; lm_head kept
    assert type(m.llm.lm_head.weight) in (torch.Tensor, torch.nn.Parameter)
    w = m.llm.model.layers[0].mlp.up_proj.weight
    assert type(w).__name__ == "Int8Tensor" and w.act_quant_kwargs is not None  # activations quantized too
    for frames in _decisions(3):
        assert m.generate_ids(frames, INSTRUCTION) == base.generate_ids(frames, INSTRUCTION)
        assert _cos(m.logits(frames, INSTRUCTION), base.logits(frames, INSTRUCTION)) > 0.999
    assert weight_bytes(m.llm) < weight_bytes(base.llm)


def test_load_takes_a_quantization_backend_and_checks_it(ckpt):
    from vila_nav.config import compose
    from vila_nav.model.checkpoint import load_from_config
    from vila_nav.model.config import ModelConfig

    cfg = compose(ModelConfig, "model", [f"path={ckpt}", "quantization=int8", f"quantization_backend={TORCHAO_INT8_DYNAMIC}"])
    assert load_from_config(cfg).quantization_backend == TORCHAO_INT8_DYNAMIC
    assert vm.load(ckpt, quantization="int8", quantization_backend=TORCHAO_INT8).quantization_backend == TORCHAO_INT8
    with pytest.raises(ValueError, match="need a quantization mode"):
        vm.load(ckpt, quantization_backend=TORCHAO_INT8)
    with pytest.raises(ValueError, match="implements int8, not 'nf4'"):
        vm.load(ckpt, quantization="nf4", quantization_backend=TORCHAO_INT8)
    with pytest.raises(ValueError, match="implements quantization=int8, not 'nf4'"):
        ModelConfig(quantization="nf4", quantization_backend=TORCHAO_INT8)
    with pytest.raises(ValueError, match="quantization_backend must be '' or one of"):
        ModelConfig(quantization="int8", quantization_backend="fast")


def test_int8_bfloat16_or_compiled_on_cpu_uses_torchao(ckpt):
    assert backend_for("int8", "cpu", torch.bfloat16) == TORCHAO_INT8
    assert backend_for("int8", "cpu", compiled=True) == TORCHAO_INT8  # inductor fuses its dequantisation
    assert quantize_model(vm.load(ckpt), "int8", compiled=True).quantization_backend == TORCHAO_INT8
    m = vm.load(ckpt, dtype=torch.bfloat16, quantization="int8")
    assert m.quantization_backend == TORCHAO_INT8 and m.dtype == torch.bfloat16
    text = m.generate(_decisions(1)[0], INSTRUCTION)
    assert isinstance(text, str) and m.last_stats["new_tokens"] >= 1


@pytest.mark.parametrize("mode", ["int4", "nf4"])
def test_4bit_runs_on_cpu_and_stays_close(ckpt, base, mode):
    m = vm.load(ckpt, quantization=mode, quantize_vision=True)
    assert m.quantization_backend == "bitsandbytes-nf4"  # CPU: torchao has no int4 kernel
    assert type(m.llm.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    assert type(m.vision.model.encoder.layers[0].mlp.fc1).__name__ == "Linear4bit"
    for frames in _decisions(3):
        text = m.generate(frames, INSTRUCTION)
        assert isinstance(text, str) and m.last_stats["new_tokens"] >= 1
        assert _cos(m.logits(frames, INSTRUCTION), base.logits(frames, INSTRUCTION)) > 0.99
    # 4-bit linears + fp32 embeddings: well under the float model
    assert weight_bytes(m) < 0.75 * weight_bytes(base)


def test_quantized_model_cannot_be_saved(ckpt, tmp_path):
    m = vm.load(ckpt, quantization="int8")
    with pytest.raises(ValueError, match="cannot save a quantized model"):
        m.save_pretrained(tmp_path / "q")


def test_mode_errors(ckpt, base):
    with pytest.raises(ValueError, match="quantization must be one of"):
        vm.load(ckpt, quantization="int2")
    with pytest.raises(ValueError, match="quantize_vision"):
        vm.load(ckpt, quantize_vision=True)
    m = vm.load(ckpt, quantization="int8")
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model(m, "int8")
    assert backend_for("int4", "cpu") == BNB_NF4
    assert backend_for("none", "cpu") == ""
    with pytest.raises(ValueError, match="backend must be one of"):
        quantize_model(vm.load(ckpt), "int8", backend="int8-magic")
    with pytest.raises(ValueError, match="implements"):
        quantize_model(vm.load(ckpt), "nf4", backend=TORCHAO_INT8)
    with pytest.raises(QuantizationUnavailable, match="needs CUDA"):
        quantize_model(vm.load(ckpt), "int4", backend=TORCHAO_INT4)
    with pytest.raises(QuantizationUnavailable, match="float32 models only"):
        quantize_model(vm.load(ckpt, dtype=torch.bfloat16), "int8", backend=TORCH_DYNAMIC_INT8)


def test_missing_library_names_the_extra(ckpt, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import now raises ImportError
    with pytest.raises(QuantizationUnavailable, match=r"vila_nav\[quant\]"):
        vm.load(ckpt, quantization="nf4")
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    with pytest.raises(QuantizationUnavailable, match=r"torchao.*vila_nav\[quant\]"):
        vm.load(ckpt, dtype=torch.bfloat16, quantization="int8")


def test_torch_without_dynamic_quantization_is_a_clear_error(ckpt, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.ao.quantization", None)  # as in a torch that removed it
    with pytest.raises(QuantizationUnavailable, match=r"quantize_dynamic.*dtype=bfloat16"):
        vm.load(ckpt, quantization="int8")


def test_weight_bytes_counts_quantized_storage(base, ckpt):
    fp32 = weight_bytes(base.llm)
    n_params = sum(p.numel() for p in base.llm.parameters())
    assert fp32 == n_params * 4 + sum(b.numel() * b.element_size() for b in base.llm.buffers())
    m = quantize_model(vm.load(ckpt), "int8", backend=TORCHAO_INT8)
    lin = m.llm.model.layers[0].mlp.up_proj  # 128 x 64 int8 + per-row fp32 scale + int8 zero point
    assert weight_bytes(lin) == 128 * 64 + 128 * 4 + 128
    d = vm.load(ckpt, quantization="int8")
    lin = d.llm.model.layers[0].mlp.up_proj  # 128 x 64 int8 + per-channel 4-byte scale and zero point
    assert weight_bytes(lin) == 128 * 64 + 128 * 8
    emb = d.llm.get_input_embeddings()  # V x 64 int8 rows + a 4-byte scale and offset per row
    vocab = base.llm.get_input_embeddings().weight.shape[0]
    assert weight_bytes(emb) == vocab * 64 + vocab * 8
