"""Knowledge distillation, twice: *learning without forgetting* (Li and Hoiem, 2017), where the
previous version of the model is the teacher of the next on the new task's inputs, and
*compression*, where a trained teacher teaches a smaller student (Hinton et al., 2015).

>>> import torch
>>> logits = torch.tensor([[2.0, 0.0, -1.0]])
>>> float(distillation_loss(logits, logits, temperature=2.0)) == 0.0
True
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """KL(teacher || student) of the softened distributions, scaled by T^2 so its gradients keep
    the size of a cross-entropy's whatever the temperature."""
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, -1), F.log_softmax(teacher_logits.detach() / t, -1),
                    log_target=True, reduction="batchmean") * t * t


class LwF:
    """Keeps a frozen copy of the model as it was after the last task; :meth:`penalty` is the
    distillation term that keeps the new model's answers on the new inputs close to it.
    ``classes`` limits the term to the logits of classes seen before (class-incremental)."""

    def __init__(self, weight: float = 1.0, temperature: float = 2.0) -> None:
        self.weight, self.temperature = weight, temperature
        self.teacher: nn.Module | None = None
        self.classes: list[int] | None = None

    def consolidate(self, model: nn.Module, classes: list[int] | None = None) -> None:
        self.teacher = copy.deepcopy(model).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.classes = classes

    def penalty(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if self.teacher is None:
            return torch.zeros(())
        with torch.no_grad():
            target = self.teacher(x)
        if self.classes is not None:
            target, logits = target[:, self.classes], logits[:, self.classes]
        return self.weight * distillation_loss(logits, target, self.temperature)


def compress(teacher: nn.Module, student: nn.Module, x: torch.Tensor, *, epochs: int = 20, batch: int = 64,
             lr: float = 1e-3, temperature: float = 2.0, seed: int = 0) -> nn.Module:
    """Train ``student`` to match ``teacher``'s softened outputs on inputs ``x`` (no labels needed)."""
    gen = torch.Generator().manual_seed(seed)
    teacher.eval()
    with torch.no_grad():
        targets = teacher(x)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    student.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            loss = distillation_loss(student(x[idx]), targets[idx], temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return student.eval()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
