"""Training curves as a PNG: people would rather look at a curve than read a log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

from learners.errors import ConfigError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig, out: str | Path) -> Path:
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_history(history: list[dict[str, Any]], out: str | Path, title: str = "") -> Path:
    """One panel per metric (loss, accuracy / MSE), training and validation on shared axes."""
    if not history:
        raise ConfigError("no training history to plot: the folder has an empty or missing history.jsonl")
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
    return _save(fig, out)


def plot_accuracy_matrix(R, out: str | Path, title: str = "") -> Path:
    """Heat-map of ``R[i, j]``: accuracy on task j (columns) after training task i (rows)."""
    import numpy as np

    R = np.asarray(R)
    T = len(R)
    fig, ax = plt.subplots(figsize=(0.45 * T + 2.5, 0.45 * T + 1.8))
    im = ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
    if T <= 10:
        for i in range(T):
            for j in range(T):
                ax.text(j, i, f"{R[i, j]:.2f}", ha="center", va="center", fontsize=8, color="w" if R[i, j] < 0.6 else "k")
    ax.set_xlabel("evaluated on task")
    ax.set_ylabel("after training task")
    ax.set_xticks(range(T), [str(j + 1) for j in range(T)])
    ax.set_yticks(range(T), [str(i + 1) for i in range(T)])
    fig.colorbar(im, ax=ax, label="accuracy")
    ax.set_title(title)
    return _save(fig, out)


def plot_average_accuracy(curves: dict[str, Any], out: str | Path, title: str = "") -> Path:
    """Average accuracy over the tasks seen so far, after each task, one line per method."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, R in curves.items():
        R = np.asarray(R)
        ys = [R[i, : i + 1].mean() for i in range(len(R))]
        ax.plot(range(1, len(R) + 1), ys, marker="o" if len(R) <= 10 else None, label=name, markersize=3,
                linestyle="--" if name in ("finetune", "joint") else "-")
    ax.set_xlabel("tasks learned")
    T = max((len(R) for R in curves.values()), default=1)
    ax.set_xticks(range(1, T + 1, max(T // 10, 1)))
    ax.set_ylabel("average accuracy on tasks seen")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, out)


def plot_continual(result, out: str | Path) -> list[Path]:
    """A continual benchmark's PNGs in ``out``: the average accuracy of every method after each
    task, and each method's accuracy matrix as a heat-map."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{result.benchmark}-{result.scenario}-buffer{result.buffer}"
    if result.iterations > 1:
        stem += f"-steps{result.iterations}"
    paths = [plot_average_accuracy({m: r.mean_R for m, r in result.methods.items()}, out / f"{stem}-average-accuracy.png",
                                   f"{result.benchmark} MNIST ({result.scenario})")]
    for name, res in result.methods.items():
        safe = name.replace("+", "p")
        paths.append(plot_accuracy_matrix(res.mean_R, out / f"{stem}-{safe}-matrix.png", f"{name}: R[i, j]"))
    return paths


def plot_study(study, out: str | Path) -> list[Path]:
    """A study's optimisation history (each trial's value and the best so far) and, once two
    trials have finished, the parameters' importances (Optuna's fANOVA), as PNGs in ``out``."""
    import warnings

    import optuna
    from optuna.visualization import matplotlib as ovm

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    ax = ovm.plot_optimization_history(study)
    paths.append(_save(ax.figure, out / "optimization-history.png"))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) >= 2 and len({tuple(sorted(t.params.items())) for t in done}) >= 2:
        ax = ovm.plot_param_importances(study)
        paths.append(_save(ax.figure, out / "param-importances.png"))
    return paths


def plot_architecture(spec: dict[str, Any], out: str | Path) -> Path:
    """A found backbone as a picture: a cell's nodes and labelled edges, or a genome's blocks."""
    if spec["name"] == "cell":
        edges = spec["edges"]
        nodes = len(edges) + 1
        fig, ax = plt.subplots(figsize=(2.2 * nodes + 1, 3.2))
        xs = {k: 1.8 * k for k in range(nodes)}
        for k in range(nodes):
            ax.add_patch(plt.Circle((xs[k], 0), 0.35, color="#4c72b0" if k else "#55a868"))
            ax.text(xs[k], 0, "in" if k == 0 else str(k), ha="center", va="center", color="w", fontsize=11)
        for j, node in enumerate(edges, start=1):
            for src, op in node:
                bend = 0.6 + 0.35 * (j - src - 1)
                ax.annotate("", xy=(xs[j] - 0.3, 0.15), xytext=(xs[src] + 0.3, 0.15),
                            arrowprops=dict(arrowstyle="->", connectionstyle=f"arc3,rad=-{0.25 + 0.1 * (j - src - 1)}"))
                ax.text((xs[j] + xs[src]) / 2, bend, op, ha="center", fontsize=9, bbox=dict(fc="w", ec="0.7"))
        ax.set_xlim(-0.8, xs[nodes - 1] + 0.8)
        ax.set_ylim(-1.0, 0.6 + 0.35 * nodes)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"found cell (x{spec.get('cells', 4)} with pooling, {spec.get('channels')} channels); output = mean of nodes 1-{nodes - 1}")
        return _save(fig, out)
    fields = {k: v for k, v in spec.items() if k not in ("name", "found_by", "image_size", "bn_running_stats", "inputs", "outputs")}
    depth = int(spec.get("depth", spec.get("layers", 1)))
    fig, ax = plt.subplots(figsize=(1.6 * depth + 3, 2.6))
    width_label = spec.get("width", spec.get("hidden"))
    for k in range(depth):
        ax.add_patch(plt.Rectangle((1.6 * k, 0), 1.2, 1, color="#4c72b0"))
        kind = f"conv{spec.get('kernel', '')}" if spec["name"] == "genome" else spec.get("activation", "relu")
        ax.text(1.6 * k + 0.6, 0.5, f"{kind}\n{width_label}", ha="center", va="center", color="w", fontsize=9)
        if k:
            ax.annotate("", xy=(1.6 * k, 0.5), xytext=(1.6 * k - 0.4, 0.5), arrowprops=dict(arrowstyle="->"))
    ax.set_xlim(-0.3, 1.6 * depth)
    ax.set_ylim(-0.3, 1.5)
    ax.axis("off")
    ax.set_title(", ".join(f"{k}={v}" for k, v in fields.items()), fontsize=9)
    return _save(fig, out)
