"""The loss-curve plot of a training run (matplotlib, Agg backend: no display needed).

Reads the rows of `log.jsonl` (train rows: step, loss, lr; validation rows: step, val_loss,
val_exact, val_action_acc) and writes one PNG: training loss (raw and smoothed) and validation
loss against optimizer steps on the left axis; validation accuracies, when present, on a
second panel.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence


def _rolling_mean(steps: Sequence[float], values: Sequence[float], window: int) -> tuple[list[float], list[float]]:
    """Centred moving average over `window` points (no start-up lag, unlike an EMA)."""
    import numpy as np

    if window <= 1 or len(values) < window:
        return list(steps), list(values)
    v = np.convolve(np.asarray(values, dtype=np.float64), np.ones(window) / window, mode="valid")
    s = np.convolve(np.asarray(steps, dtype=np.float64), np.ones(window) / window, mode="valid")
    return s.tolist(), v.tolist()


def plot_loss_curve(rows: Sequence[dict], path: str | Path, title: str = "") -> Path:
    """Write the loss curve PNG for log rows; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401 - formatters below

    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val_loss" in r]
    acc = [r for r in val if "val_exact" in r]
    fig, axes = plt.subplots(1, 2 if acc else 1, figsize=(11 if acc else 6.5, 4), squeeze=False)
    ax = axes[0][0]
    if train:
        steps = [r["step"] for r in train]
        losses = [r["loss"] for r in train]
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, lw=1, label="train")
        window = max(1, len(losses) // 25)
        ax.plot(*_rolling_mean(steps, losses, window), color="tab:blue", lw=2, label=f"train (mean of {window})")
    if val:
        ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", color="tab:orange", label="val")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy per answer token")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(True, alpha=0.3)
    ax.legend()
    if acc:
        ax2 = axes[0][1]
        ax2.plot([r["step"] for r in acc], [r["val_exact"] for r in acc], "o-", label="exact match (teacher-forced)")
        dec = [r for r in acc if "val_action_acc" in r]
        if dec:
            ax2.plot([r["step"] for r in dec], [r["val_action_acc"] for r in dec], "s-", label="action accuracy (greedy, parsed)")
        ax2.set_ylim(0, 1)
        ax2.set_xlim(ax.get_xlim())  # same step axis as the loss panel
        ax2.set_xlabel("optimizer step")
        ax2.set_ylabel("validation accuracy")
        ax2.grid(True, alpha=0.3)
        ax2.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
