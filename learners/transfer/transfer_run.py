"""One transfer, start to end, for ``metastream transfer SOURCE TARGET --shots K``: a classifier
trained on the source domain, adapted to the target with ``shots`` labelled examples per class by
every method of :mod:`learners.transfer.adaptation`, the method chosen by cross-validation on those
labels alone, and each scored on the target's unseen rows. A domain is a named digit domain
(:data:`NAMED`) or a table (CSV or Parquet) whose label column is named; a table's features are
standardised with the source's statistics (gaps become the source mean).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import ConfigError
from .adaptation import ADAPT, METHODS, DigitNet, Domains, accuracy, cross_validated, mmd, train_source
from .digit_domains import inverted, load_uci_digits, mnist_to_grid, rotated, split_by_class


@dataclass
class Domain:
    name: str
    x: torch.Tensor
    y: torch.Tensor
    classes: tuple = ()  # a table's class labels (y indexes them); named domains: the digits 0-9


def _mnist(shift: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    def load():
        from ..continual.mnist import load_mnist_split

        train_x, train_y, _, _ = load_mnist_split()
        return shift(mnist_to_grid(train_x)), train_y
    return load


NAMED: dict[str, Callable[[], tuple[torch.Tensor, torch.Tensor]]] = {
    "mnist": _mnist(lambda x: x), "mnist-rotated": _mnist(rotated), "mnist-inverted": _mnist(inverted), "uci-digits": load_uci_digits}


def load_domain(spec: str, label: str | None) -> Domain:
    """A named domain, or a table file with its label column ``label``."""
    if spec in NAMED:
        x, y = NAMED[spec]()
        return Domain(spec, x, y, tuple(range(10)))
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"{spec!r} is neither a named domain ({', '.join(NAMED)}) nor a CSV or Parquet file")
    if not label:
        raise ConfigError(f"{spec} is a table: name its label column with --label")
    from ..tabular.data import read_table

    table = read_table(path, label, classification=True)
    return Domain(path.name, torch.from_numpy(table.X.astype(np.float32)), torch.from_numpy(table.y.astype(np.int64)),
                  tuple(table.classes))


def _aligned(source: Domain, target: Domain) -> tuple[Domain, Domain]:
    """Target labels in the source's class ids; tables standardised with the source's statistics."""
    if source.x.shape[1] != target.x.shape[1]:
        raise ConfigError(f"the source has {source.x.shape[1]} features and the target {target.x.shape[1]}: "
                          "a transfer needs the same columns in both")
    missing = [c for c in target.classes if c not in source.classes]
    if missing:
        raise ConfigError(f"the target has classes the source never saw: {missing[:10]}")
    ids = torch.tensor([source.classes.index(c) for c in target.classes], dtype=torch.long)
    target = Domain(target.name, target.x, ids[target.y], source.classes)
    if any(d.name not in NAMED for d in (source, target)):
        mean = torch.nanmean(source.x, 0)
        std = torch.from_numpy(np.nanstd(source.x.numpy(), 0)).clamp(min=1e-6)
        source, target = (Domain(d.name, torch.nan_to_num((d.x - mean) / std), d.y, d.classes) for d in (source, target))
    return source, target


@dataclass
class TransferReport:
    source: str
    target: str
    shots: int
    source_accuracy: float  # on the source's own held-out rows
    domain_mmd: float
    chosen: str
    cross_validated: dict[str, float] = field(default_factory=dict)
    target_accuracy: dict[str, float] = field(default_factory=dict)  # on the target's unseen rows; "source only" too
    model: DigitNet | None = field(default=None, repr=False)  # the chosen method's adapted model

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "model"}


def run_transfer(source: Domain, target: Domain, shots: int, seed: int = 0, method: str | None = None,
                 epochs: int = 15, progress: Callable[[str], None] | None = None) -> TransferReport:
    """Train on ``source``, adapt to ``target`` with ``shots`` labels per class, report every method."""
    if method is not None and method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose from {', '.join(METHODS)} (or leave it out: chosen by cross-validation)")
    source, target = _aligned(source, target)
    counts = torch.bincount(target.y)
    if int(counts[counts > 0].min()) < shots + 2:
        raise ConfigError(f"--shots {shots}: a class of the target has only {int(counts[counts > 0].min())} rows; "
                          "lower --shots (each class needs shots + 2)")
    say = progress or (lambda _: None)
    held, train = split_by_class(source.y, max(1, int(len(source.y) * 0.1) // max(len(torch.unique(source.y)), 1)), seed)
    say(f"training on {source.name} ({len(train)} rows)")
    model = train_source(source.x[train], source.y[train], epochs, seed)
    labelled, rest = split_by_class(target.y, shots, seed)
    rest = rest[torch.randperm(len(rest), generator=torch.Generator().manual_seed(seed))]
    unlabelled, test = rest[: len(rest) // 2], rest[len(rest) // 2 :]
    d = Domains(model, source.x[train], source.y[train], target.x[unlabelled])
    xl, yl = target.x[labelled], target.y[labelled]
    report = TransferReport(source.name, target.name, shots, accuracy(model, source.x[held], source.y[held]),
                            mmd(target.x[unlabelled], source.x[train]), method or "")
    report.target_accuracy["source only"] = accuracy(model, target.x[test], target.y[test])
    adapted = {}
    for m in METHODS:
        say(f"adapting by {m}")
        report.cross_validated[m] = cross_validated(m, d, xl, yl, seed=seed)
        adapted[m] = ADAPT[m](d, xl, yl, seed)
        report.target_accuracy[m] = accuracy(adapted[m], target.x[test], target.y[test])
    report.chosen = method or max(report.cross_validated, key=report.cross_validated.get)
    report.model = adapted[report.chosen]
    return report
