"""Where the package's data lives: config/, sim/ and the shipped model.

The same code runs from a git checkout (editable install), from a pip install (data_files under
<prefix>/share/vila_nav) and from a colcon workspace (ament index share directory). The
environment variable VILA_NAV_SHARE overrides the search.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "vila_nav"
_PKG_DIR = Path(__file__).resolve().parent


def _candidates() -> list[Path]:
    found: list[Path] = []
    env = os.environ.get("VILA_NAV_SHARE")
    if env:
        found.append(Path(env))
    found.append(_PKG_DIR.parent)  # git checkout / editable install: the repository root
    try:  # colcon workspace or system ROS install
        from ament_index_python.packages import get_package_share_directory

        found.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # noqa: BLE001 - ament_index missing or package not indexed
        pass
    found.append(Path(sys.prefix) / "share" / PACKAGE)
    return found


def share_dir() -> Path:
    """The first directory holding both config/ and sim/ (raises if none does)."""
    for cand in _candidates():
        if (cand / "config").is_dir() and (cand / "sim").is_dir():
            return cand
    raise FileNotFoundError(
        "vila_nav data (config/, sim/) not found; looked in: "
        + ", ".join(str(c) for c in _candidates())
        + ". Set VILA_NAV_SHARE to the directory that holds them."
    )


def config_dir() -> Path:
    """Directory of the hydra presets and the ROS parameter file."""
    return share_dir() / "config"


def sim_dir() -> Path:
    """Directory of the embedded simulator's scene specs and episode files."""
    return share_dir() / "sim"


def assets_dir() -> Path:
    """Package data shipped inside the Python package (the small trained model)."""
    return _PKG_DIR / "assets"
