"""`vila-nav gen-scenes`: write generated scene specs and their split file to sim/scenes/.

    vila-nav gen-scenes                       # the shipped set: 48 train + 12 val_unseen scenes
    vila-nav gen-scenes out_dir=/tmp/scenes num_train=200 first_seed=1000

Scene `house_NNNN` is generate_scene(NNNN): seeds first_seed .. first_seed + num_train - 1 are
train scenes (train and val_seen episodes), the next num_val_unseen seeds are held out for
val_unseen episodes.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SceneGenConfig:
    out_dir: str = ""  # "" = the shipped sim/scenes/
    num_train: int = 48
    num_val_unseen: int = 12
    first_seed: int = 0

    def __post_init__(self) -> None:
        if self.num_train < 1 or self.num_val_unseen < 1:
            raise ValueError(f"num_train and num_val_unseen must be >= 1, got {self.num_train}, {self.num_val_unseen}")
        if self.first_seed < 0:
            raise ValueError(f"first_seed must be >= 0, got {self.first_seed}")


def write_scenes(cfg: SceneGenConfig) -> dict[str, list[str]]:
    """Generate and save the scenes; returns the splits written."""
    from tqdm import tqdm

    from vila_nav.scenes.generator import generate_scene
    from vila_nav.scenes.store import save_scene, save_splits

    seeds = list(range(cfg.first_seed, cfg.first_seed + cfg.num_train + cfg.num_val_unseen))
    ids = []
    for seed in tqdm(seeds, desc="scenes", unit="scene"):
        spec = generate_scene(seed)
        save_scene(spec, cfg.out_dir or None)
        ids.append(spec.scene_id)
    splits = {"train": ids[: cfg.num_train], "val_unseen": ids[cfg.num_train :]}
    save_splits(splits, cfg.out_dir or None)
    return splits


def main(argv: list[str]) -> int:
    """Entry point: hydra overrides of SceneGenConfig (key=value)."""
    from vila_nav.config import command_config

    cfg = command_config(SceneGenConfig, "gen_scenes", argv, prog="vila-nav gen-scenes", doc=__doc__)
    if isinstance(cfg, int):
        return cfg
    from vila_nav.scenes.store import scenes_dir

    splits = write_scenes(cfg)
    print(f"wrote {sum(len(v) for v in splits.values())} scenes to {scenes_dir(cfg.out_dir or None)}: "
          + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    return 0
