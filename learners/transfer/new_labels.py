"""Domain adaptation when the target's classes are not the source's: an Omniglot alphabet learnt
from others (new characters, new strokes). The source model's body is what transfers; its head
names source classes, so every method here starts from a fresh head over the target's classes.

- ``prototypes``: no training at all: each target class is the mean of its labelled examples'
  embeddings under the source body, and a row goes to the nearest (before adaptation);
- ``finetune``, ``head``, ``adabn``, ``adabn_finetune``: as in :mod:`.adaptation`, on the model
  with the fresh head;
- ``coral``: the target's embeddings whitened with their own covariance (from the unlabelled
  rows) and re-coloured with the source's, so the head sees them with the statistics the body
  was trained to give; the head is trained on the few labels through that fixed map;
- ``mmd``: every weight fine-tuned on the target's labels (fresh head) and the source's (its own
  head) while a kernel MMD penalty pulls the embeddings of source and unlabelled target together.

:func:`choose_new_label_method` picks one by cross-validation on the labelled target rows, as
:func:`.adaptation.choose_method` does for a shared label space.

>>> torch.manual_seed(0) and None
>>> from .adaptation import DigitNet
>>> net = DigitNet(inputs=6, hidden=8, embedding=4, classes=5).eval()
>>> x, y = torch.randn(12, 6), torch.arange(3).repeat(4)
>>> d = Domains(net, torch.randn(20, 6), torch.randint(5, (20,)), torch.randn(30, 6))
>>> NEW_LABEL_ADAPT["prototypes"](d, x, y, 0)(x).shape   # scores over the target's 3 classes
torch.Size([12, 3])
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from .adaptation import (HEAD_EPOCHS, Domains, _cov, _fit_frozen_bn, _sqrtm, adabn, adabn_finetune, adabn_statistics,
                         choose_method, finetune, head, mmd_steps)


class GlyphNet(nn.Module):
    """Two convolution blocks with batch normalisation on square images given flat (``inputs``
    pixels), then an embedding: the body an alphabet's strokes transfer through (an MLP on pixels
    hardly does)."""

    def __init__(self, inputs: int = 196, channels: int = 32, embedding: int = 64, classes: int = 10) -> None:
        super().__init__()
        side = int(round(inputs ** 0.5))
        block = lambda i, o: [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]  # noqa: E731
        self.body = nn.Sequential(nn.Unflatten(1, (1, side, side)), *block(1, channels), *block(channels, channels), nn.Flatten(),
                                  nn.Linear(channels * (side // 4) ** 2, embedding), nn.BatchNorm1d(embedding), nn.ReLU())
        self.head = nn.Linear(embedding, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def relabelled(d: Domains, classes: int, seed: int) -> Domains:
    """``d`` with a copy of the source model whose head is fresh and has ``classes`` outputs."""
    m = copy.deepcopy(d.model)
    torch.manual_seed(seed)
    m.head = nn.Linear(m.head.in_features, classes)
    return Domains(m, d.source_x, d.source_y, d.target_x)


class Prototypes(nn.Module):
    """Negative squared distance to each class's mean embedding: a classifier with no training."""

    def __init__(self, body: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__()
        self.body = body.eval()
        with torch.no_grad():
            z = self.body(x)
        self.register_buffer("centres", torch.stack([z[y == c].mean(0) for c in range(int(y.max()) + 1)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(self.body(x), self.centres).pow(2)


class Recoloured(nn.Module):
    """``head(A (body(x) - mu_t) + mu_s)``: target embeddings given the source's statistics."""

    def __init__(self, body: nn.Module, source: torch.Tensor, target: torch.Tensor, classes: int) -> None:
        super().__init__()
        self.body = body.eval()
        self.register_buffer("map", _sqrtm(_cov(target), inverse=True) @ _sqrtm(_cov(source)))
        self.register_buffer("target_mean", target.mean(0))
        self.register_buffer("source_mean", source.mean(0))
        self.head = nn.Linear(source.shape[1], classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return (self.body(x) - self.target_mean) @ self.map + self.source_mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def _classes(y: torch.Tensor) -> int:
    return int(y.max()) + 1


def prototypes(d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    return Prototypes(copy.deepcopy(d.model.body), x, y)


def coral(d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    body = copy.deepcopy(d.model.body).eval()
    with torch.no_grad():
        zs, zt = body(d.source_x), body(d.target_x)
    torch.manual_seed(seed)
    m = Recoloured(body, zs, zt, _classes(y))
    with torch.no_grad():
        z = m.embed(x)
    opt = torch.optim.Adam(m.head.parameters(), lr=1e-2)
    for _ in range(HEAD_EPOCHS):
        opt.zero_grad()
        nn.functional.cross_entropy(m.head(z), y).backward()
        opt.step()
    return m.eval()


def mmd_align(d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    m = adabn_statistics(relabelled(d, _classes(y), seed).model, d.target_x)
    mmd_steps(m, copy.deepcopy(d.model.head), d, x, y, seed)
    # the head has seen the labels only alongside the body's moves: a last fit of it alone
    return _fit_frozen_bn(m, m.head.parameters(), x, y, HEAD_EPOCHS, seed, lr=1e-2)


def _on_fresh_head(method: Callable[[Domains, torch.Tensor, torch.Tensor, int], nn.Module]):
    def adapt(d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
        return method(relabelled(d, _classes(y), seed), x, y, seed)
    return adapt


NEW_LABEL_ADAPT: dict[str, Callable[[Domains, torch.Tensor, torch.Tensor, int], nn.Module]] = {
    "prototypes": prototypes, "finetune": _on_fresh_head(finetune), "head": _on_fresh_head(head),
    "adabn": _on_fresh_head(adabn), "adabn_finetune": _on_fresh_head(adabn_finetune), "coral": coral, "mmd": mmd_align}
NEW_LABEL_METHODS = tuple(NEW_LABEL_ADAPT)


def choose_new_label_method(d: Domains, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> tuple[str, dict[str, float]]:
    """The method with the best cross-validated accuracy on the labelled target rows, and every score."""
    return choose_method(d, x, y, NEW_LABEL_METHODS, seed, adapt=NEW_LABEL_ADAPT)


__all__ = ["NEW_LABEL_ADAPT", "NEW_LABEL_METHODS", "choose_new_label_method", "relabelled"]
