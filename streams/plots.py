"""Training curves as a PNG: people would rather look at a curve than read a log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: list[dict[str, Any]], out: str | Path, title: str = "") -> Path:
    """One panel per metric (loss, accuracy / MSE), training and validation on shared axes."""
    if not history:
        raise ValueError("no training history to plot: the folder has an empty or missing history.jsonl")
    metrics = sorted({k.split("_", 1)[1] for rec in history for k in rec if k.startswith(("train_", "val_"))})
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for prefix, style in (("train", "-"), ("val", "o-")):
            pts = [(r["iteration"], r[f"{prefix}_{metric}"]) for r in history if f"{prefix}_{metric}" in r]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, style, label=prefix, markersize=3)
        ax.set_xlabel("meta-iteration")
        ax.set_ylabel(metric)
        if metric in ("loss", "mse"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
