"""The model that ships in the package (vila_nav/assets/navila-tiny): its layout and size, strict
loading through the same loader as NaVILA's released checkpoints, sensible answers, and a few
evaluation episodes in the embedded simulator through the real evaluator."""
from __future__ import annotations

import json

import pytest

from vila_nav.model import default_model_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAVILA_ANSWERS = {  # NaVILA's output vocabulary (the SFT labels)
    *(f"The next action is move forward {d} cm." for d in (25, 50, 75)),
    *(f"The next action is turn {side} {a} degree." for side in ("left", "right") for a in (15, 30, 45)),
    "I think I should stop because I have finished the instruction.",
}


@pytest.fixture(scope="module")
def shipped():
    return default_model_path()


def test_shipped_model_is_a_small_navila_layout_checkpoint(shipped):
    names = {p.relative_to(shipped).as_posix() for p in shipped.rglob("*") if p.is_file()}
    for part in ("llm", "vision_tower", "mm_projector"):
        assert f"{part}/config.json" in names and any(n.startswith(f"{part}/") and n.endswith(".safetensors")
                                                      for n in names), part
    assert "config.json" in names and "llm/tokenizer.json" in names
    assert all(n.endswith((".json", ".safetensors", ".md", ".jsonl", ".txt")) for n in names), names  # no pickles
    size = sum(p.stat().st_size for p in shipped.rglob("*") if p.is_file())
    assert size <= 30 * 2**20, f"{size / 2**20:.1f} MiB"
    cfg = json.loads((shipped / "config.json").read_text())
    # NaVILA's layout: the projector type lives in mm_projector_cfg (and mm_projector/config.json)
    # 4 frames per decision (3 history + current): as good as 8 in the frames ablation, half the visual tokens
    assert cfg["model_type"] == "llava_llama" and cfg["num_video_frames"] == 4
    assert cfg["mm_projector_cfg"]["mm_projector_type"] == "mlp_downsample"
    assert json.loads((shipped / "mm_projector" / "config.json").read_text())["mm_projector_type"] == "mlp_downsample"


def test_shipped_model_completes_evaluation_episodes(tmp_path):
    """`vila-nav eval`'s default agent is the shipped model: episodes end cleanly, every answer is
    one of NaVILA's sentences and parses, and some episodes succeed."""
    from vila_nav.config import compose
    from vila_nav.evaluation.config import EvalConfig
    from vila_nav.evaluation.runner import evaluate

    # 60 steps (not VLN-CE's 500) keep the test short; the README's figures are full-length runs.
    cfg = compose(EvalConfig, "eval", ["dataset.limit=3", "sim.max_steps=60", f"output_dir={tmp_path / 'eval'}",
                                       "progress=false"])
    report = evaluate(cfg)
    assert report.summary["aggregate"]["evaluated"] == 3 and report.summary["name"] == "vila"
    queries = [q for row in report.rows for q in row["agent"]["queries"]]
    assert len(queries) >= 3 and all(q["text"] in NAVILA_ANSWERS and q["action"] for q in queries), queries
    assert all(row["agent"]["unparseable"] == 0 and 1 <= row["steps"] <= 60 for row in report.rows)
