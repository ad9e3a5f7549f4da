"""Elastic weight consolidation (Kirkpatrick et al., 2017) and its online form (Schwarz et al., 2018).

After a task, :meth:`EWC.consolidate` estimates the diagonal Fisher information with labels
*sampled from the model's own predictive distribution* (as in the paper, not the true labels) and
anchors the penalty ``lam / 2 * sum F (theta - theta*)^2`` to the weights at that moment. Online EWC
keeps one running Fisher, ``F = gamma * F + F_new``, instead of one term per task.
For regression (``kind="regression"``) the model is read as a unit-variance Gaussian around its
output, and targets are sampled from it the same way. It wraps any training step: add
:meth:`penalty` to the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap


class EWC:
    def __init__(self, model: nn.Module, lam: float = 5.0, online: bool = True, gamma: float = 1.0,
                 fisher_samples: int = 256, seed: int = 0, kind: str = "classification") -> None:
        if kind not in ("classification", "regression"):
            raise ValueError(f"kind must be classification or regression, not {kind!r}")
        self.model, self.lam, self.online, self.gamma, self.kind = model, lam, online, gamma, kind
        self.fisher_samples = fisher_samples
        self._gen = torch.Generator().manual_seed(seed)
        self.terms: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []  # (fisher, anchor)

    def fisher(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Diagonal Fisher on up to ``fisher_samples`` inputs, targets sampled from the model; the
        per-input gradients are taken all at once (``torch.func``: ``vmap`` of ``grad``)."""
        trainable = {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad}
        fixed = {n: p.detach() for n, p in self.model.named_parameters() if not p.requires_grad}
        buffers = dict(self.model.named_buffers())
        idx = torch.randperm(len(x), generator=self._gen)[: self.fisher_samples]
        xs = x[idx]
        was_training = self.model.training
        self.model.eval()

        def forward(params, xi):
            return functional_call(self.model, ({**params, **fixed}, buffers), (xi.unsqueeze(0),))[0]

        try:
            with torch.no_grad():
                preds = vmap(forward, in_dims=(None, 0))(trainable, xs)
            if self.kind == "classification":
                targets = torch.stack([torch.multinomial(F.softmax(p, -1), 1, generator=self._gen)[0] for p in preds])
                loss = lambda params, xi, yi: F.cross_entropy(forward(params, xi).unsqueeze(0), yi.unsqueeze(0))
            else:
                targets = preds + torch.randn(preds.shape, generator=self._gen)
                loss = lambda params, xi, yi: 0.5 * ((forward(params, xi) - yi) ** 2).sum()
            grads = vmap(grad(loss), in_dims=(None, 0, 0), chunk_size=256)(trainable, xs, targets)
        finally:
            self.model.train(was_training)
        return {n: (g**2).mean(0) for n, g in grads.items()}

    def consolidate(self, x: torch.Tensor) -> None:
        """Call after training on a task, with (some of) that task's inputs."""
        fisher = self.fisher(x)
        anchor = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
        if self.online and self.terms:
            old, _ = self.terms[0]
            fisher = {n: self.gamma * old[n] + fisher[n] for n in fisher}
            self.terms = [(fisher, anchor)]
        elif self.online:
            self.terms = [(fisher, anchor)]
        else:
            self.terms.append((fisher, anchor))

    def penalty(self) -> torch.Tensor:
        total = torch.zeros(())
        params = dict(self.model.named_parameters())
        for fisher, anchor in self.terms:
            for n, f in fisher.items():
                total = total + (f * (params[n] - anchor[n]) ** 2).sum()
        return 0.5 * self.lam * total
