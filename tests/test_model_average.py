"""Checkpoint averaging on real tiny NaVILA-layout checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vila_nav.model import load
from vila_nav.model.average import average_checkpoints, main
from vila_nav.model.checkpoint import CheckpointError
from vila_nav.model.testing import make_tiny_checkpoint

PARTS = ("llm", "vision_tower", "mm_projector")


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    root = tmp_path_factory.mktemp("avg")
    return [make_tiny_checkpoint(root / f"s{seed}", seed=seed) for seed in range(3)]


def test_the_average_is_the_elementwise_mean_of_every_stored_tensor(three, tmp_path):
    out = average_checkpoints(three, tmp_path / "mean")
    for part in PARTS:
        got = load_file(out / part / "model.safetensors")
        inputs = [load_file(c / part / "model.safetensors") for c in three]
        assert set(got) == set(inputs[0])
        for key, value in got.items():
            expected = sum(i[key].double() for i in inputs) / 3
            torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-7)
    assert not torch.equal(load_file(out / "llm" / "model.safetensors")["model.embed_tokens.weight"],
                           load_file(three[0] / "llm" / "model.safetensors")["model.embed_tokens.weight"])


def test_the_average_loads_strictly_and_decides(three, tmp_path):
    out = average_checkpoints(three[:2], tmp_path / "mean")
    model = load(out)
    frames = [np.full((32, 32, 3), 30 * i, np.uint8) for i in range(model.num_frames)]
    assert isinstance(model.generate(frames, "go to the kitchen"), str)
    assert (out / "llm" / "tokenizer.json").read_bytes() == (three[0] / "llm" / "tokenizer.json").read_bytes()


def test_averaging_a_checkpoint_with_itself_changes_nothing(three, tmp_path):
    out = average_checkpoints([three[0], three[0]], tmp_path / "same")
    for part in PARTS:
        a, b = load_file(out / part / "model.safetensors"), load_file(three[0] / part / "model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_different_architectures_are_refused_by_name(three, tmp_path):
    other = make_tiny_checkpoint(tmp_path / "f4", num_video_frames=4)
    with pytest.raises(CheckpointError, match=r"f4: its config differs"):
        average_checkpoints([three[0], other], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_the_command_needs_two_checkpoints_and_a_new_output(three, tmp_path, capsys):
    assert main([str(tmp_path / "one"), str(three[0])]) == 1
    assert "at least 2 checkpoints" in capsys.readouterr().err
    assert main([str(tmp_path / "gone"), str(three[0]), str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(three[1]), str(three[0]), str(three[2])])  # the output exists: nothing is overwritten
    assert main([str(tmp_path / "ok"), *map(str, three)]) == 0
    assert "averaged 3 checkpoints" in capsys.readouterr().out
