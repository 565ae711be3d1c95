"""Simulators for VLN-CE episodes behind one interface (NavEnv).

make_env(SimConfig(backend="miniworld")) gives the embedded simulator (MiniWorld rendering of
generated scenes in sim/scenes/); backend="habitat" drives habitat-sim >= 0.2 on real scenes.
Backends are imported lazily, so `import vila_nav.envs` needs neither.
"""
from __future__ import annotations

from vila_nav.envs.config import SimConfig
from vila_nav.envs.nav_env import ACTION_NAMES, NavEnv, action_name
from vila_nav.envs.top_down import TopDownMap


def make_env(cfg: SimConfig | None = None) -> NavEnv:
    """Create the simulator `cfg.backend` names ("miniworld" default, or "habitat")."""
    cfg = cfg or SimConfig()
    if cfg.backend == "miniworld":
        from vila_nav.envs.miniworld_env import MiniWorldNavEnv

        return MiniWorldNavEnv(cfg)
    if cfg.backend == "habitat":
        from vila_nav.envs.habitat_env import HabitatNavEnv

        return HabitatNavEnv(cfg)
    raise ValueError(f"unknown simulator backend {cfg.backend!r}")  # SimConfig validates first


__all__ = ["ACTION_NAMES", "NavEnv", "SimConfig", "TopDownMap", "action_name", "make_env"]
