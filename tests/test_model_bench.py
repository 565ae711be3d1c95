"""bench-model's measurement loop on a tiny model (figures are printed by the benchmark, not tested)
and the NaVILA-8B arithmetic."""
from __future__ import annotations

import pytest

import numpy as np

from vila_nav.model.bench import (
    Navila8B,
    _load_set,
    _run_mode,
    decision_set,
    navila_8b_arithmetic,
    results_table,
    stages_table,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tiny_checkpoint):
    return tiny_checkpoint()


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    """Random decision sets: 2 episodes x 4 steps + 1 cold decision, and 1 x 3."""
    root = tmp_path_factory.mktemp("bench")
    return {"2x4": str(decision_set(root / "a.npz", "random", 2, 4, 1, 8)),
            "1x3": str(decision_set(root / "b.npz", "random", 1, 3, 0, 8))}


def test_sim_decision_set_follows_the_expert_in_shipped_episodes(tmp_path):
    from vila_nav.evaluation.config import DatasetConfig
    from vila_nav.evaluation.runner import select_episodes

    data = _load_set(str(decision_set(tmp_path / "sim.npz", "sim", 2, 5, 1, 8)))
    assert data["episode_0"].shape == (5, 224, 224, 3) and data["cold_0"].shape == (8, 224, 224, 3)
    shipped = select_episodes(DatasetConfig(limit=3))
    assert str(data["episode_1_instruction"]) == shipped[1].instruction.text
    assert not np.array_equal(data["episode_0"][0], data["episode_0"][-1])  # the view changes along the route
    again = _load_set(str(decision_set(tmp_path / "again.npz", "sim", 2, 5, 1, 8)))
    assert all(np.array_equal(data[k], again[k]) for k in data)  # deterministic rendering
    with pytest.raises(ValueError, match="frames must be one of"):
        decision_set(tmp_path / "x.npz", "video", 1, 1, 0, 8)


def test_run_mode_counts_tower_calls(ckpt, noise):
    cached = _run_mode(str(ckpt), "fp32", [], noise["2x4"], episodes=2, cold=1)
    assert not cached.error and cached.steady_vision_calls == 1.0 and cached.cold_vision_calls == 8.0
    assert len(cached.texts) == 8 and len(cached.steady_ms) == 6
    navila = _run_mode(str(ckpt), "fp32-nocache", [], noise["2x4"], episodes=2, cold=1)
    assert navila.steady_vision_calls == 8.0 and navila.texts == cached.texts
    table = results_table([navila, cached])
    assert table.count("\n") == 3 and "| fp32 | float32 |" in table and "100%" in table


def test_stage_breakdown_and_backend_override(ckpt, noise):
    fp = _run_mode(str(ckpt), "fp32", [], noise["1x3"], episodes=1, cold=0)
    q = _run_mode(str(ckpt), "int8-torchao", [], noise["1x3"], episodes=1, cold=0)
    d = _run_mode(str(ckpt), "int8", [], noise["1x3"], episodes=1, cold=0)
    assert q.backend == "torchao-int8-weight-only" and d.backend == "torch-ao-dynamic-int8"
    for r in (fp, q, d):
        assert len(r.vision_ms) == len(r.prefill_ms) == len(r.decode_ms) == len(r.steady_ms) == 2
        for v, p, dec, total in zip(r.vision_ms, r.prefill_ms, r.decode_ms, r.steady_ms):
            assert 0 < v and 0 < p and 0 < dec and v + p + dec <= total + 1e-6
    assert d.weight_bytes < q.weight_bytes < fp.weight_bytes
    table = stages_table([fp, q, d])
    assert table.count("\n") == 4 and "| int8-torchao |" in table and "| 1.00x / 1.00x / 1.00x |" in table


def test_navila_8b_arithmetic():
    c = Navila8B()
    text = navila_8b_arithmetic(c)
    assert "8 frames x 27 layers" in text and "1 frame x 26 layers" in text
    # Known sizes: Llama-3-8B ~8.03 B parameters, SigLIP so400m ~0.41 B.
    assert "LLM linears 6.98 B, embeddings + lm_head 1.05 B" in text
    assert "vision tower 0.413 B" in text
    assert "| fp16 / bf16 | 13.96 GB" in text
