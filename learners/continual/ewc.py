"""Elastic weight consolidation (Kirkpatrick et al., 2017) and its online form (Schwarz et al., 2018).

After a task, :meth:`EWC.consolidate` estimates the diagonal Fisher information with labels
*sampled from the model's own predictive distribution* (as in the paper, not the true labels) and
anchors the penalty ``lam / 2 * sum F (theta - theta*)^2`` to the weights at that moment. Online EWC
keeps one running Fisher, ``F = gamma * F + F_new``, instead of one term per task.
It wraps any classifier's training step: add :meth:`penalty` to the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EWC:
    def __init__(self, model: nn.Module, lam: float = 5.0, online: bool = True, gamma: float = 1.0,
                 fisher_samples: int = 256, seed: int = 0) -> None:
        self.model, self.lam, self.online, self.gamma = model, lam, online, gamma
        self.fisher_samples = fisher_samples
        self._gen = torch.Generator().manual_seed(seed)
        self.terms: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []  # (fisher, anchor)

    def fisher(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Diagonal Fisher on up to ``fisher_samples`` inputs, one sample at a time, labels sampled."""
        params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        out = {n: torch.zeros_like(p) for n, p in params.items()}
        idx = torch.randperm(len(x), generator=self._gen)[: self.fisher_samples]
        was_training = self.model.training
        self.model.eval()
        for i in idx:
            logits = self.model(x[i : i + 1])
            y = torch.multinomial(F.softmax(logits.detach(), -1), 1, generator=self._gen)[:, 0]
            grads = torch.autograd.grad(F.cross_entropy(logits, y), list(params.values()))
            for (n, _), g in zip(params.items(), grads):
                out[n] += g.detach() ** 2
        self.model.train(was_training)
        return {n: f / len(idx) for n, f in out.items()}

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
