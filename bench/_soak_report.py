"""What ``soak.py`` measures about memory: the resident memory of a process tree, and its plot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, MiB (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {pid}, {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - tree
        tree |= frontier
    total = 0.0
    for p in tree:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def plot_rss(soak, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    if soak.rss:
        t, mb = zip(*soak.rss)
        ax.plot(np.asarray(t) / 60, mb, lw=1.2, label="worker + update processes")
    for at, kind in soak.faults:
        ax.axvline(at / 60, color="tab:red" if kind == "kill" else "tab:gray", lw=0.8, ls="--" if kind == "pause" else "-")
    ax.set_xlabel("minutes (red: worker SIGKILLed and restarted; grey dashed: broker paused)")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title(f"bench/soak.py: worker memory at {soak.args.rate:,.0f} experiences/s")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
