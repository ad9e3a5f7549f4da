"""Leave-alphabets-out validation of an Omniglot one-shot recipe: a ranking that behaves like the
real test. Two fixed held-out alphabets were too few and too unequal to rank recipes (a recipe's
error on them said little about its error on Lake's runs), so each fold here meta-trains on six of
the eight background alphabets and scores 20-way within-alphabet one-shot runs, in Lake's layout,
built from the two it held out; the figure is the mean and spread over the folds.

The folds pair the alphabets so that each holds out one with at least 20 characters (Tagalog has
17, too few for a 20-way run on its own) and the held-out pairs are of similar size.

>>> [len(f) for f in FOLDS], sorted(a for f in FOLDS for a in f) == sorted(BACKGROUND_ALPHABETS)
([2, 2, 2, 2], True)
>>> fold_config({"task": {"val_alphabets": ["Balinese"], "test_alphabets": []}}, FOLDS[0])["task"]
{'val_alphabets': [], 'test_alphabets': ['Balinese', 'Tagalog']}
"""

from __future__ import annotations

import copy
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .oneshot import make_dev_runs, read_runs, score_runs
from .settings import resolve_device
from .tasks import load_omniglot_background, read_background

BACKGROUND_ALPHABETS = ("Balinese", "Early_Aramaic", "Greek", "Japanese_(katakana)", "Korean", "Latin", "Sanskrit", "Tagalog")
TTA_COPIES = 4  # distorted copies averaged into each embedding when a fold is scored with test-time augmentation
FOLDS: tuple[tuple[str, str], ...] = (
    ("Balinese", "Tagalog"),
    ("Early_Aramaic", "Sanskrit"),
    ("Greek", "Korean"),
    ("Japanese_(katakana)", "Latin"),
)


def fold_config(config: dict[str, Any], held: tuple[str, ...]) -> dict[str, Any]:
    """The recipe with ``held`` as its meta-test alphabets and no meta-validation alphabets: a
    fold trains on every other background alphabet, and nothing it is scored on steers it."""
    cfg = copy.deepcopy(config)
    cfg["task"]["val_alphabets"] = []
    cfg["task"]["test_alphabets"] = list(held)
    return cfg


@dataclass(frozen=True)
class FoldResult:
    held: tuple[str, ...]
    error_rate: float
    items: int
    iterations: int
    seconds: float
    error_rate_tta: float | None = None  # the same model scored with test-time augmentation (metric learners)


@dataclass(frozen=True)
class FoldSummary:
    folds: list[FoldResult]

    @property
    def mean_error(self) -> float:
        return statistics.fmean(f.error_rate for f in self.folds)

    @property
    def mean_error_tta(self) -> float | None:
        rates = [f.error_rate_tta for f in self.folds]
        return statistics.fmean(rates) if rates and None not in rates else None

    @property
    def spread(self) -> float:
        """Standard deviation of the error over folds (0 with one fold)."""
        return statistics.stdev(f.error_rate for f in self.folds) if len(self.folds) > 1 else 0.0


def run_fold(config: dict[str, Any], held: tuple[str, ...], budget_s: float, runs: int = 20, seed: int = 0,
             device: str = "auto", root: str | None = None, tta: int = 0) -> FoldResult:
    """Meta-train ``config`` without the ``held`` alphabets for ``budget_s`` seconds, then score
    ``runs`` Lake-layout 20-way runs drawn from them; a metric learner is also scored with ``tta``
    (default :data:`TTA_COPIES`) test-time augmented copies averaged into each embedding."""
    from .run import train_run  # a run needs the registry; this module's constants do not

    cfg = fold_config(config, held)
    dev = resolve_device(device)
    learner, result, _ = train_run(cfg, None, budget_s=budget_s, device=str(dev), final_episodes=0)
    chars = load_omniglot_background(root, int(cfg["task"]["image_size"])).subset_alphabets(held)
    with tempfile.TemporaryDirectory(prefix="fold-runs-") as tmp:
        make_dev_runs(chars, read_background(root), tmp, runs=runs, seed=seed)
        runs_read = read_runs(Path(tmp))
        scored = score_runs(learner, runs_read, int(cfg["task"]["image_size"]), device=dev)
        with_tta = None
        if hasattr(learner, "tta"):  # test-time augmentation needs no retraining: score the same model with it
            own, learner.tta = learner.tta, tta or TTA_COPIES
            with_tta = score_runs(learner, runs_read, int(cfg["task"]["image_size"]), device=dev)["error_rate"]
            learner.tta = own
    return FoldResult(tuple(held), scored["error_rate"], scored["items"], result.iterations, round(result.seconds, 1), with_tta)


def validate_recipe(config: dict[str, Any], budget_s: float, folds: tuple[tuple[str, str], ...] = FOLDS, runs: int = 20,
                    device: str = "auto", on_fold: Callable[[FoldResult], None] | None = None) -> FoldSummary:
    """Every fold of one recipe, ``budget_s`` of meta-training each."""
    results = []
    for i, held in enumerate(folds):
        results.append(run_fold(config, held, budget_s, runs=runs, seed=i, device=device))
        if on_fold:
            on_fold(results[-1])
    return FoldSummary(results)
