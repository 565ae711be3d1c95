"""Top-down trajectory plots (matplotlib, PNG): map, reference path, agent path, start, goal and
the 3 m success circle. Drawn in the X-Z ground plane (metres), x to the right, z downwards
(the view from above with Habitat's -Z forward pointing up)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vila_nav.episodes import Episode


def _map_image(top_down: Any) -> tuple[np.ndarray | None, tuple[float, float, float, float] | None]:
    """(image, imshow extent (left, right, bottom, top) in metres) of a vila_nav.envs.TopDownMap
    (image (H, W, 3) uint8, origin = world (x, z) of the top-left corner, meters_per_pixel)."""
    if top_down is None:
        return None, None
    image = np.asarray(top_down.image)
    ox, oz = (float(v) for v in top_down.origin)
    mpp = float(top_down.meters_per_pixel)
    h, w = image.shape[:2]
    return image, (ox, ox + w * mpp, oz + h * mpp, oz)


def plot_episode(top_down: Any, episode: Episode, row: Mapping[str, Any], path: Path, success_distance: float = 3.0) -> Path:
    """Save a PNG of one episode.

    top_down: env.top_down_map() (a vila_nav.envs.TopDownMap; image rows run along +z) or None
    for no background. row: the episode's results row (its "trajectory" and "metrics").
    """
    import matplotlib

    matplotlib.use("Agg")  # headless, no display needed
    import matplotlib.pyplot as plt

    image, extent = _map_image(top_down)
    traj = np.asarray(row["trajectory"], dtype=np.float64)  # (T, 3) m
    ref = np.asarray(episode.reference_path, dtype=np.float64)  # (R, 3) m
    goal = episode.goal.position
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    try:
        if image is not None:
            ax.imshow(image, extent=extent, origin="upper", interpolation="nearest")
        if episode.gt is not None:
            gt = np.asarray(episode.gt.locations, dtype=np.float64)
            ax.plot(gt[:, 0], gt[:, 2], color="tab:green", lw=1, ls=":", label="gt locations")
        ax.plot(ref[:, 0], ref[:, 2], color="tab:green", lw=2, marker="o", ms=3, label="reference path")
        ax.plot(traj[:, 0], traj[:, 2], color="tab:blue", lw=2, label="agent")
        ax.plot(*episode.start_position[::2], marker="s", color="black", ms=8, ls="", label="start")
        ax.plot(goal[0], goal[2], marker="*", color="tab:red", ms=14, ls="", label="goal")
        ax.plot(traj[-1, 0], traj[-1, 2], marker="x", color="tab:blue", ms=10, mew=2, ls="", label="end")
        ax.add_patch(plt.Circle((goal[0], goal[2]), success_distance, fill=False, color="tab:red", ls="--", lw=1))
        m = row["metrics"]
        ax.set_title(f"episode {episode.episode_id}: SR {m['sr']:.0f}  NE {m['ne']:.2f} m  "
                     f"SPL {m['spl']:.2f}  nDTW {m['ndtw']:.2f}  steps {int(m['steps'])}", fontsize=9)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("z (m)")
        ax.set_aspect("equal")
        if extent is None:
            ax.invert_yaxis()  # z grows downwards, as with a map image
        ax.legend(loc="best", fontsize=7)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
