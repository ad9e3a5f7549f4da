"""Differentiable architecture search (DARTS, Liu et al. 2019), first order, with the few-shot
objective: a supernet whose every cell edge is a softmax-weighted mix of all candidate operations
is trained as a Prototypical network's embedding. Weight steps use episodes from one half of the
training alphabets, architecture steps episodes from the other half (the bilevel split).

DARTS is known to collapse into skip connections (they make the supernet easy to train, not the
derived cell good). Two guards from P-DARTS (Chen et al. 2019): dropout on the skip operation's
output during the search, and at most ``max_skip`` skip edges in the derived cell; ``none`` is
never derived. The derived cell keeps each node's two strongest incoming edges, each with its
strongest operation, as DARTS does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..cells import OPS, make_op, norm

PARAMETRIC = ("conv3", "conv5", "sep3", "dil3")
from ..tasks.episodes import Episodes


class MixedOp(nn.Module):
    def __init__(self, channels: int, skip_dropout: float) -> None:
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, channels, running=True) for name in OPS)
        self.skip_dropout = skip_dropout

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out = 0.0
        for name, op, w in zip(OPS, self.ops, weights):
            y = op(x)
            if name == "skip" and self.training and self.skip_dropout > 0:
                y = F.dropout(y, self.skip_dropout)
            out = out + w * y
        return out


class SearchCell(nn.Module):
    def __init__(self, channels: int, nodes: int, skip_dropout: float) -> None:
        super().__init__()
        self.nodes = nodes
        self.edges = nn.ModuleList(MixedOp(channels, skip_dropout) for j in range(nodes) for _ in range(j + 1))

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states, k = [x], 0
        for j in range(self.nodes):
            total = 0.0
            for src in range(j + 1):
                total = total + self.edges[k](states[src], weights[k])
                k += 1
            states.append(total)
        return torch.stack(states[1:]).mean(0)


class SuperNet(nn.Module):
    """The search-time network: every cell shares one set of architecture weights ``alphas``."""

    def __init__(self, channels: int = 16, cells: int = 4, nodes: int = 3, skip_dropout: float = 0.3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1, bias=False), norm(channels, True))
        self.cells = nn.ModuleList(SearchCell(channels, nodes, skip_dropout) for _ in range(cells))
        self.alphas = nn.Parameter(1e-3 * torch.randn(nodes * (nodes + 1) // 2, len(OPS)))
        self.nodes = nodes

    def weights(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n != "alphas"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.alphas, dim=-1)
        x = self.stem(x)
        for cell in self.cells:
            x = F.max_pool2d(torch.relu(cell(x, w)), 2)
        return x.flatten(1)


def derive(alphas: torch.Tensor, nodes: int, max_skip: int = 1) -> list[list[list]]:
    """The discrete cell: per node its two strongest incoming edges (by their best operation other
    than ``none``), at most ``max_skip`` of them ``skip`` (weaker skips take their best other op),
    and on every node at least one operation with weights (else its strongest edge takes its best
    such operation)."""
    probs = torch.softmax(alphas.detach(), dim=-1)
    none, skip = OPS.index("none"), OPS.index("skip")
    chosen: list[list[list]] = []
    candidates = []  # (strength, node, src, op) of kept skip edges
    k = 0
    for j in range(nodes):
        edges = []
        for src in range(j + 1):
            p = probs[k].clone()
            p[none] = -1.0
            edges.append((float(p.max()), src, int(p.argmax()), k))
            k += 1
        kept = sorted(edges, key=lambda e: -e[0])[: min(2, j + 1)]
        chosen.append([[src, OPS[op]] for _, src, op, _ in kept])
        candidates += [(strength, j, src, kk) for strength, src, op, kk in kept if op == skip]
    for _, j, src, kk in sorted(candidates, key=lambda c: -c[0])[max_skip:]:
        p = probs[kk].clone()
        p[none] = p[skip] = -1.0
        for edge in chosen[j]:
            if edge[0] == src and edge[1] == "skip":
                edge[1] = OPS[int(p.argmax())]
    # the same collapse with pooling: every node keeps at least one operation that learns
    learned = [i for i, name in enumerate(OPS) if name in PARAMETRIC]
    for j, node in enumerate(chosen):
        if not any(op in PARAMETRIC for _, op in node):
            first = j * (j + 1) // 2
            src, op = max(((e[0], max(learned, key=lambda i: float(probs[first + e[0], i]))) for e in node),
                          key=lambda pair: float(probs[first + pair[0], pair[1]]))
            for edge in node:
                if edge[0] == src:
                    edge[1] = OPS[op]
    return chosen


@dataclass
class DartsResult:
    edges: list[list[list]]
    alphas: list[list[float]]
    iterations: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def proto_loss(net: nn.Module, batch) -> torch.Tensor:
    """The Prototypical-network loss of one episode batch through ``net``."""
    t, s = batch.support_x.shape[:2]
    x = torch.cat([batch.support_x, batch.query_x], 1)
    z = net(x.flatten(0, 1)).view(t, x.shape[1], -1)
    onehot = F.one_hot(batch.support_y).float()
    protos = onehot.transpose(1, 2) @ z[:, :s] / onehot.sum(1).unsqueeze(-1)
    logits = -torch.cdist(z[:, s:], protos).pow(2)
    return F.cross_entropy(logits.flatten(0, 1), batch.query_y.flatten())


def darts_search(weight_tasks: Episodes, arch_tasks: Episodes, *, channels: int = 16, cells: int = 4, nodes: int = 3,
                 iterations: int | None = None, budget_s: float | None = None, seed: int = 0, skip_dropout: float = 0.3,
                 max_skip: int = 1, lr: float = 3e-3, arch_lr: float = 3e-3,
                 on_log: Callable[[dict[str, Any]], None] | None = None) -> DartsResult:
    """Alternate a weight step (Adam ``lr``) on ``weight_tasks`` and an architecture step (Adam
    ``arch_lr``, as DARTS) on ``arch_tasks`` until ``iterations`` or ``budget_s``."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = SuperNet(channels, cells, nodes, skip_dropout)
    w_opt = torch.optim.Adam(net.weights(), lr=lr)
    a_opt = torch.optim.Adam([net.alphas], lr=arch_lr, betas=(0.5, 0.999), weight_decay=1e-3)
    start, i, history = time.perf_counter(), 0, []
    net.train()
    while (iterations is None or i < iterations) and (budget_s is None or time.perf_counter() - start < budget_s):
        loss = proto_loss(net, weight_tasks.sample(1, gen))
        w_opt.zero_grad(set_to_none=True)
        loss.backward()
        w_opt.step()
        arch = proto_loss(net, arch_tasks.sample(1, gen))
        a_opt.zero_grad(set_to_none=True)
        arch.backward()
        a_opt.step()
        i += 1
        if i % 20 == 0:
            record = {"iteration": i, "seconds": round(time.perf_counter() - start, 2), "loss": float(loss), "arch_loss": float(arch),
                      "skip_share": float(torch.softmax(net.alphas, -1)[:, OPS.index("skip")].mean())}
            history.append(record)
            if on_log:
                on_log(record)
    return DartsResult(derive(net.alphas, nodes, max_skip), net.alphas.detach().tolist(), i, time.perf_counter() - start, history)
