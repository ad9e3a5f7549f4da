"""Progressive neural networks (Rusu et al., 2016): one column per task; earlier columns are
frozen, and each layer of a new column also reads the previous layer of every earlier column
through lateral adapters. Nothing learned before can be forgotten, by construction; the price is
a column per task, and the task's identity is needed to pick the column at test time.

>>> import torch
>>> net = ProgressiveNet(784, [100, 100], 10)
>>> net.add_column(); net.add_column()
>>> net(torch.zeros(3, 784), task=1).shape
torch.Size([3, 10])
"""

from __future__ import annotations

import torch
from torch import nn


class _Column(nn.Module):
    def __init__(self, inputs: int, hidden: list[int], outputs: int, earlier: int) -> None:
        super().__init__()
        sizes = [inputs, *hidden, outputs]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        # lateral adapters: into layer l (l >= 1) from layer l-1's activation of each earlier column
        self.laterals = nn.ModuleList(
            nn.ModuleList(nn.Linear(sizes[l], sizes[l + 1], bias=False) for _ in range(earlier)) for l in range(1, len(sizes) - 1))


class ProgressiveNet(nn.Module):
    def __init__(self, inputs: int, hidden: list[int], outputs: int) -> None:
        super().__init__()
        self.inputs, self.hidden, self.outputs = inputs, list(hidden), outputs
        self.columns = nn.ModuleList()

    def add_column(self) -> None:
        """A new trainable column for the next task; every earlier one is frozen."""
        for p in self.parameters():
            p.requires_grad_(False)
        self.columns.append(_Column(self.inputs, self.hidden, self.outputs, len(self.columns)))

    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        if not 0 <= task < len(self.columns):
            raise IndexError(f"no column for task {task}: the network has {len(self.columns)}")
        acts: list[torch.Tensor] = []  # per column, its current activation
        for c in range(task + 1):
            col = self.columns[c]
            acts.append(col.layers[0](x))
        for l in range(1, len(self.hidden) + 1):
            prev = [torch.relu(a) for a in acts]
            acts = []
            for c in range(task + 1):
                col = self.columns[c]
                out = col.layers[l](prev[c])
                for e in range(c):
                    out = out + col.laterals[l - 1][e](prev[e])
                acts.append(out)
        return acts[task]
