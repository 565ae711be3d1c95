"""Checkpoints: NaVILA layout, bit-for-bit round trips, and clear errors for every bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import vila_nav.model as vm
from vila_nav.model.checkpoint import CheckpointError
from vila_nav.model.testing import make_tiny_checkpoint


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", seed=3)


@pytest.fixture()
def copy(tiny, tmp_path) -> Path:
    dst = tmp_path / "c"
    shutil.copytree(tiny, dst)
    return dst


def _tensors(root: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(root.rglob("*.safetensors")):
        for k, v in load_file(str(f)).items():
            out[f"{f.parent.name}/{k}"] = v
    return out


def test_layout_is_navilas(tiny):
    cfg = json.loads((tiny / "config.json").read_text())
    assert cfg["model_type"] == "llava_llama" and cfg["architectures"] == ["LlavaLlamaModel"]
    for key in ("llm_cfg", "vision_tower_cfg", "mm_projector_cfg"):
        assert isinstance(cfg[key], dict) and (tiny / key[: -len("_cfg")] / "config.json").is_file()
    assert cfg["mm_projector_cfg"]["mm_projector_type"] == "mlp_downsample"
    assert cfg["mm_vision_select_layer"] == -2 and cfg["mm_vision_select_feature"] == "cls_patch"
    assert cfg["image_aspect_ratio"] == "resize" and cfg["num_video_frames"] == 8
    assert cfg["mm_hidden_size"] == cfg["vision_tower_cfg"]["hidden_size"]
    assert cfg["hidden_size"] == cfg["llm_cfg"]["hidden_size"]
    assert (tiny / "vision_tower" / "preprocessor_config.json").is_file()
    assert (tiny / "llm" / "tokenizer.json").is_file()
    vis = load_file(str(tiny / "vision_tower" / "model.safetensors"))
    assert all(k.startswith("vision_model.") for k in vis)  # NaVILA's (transformers 4.x) names
    proj = load_file(str(tiny / "mm_projector" / "model.safetensors"))
    assert sorted(proj) == [f"layers.{i}.{p}" for i in (1, 2, 4) for p in ("bias", "weight")]
    assert not list(tiny.rglob("*.bin"))


def test_round_trip_bit_for_bit(tiny, tmp_path):
    stored = _tensors(tiny)
    model = vm.load(tiny)
    loaded = {
        **{f"llm/{k}": v for k, v in model.llm.state_dict().items()},
        **{f"vision_tower/vision_model.{k}": v for k, v in model.vision.model.state_dict().items()},
        **{f"mm_projector/{k}": v for k, v in model.projector.state_dict().items()},
    }
    assert set(loaded) == set(stored)
    for k, v in stored.items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v), k
    out = vm.save(model, tmp_path / "again")
    again = _tensors(out)
    assert set(again) == set(stored) and all(torch.equal(again[k], stored[k]) for k in stored)
    a, b = (json.loads((p / "config.json").read_text()) for p in (tiny, out))
    assert a == b
    model2 = vm.load(out)
    assert all(torch.equal(x, y) for x, y in zip(model.state_dict().values(), model2.state_dict().values()))
    # save_pretrained is the same writer
    model2.save_pretrained(tmp_path / "third")
    assert all(torch.equal(_tensors(tmp_path / "third")[k], stored[k]) for k in stored)


def test_bare_vision_keys_and_pooling_head_load(copy):
    f = copy / "vision_tower" / "model.safetensors"
    sd = load_file(str(f))
    bare = {k[len("vision_model."):]: v for k, v in sd.items()}
    save_file(bare, str(f), metadata={"format": "pt"})  # transformers 5 naming
    m = vm.load(copy)
    assert torch.equal(m.vision.model.state_dict()["embeddings.patch_embedding.weight"], sd["vision_model.embeddings.patch_embedding.weight"])
    # A released SigLIP file carries the (unused) pooling head: it loads and round-trips.
    from transformers import SiglipVisionConfig, SiglipVisionModel

    cfg = SiglipVisionConfig.from_pretrained(str(copy / "vision_tower"))
    cfg.vision_use_head = True
    head = {f"vision_model.{k}": v for k, v in SiglipVisionModel(cfg).state_dict().items() if k.startswith("head.")}
    save_file({**sd, **head}, str(f), metadata={"format": "pt"})
    m = vm.load(copy)
    assert m.vision.model.config.vision_use_head


def test_sharded_llm_loads(copy):
    m = vm.load(copy)
    llm_dir = copy / "llm"
    (llm_dir / "model.safetensors").unlink()
    m.llm.save_pretrained(str(llm_dir), max_shard_size="100KB")
    assert (llm_dir / "model.safetensors.index.json").is_file()
    m2 = vm.load(copy)
    assert all(torch.equal(a, b) for a, b in zip(m.llm.state_dict().values(), m2.llm.state_dict().values()))
    shard = sorted(llm_dir.glob("model-*.safetensors"))[0]
    shard.unlink()
    with pytest.raises(CheckpointError, match=shard.name):
        vm.load(copy)


def _edit(path: Path, fn) -> None:
    sd = load_file(str(path))
    fn(sd)
    save_file(sd, str(path), metadata={"format": "pt"})


def test_missing_tensor_names_file_and_key(copy):
    _edit(copy / "llm" / "model.safetensors", lambda sd: sd.pop("model.norm.weight"))
    with pytest.raises(CheckpointError, match=r"llm.*missing tensor\(s\) model\.norm\.weight"):
        vm.load(copy)


def test_unexpected_tensor_names_file_and_key(copy):
    _edit(copy / "mm_projector" / "model.safetensors", lambda sd: sd.update({"layers.5.weight": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"mm_projector/model\.safetensors: unexpected tensor 'layers\.5\.weight'"):
        vm.load(copy)


def test_wrong_shape_names_file_key_and_shapes(copy):
    key = "vision_model.encoder.layers.0.mlp.fc1.weight"
    _edit(copy / "vision_tower" / "model.safetensors", lambda sd: sd.update({key: sd[key][:-1]}))
    with pytest.raises(CheckpointError, match=r"vision_tower/model\.safetensors: tensor '.*fc1\.weight' has shape \[63, 32\], the model expects \[64, 32\]"):
        vm.load(copy)


def test_mismatched_projector_width(copy):
    cfg = json.loads((copy / "config.json").read_text())
    cfg["hidden_size"] = 48
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="hidden_size"):
        vm.load(copy)


@pytest.mark.parametrize("how", ["truncate", "garbage", "empty"])
def test_corrupted_files(copy, how):
    f = copy / "llm" / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00not safetensors" * 7, "empty": b""}[how])
    with pytest.raises(CheckpointError, match=r"llm/model\.safetensors: corrupted or truncated"):
        vm.load(copy)


def test_pickle_weights_are_refused_without_unpickling(copy):
    proj = copy / "mm_projector"
    (proj / "model.safetensors").unlink()
    (proj / "pytorch_model.bin").write_bytes(b"this would be a pickle; it is never opened")
    with pytest.raises(CheckpointError, match=r"pickle.*pytorch_model\.bin.*never unpickles"):
        vm.load(copy)


def test_hub_ids_and_missing_paths_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match=r"model-hub id.*never downloads.*local directory"):
        vm.load("a-org/navila-8b")
    with pytest.raises(CheckpointError, match=r"does not exist.*local directory"):
        vm.load(tmp_path / "nothing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        vm.load(tmp_path / "file.txt")


def test_missing_sub_folder(copy):
    shutil.rmtree(copy / "mm_projector")
    with pytest.raises(CheckpointError, match="missing sub-folder 'mm_projector/'"):
        vm.load(copy)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda c: c.update(model_type="llava"), "model_type"),
        (lambda c: c.pop("mm_hidden_size"), "missing field 'mm_hidden_size'"),
        (lambda c: c.update(mm_vision_select_feature="cls"), "mm_vision_select_feature"),
        (lambda c: c.update(image_aspect_ratio="pad"), "image_aspect_ratio"),
        (lambda c: c.update(num_video_frames="8"), "num_video_frames"),
        (lambda c: c["mm_projector_cfg"].update(mm_projector_type="mlp2x_gelu"), "mm_projector_type"),
        (lambda c: c.update(mm_vision_select_layer=-7), "mm_vision_select_layer"),
    ],
)
def test_bad_root_config(copy, edit, match):
    cfg = json.loads((copy / "config.json").read_text())
    edit(cfg)
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=match):
        vm.load(copy)


def test_invalid_json(copy):
    (copy / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        vm.load(copy)


def test_dtypes_and_devices(tiny):
    m = vm.load(tiny, dtype=torch.bfloat16)
    assert m.dtype == torch.bfloat16 and next(m.vision.parameters()).dtype == torch.bfloat16
    assert vm.load(tiny, dtype="float32").dtype == torch.float32
    with pytest.raises(ValueError, match="float16 is only supported on CUDA"):
        vm.load(tiny, dtype=torch.float16)
    with pytest.raises(ValueError, match="unsupported"):
        vm.load(tiny, dtype=torch.float64)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            vm.load(tiny, device="cuda")


def test_default_model_path(monkeypatch, tmp_path, tiny):
    import vila_nav.paths

    monkeypatch.setattr(vila_nav.paths, "assets_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="shipped model is not installed"):
        vm.default_model_path()
    shutil.copytree(tiny, tmp_path / "navila-tiny")
    assert vm.default_model_path() == tmp_path / "navila-tiny"


def test_make_tiny_checkpoint_overrides(tmp_path):
    p = make_tiny_checkpoint(tmp_path / "lin", projector_type="linear", num_video_frames=4)
    m = vm.load(p)
    assert m.num_frames == 4 and m.projector.projector_type == "linear"
    with pytest.raises(TypeError, match="unknown preset field"):
        make_tiny_checkpoint(tmp_path / "x", colour="red")


def test_preprocessor_size_must_match_the_tower(copy):
    path = copy / "vision_tower" / "preprocessor_config.json"
    raw = json.loads(path.read_text())
    size = raw["size"]["height"]
    raw["size"] = {"height": size + 2, "width": size + 2}
    path.write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match=r"preprocessor_config\.json: size .* does not match"):
        vm.load(copy)


def test_missing_preprocessor_config_is_logged(copy, caplog):
    (copy / "vision_tower" / "preprocessor_config.json").unlink()
    with caplog.at_level("WARNING"):
        vm.load(copy)
    assert "preprocessor_config.json not found" in caplog.text


def test_importing_the_model_package_switches_hub_access_off():
    """Nothing may be downloaded at run time, even outside scripts/ (which also set it): the
    hub libraries that transformers and bitsandbytes use see offline mode."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    code = ("import vila_nav.model, transformers, huggingface_hub.constants as c; "
            "print(c.HF_HUB_OFFLINE)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr
    env["HF_HUB_OFFLINE"] = "0"  # an explicit choice of the user's is kept
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
