"""Domain adaptation of a source classifier to a target domain with few or no labels, and the
choice among methods by a held-out score on the target's own few labels.

Methods (each returns an adapted copy; the source model is never changed):

- ``finetune``: every weight fine-tuned on the target's labels (the plain baseline);
- ``head``: only the last layer fine-tuned on them;
- ``adabn``: the normalisation statistics re-estimated on unlabelled target inputs (AdaBN,
  Li et al. 2016), then the head fine-tuned;
- ``adabn_finetune``: AdaBN's statistics, then every weight fine-tuned;
- ``coral``: the source embeddings' covariance aligned to the target's (CORAL, Sun et al. 2016)
  and a new head trained on the aligned source embeddings and the target's labels;
- ``mmd``: every weight fine-tuned on source and target labels while a kernel MMD penalty pulls
  the embeddings of source and unlabelled target inputs together (in the manner of DAN, Long et
  al. 2015), from AdaBN's statistics.

:func:`choose_method` picks one by k-fold cross-validation on the labelled target examples (each
method adapts on the other folds and is scored on the held-out one), so the choice never looks at
the target's test set. :func:`mmd` (a kernel two-sample distance) is the domain similarity that
predicts which source to transfer from.

>>> torch.manual_seed(0) and None
>>> a, b = torch.randn(200, 4), torch.randn(200, 4)
>>> bool(mmd(a, b) < mmd(a, b + 2.0))
True
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

METHODS = ("finetune", "head", "adabn", "adabn_finetune", "coral", "mmd")


class DigitNet(nn.Module):
    """An MLP with batch normalisation (what AdaBN re-estimates): ``body`` gives the embedding,
    ``head`` the class scores."""

    def __init__(self, inputs: int = 64, hidden: int = 128, embedding: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(inputs, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                  nn.Linear(hidden, embedding), nn.BatchNorm1d(embedding), nn.ReLU())
        self.head = nn.Linear(embedding, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def fit(model: nn.Module, params, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int, lr: float = 1e-3,
        batch: int = 128, weight_decay: float = 0.0) -> nn.Module:
    """Cross-entropy on ``(x, y)`` for ``epochs`` passes in seeded mini-batches (``params`` only)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            if len(idx) < 2:  # batch normalisation needs two rows
                continue
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    return model


def train_source(x: torch.Tensor, y: torch.Tensor, epochs: int = 15, seed: int = 0, network=DigitNet) -> nn.Module:
    """A source classifier (``network(inputs, classes=...)``, default :class:`DigitNet`) trained on ``(x, y)``."""
    torch.manual_seed(seed)
    model = network(x.shape[1], classes=int(y.max()) + 1)
    return fit(model, model.parameters(), x, y, epochs, seed)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(-1) == y).float().mean())


@dataclass
class Domains:
    """What adaptation may use: the source model and its training data, unlabelled target inputs."""

    model: DigitNet
    source_x: torch.Tensor
    source_y: torch.Tensor
    target_x: torch.Tensor  # unlabelled


HEAD_EPOCHS, ALL_EPOCHS = 100, 60  # full-batch passes over the few labels


def finetune(d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    m = copy.deepcopy(d.model)
    m.body.eval()  # the source's normalisation statistics stay: a few labels cannot re-estimate them
    return _fit_frozen_bn(m, m.parameters(), x, y, ALL_EPOCHS, seed, lr=1e-3)


def head(d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    m = copy.deepcopy(d.model)
    return _fit_frozen_bn(m, m.head.parameters(), x, y, HEAD_EPOCHS, seed, lr=1e-2)


@torch.no_grad()
def adabn_statistics(model: DigitNet, x: torch.Tensor) -> DigitNet:
    """Batch-norm running statistics recomputed from ``x`` alone (cumulative average)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):  # 1d and 2d alike
            m.reset_running_stats()
            m.momentum = None
    model.train()
    model.body(x)
    model.eval()
    return model


def adabn(d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    m = adabn_statistics(copy.deepcopy(d.model), d.target_x)
    return _fit_frozen_bn(m, m.head.parameters(), x, y, HEAD_EPOCHS, seed, lr=1e-2)


def adabn_finetune(d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    m = adabn_statistics(copy.deepcopy(d.model), d.target_x)
    return _fit_frozen_bn(m, m.parameters(), x, y, ALL_EPOCHS, seed, lr=1e-3)


def mmd_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Differentiable squared MMD, Gaussian kernels at five bandwidths around the median distance."""
    both = torch.cat([a, b])
    d2 = torch.cdist(both, both).pow(2)
    scale = d2.detach()[d2.detach() > 0].median().clamp(min=1e-8)
    k = sum(torch.exp(-d2 / (scale * f)) for f in (0.25, 0.5, 1.0, 2.0, 4.0))
    n = len(a)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


MMD_STEPS, MMD_BATCH, MMD_WEIGHT = 100, 128, 1.0


def mmd_steps(m: nn.Module, source_head: nn.Module, d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    """``MMD_STEPS`` steps on ``m`` in place: source labels through ``source_head`` (``m.head``
    when the label spaces are shared; trained along when it is another), target labels through
    ``m``, and the MMD penalty between source and unlabelled target embeddings."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam([*m.parameters(), *([] if source_head is m.head else source_head.parameters())], lr=1e-3)
    m.eval()  # batch normalisation keeps the target's statistics
    for _ in range(MMD_STEPS):
        s = torch.randint(len(d.source_x), (MMD_BATCH,), generator=gen)
        t = torch.randint(len(d.target_x), (MMD_BATCH,), generator=gen)
        zs, zt = m.body(d.source_x[s]), m.body(d.target_x[t])
        loss = nn.functional.cross_entropy(source_head(zs), d.source_y[s]) + MMD_WEIGHT * mmd_loss(zs, zt)
        if len(x):
            loss = loss + nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m


def mmd_align(d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    m = adabn_statistics(copy.deepcopy(d.model), d.target_x)
    return mmd_steps(m, m.head, d, x, y, seed)


def _sqrtm(c: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(c)
    vals = vals.clamp(min=1e-6) ** (-0.5 if inverse else 0.5)
    return vecs @ torch.diag(vals) @ vecs.T


def _cov(z: torch.Tensor) -> torch.Tensor:
    """Covariance with a small ridge (a thousandth of the mean variance), so it can be inverted."""
    zc = z - z.mean(0)
    c = zc.T @ zc / (len(z) - 1)
    return c + 1e-3 * c.diagonal().mean().clamp(min=1e-8) * torch.eye(z.shape[1])


@torch.no_grad()
def coral_transform(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Source rows whitened with their covariance and re-coloured with the target's (means too)."""
    return (source - source.mean(0)) @ _sqrtm(_cov(source), inverse=True) @ _sqrtm(_cov(target)) + target.mean(0)


def coral(d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    m = copy.deepcopy(d.model)
    with torch.no_grad():
        zs, zt, zl = m.body(d.source_x), m.body(d.target_x), m.body(x)
    aligned = coral_transform(zs, zt)
    torch.manual_seed(seed)
    m.head = nn.Linear(zs.shape[1], m.head.out_features)
    opt = torch.optim.Adam(m.head.parameters(), lr=1e-2)
    for _ in range(HEAD_EPOCHS):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m.head(aligned), d.source_y)
        if len(zl):  # the few target labels weigh as much as all the source rows together
            loss = loss + nn.functional.cross_entropy(m.head(zl), y)
        loss.backward()
        opt.step()
    m.eval()
    return m


def _fit_frozen_bn(m: DigitNet, params, x, y, epochs: int, seed: int, lr: float) -> nn.Module:
    """Full-batch steps with batch normalisation in inference mode (its statistics as they are)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(params, lr=lr)
    m.eval()
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    return m


ADAPT: dict[str, Callable[[Domains, torch.Tensor, torch.Tensor, int], nn.Module]] = {
    "finetune": finetune, "head": head, "adabn": adabn, "adabn_finetune": adabn_finetune, "coral": coral,
    "mmd": mmd_align}


def cross_validated(method: str, d: Domains, x: torch.Tensor, y: torch.Tensor, folds: int = 2, seed: int = 0,
                    adapt: dict | None = None) -> float:
    """Mean held-out accuracy of ``method`` (from ``adapt``, default :data:`ADAPT`) over ``folds``
    stratified folds of the labelled examples."""
    adapt = ADAPT if adapt is None else adapt
    gen = torch.Generator().manual_seed(seed)
    fold = torch.empty(len(y), dtype=torch.long)
    for c in torch.unique(y).tolist():
        members = torch.nonzero(y == c).flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        fold[members] = torch.arange(len(members)) % folds
    scores = []
    for k in range(folds):
        train, held = fold != k, fold == k
        scores.append(accuracy(adapt[method](d, x[train], y[train], seed), x[held], y[held]))
    return sum(scores) / folds


def choose_method(d: Domains, x: torch.Tensor, y: torch.Tensor, methods=METHODS, seed: int = 0,
                  adapt: dict | None = None) -> tuple[str, dict[str, float]]:
    """The method with the best cross-validated accuracy on the labelled target examples, and every score."""
    scores = {m: cross_validated(m, d, x, y, seed=seed, adapt=adapt) for m in methods}
    return max(scores, key=scores.get), scores


def mmd(a: torch.Tensor, b: torch.Tensor, max_rows: int = 1000, seed: int = 0) -> float:
    """Squared maximum mean discrepancy with a Gaussian kernel (bandwidth: the median pairwise
    distance): near zero for samples of one distribution, larger the further apart they are."""
    gen = torch.Generator().manual_seed(seed)
    a = a[torch.randperm(len(a), generator=gen)[:max_rows]]
    b = b[torch.randperm(len(b), generator=gen)[:max_rows]]
    both = torch.cat([a, b])
    d2 = torch.cdist(both, both).pow(2)
    bandwidth = d2[d2 > 0].median().clamp(min=1e-8)
    k = torch.exp(-d2 / bandwidth)
    n = len(a)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())
