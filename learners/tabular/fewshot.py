"""Few-shot tabular tasks: N-way K-shot episodes drawn from a real table (an agent's small labelled
set), for the product's meta-learners on an MLP and for a baseline that learns from the same K
examples alone. Two splits: held-out rows (every class seen in meta-training, new rows at test) and
held-out classes (test classes never seen in meta-training).

>>> import numpy as np
>>> gen = np.random.default_rng(0)
>>> X = gen.normal(size=(300, 4)).astype(np.float32); y = np.repeat(np.arange(6), 50)
>>> batch = TabularEpisodes(X, y, ways=3, shots=5, queries=2).sample(8, torch.Generator().manual_seed(0))
>>> tuple(batch.support_x.shape), tuple(batch.query_y.shape)
((8, 15, 4), (8, 6))
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..backbones import MLP
from ..base import MetaLearner
from ..errors import ConfigError
from ..maml import MAML, FirstOrderMAML
from ..matching import MatchingNet
from ..protonet import ProtoNet
from ..tasks.base import TaskBatch
from ..training import mean_ci95

FAMILIES = ("protonet", "matching", "maml", "fomaml")


class TabularEpisodes:
    """Episodes from rows ``X`` (already standardised) with class ids ``y``."""

    def __init__(self, X: np.ndarray, y: np.ndarray, ways: int, shots: int, queries: int) -> None:
        self.by_class = [torch.as_tensor(X[y == c], dtype=torch.float32) for c in np.unique(y)]
        self.by_class = [rows for rows in self.by_class if len(rows) >= shots + queries]
        if len(self.by_class) < ways:
            raise ConfigError(f"{ways}-way {shots}-shot episodes need {ways} classes with >= {shots + queries} rows; "
                              f"this table has {len(self.by_class)}")
        self.ways, self.shots, self.queries = ways, shots, queries

    def sample(self, tasks: int, gen: torch.Generator) -> TaskBatch:
        sx, sy, qx, qy = [], [], [], []
        for _ in range(tasks):
            classes = torch.randperm(len(self.by_class), generator=gen)[: self.ways].tolist()
            s, q = [], []
            for rows in (self.by_class[c] for c in classes):
                pick = rows[torch.randperm(len(rows), generator=gen)[: self.shots + self.queries]]
                s.append(pick[: self.shots])
                q.append(pick[self.shots :])
            sx.append(torch.cat(s))
            qx.append(torch.cat(q))
            sy.append(torch.arange(self.ways).repeat_interleave(self.shots))
            qy.append(torch.arange(self.ways).repeat_interleave(self.queries))
        return TaskBatch(torch.stack(sx), torch.stack(sy), torch.stack(qx), torch.stack(qy))


def build_fewshot_learner(family: str, inputs: int, ways: int, hidden: int = 64) -> MetaLearner:
    """A meta-learner of ``family`` on a two-hidden-layer MLP."""
    if family == "protonet":
        return ProtoNet(MLP(hidden, 2, inputs, hidden))
    if family == "matching":
        return MatchingNet(MLP(hidden, 2, inputs, hidden))
    if family in ("maml", "fomaml"):
        cls = MAML if family == "maml" else FirstOrderMAML
        return cls(MLP(hidden, 2, inputs, ways), "classification", inner_lr=0.1, inner_steps=5)
    raise ConfigError(f"no few-shot family {family!r}; choose from {', '.join(FAMILIES)}")


def accuracy(learner: MetaLearner, episodes: TabularEpisodes, count: int = 600, seed: int = 12345) -> tuple[float, float]:
    """Mean query accuracy after adaptation over ``count`` episodes, and its 95% half-width."""
    gen = torch.Generator().manual_seed(seed)
    accs = []
    for _ in range(count):
        t = episodes.sample(1, gen)
        pred = learner.predict(learner.adapt(t.support_x[0], t.support_y[0]), t.query_x[0]).argmax(-1)
        accs.append((pred == t.query_y[0]).float().mean())
    return mean_ci95(torch.stack(accs))


def baseline_accuracy(episodes: TabularEpisodes, count: int = 600, seed: int = 12345, steps: int = 100) -> tuple[float, float]:
    """Softmax regression trained on each episode's support set alone (Adam, ``steps`` full-batch
    steps, weight decay): what a learner that did not meta-learn makes of the same K examples."""
    gen = torch.Generator().manual_seed(seed)
    accs = []
    for i in range(count):
        t = episodes.sample(1, gen)
        torch.manual_seed(seed + i)
        model = nn.Linear(t.support_x.shape[-1], episodes.ways)
        opt = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=1e-3)
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(t.support_x[0]), t.support_y[0]).backward()
            opt.step()
        with torch.no_grad():
            accs.append((model(t.query_x[0]).argmax(-1) == t.query_y[0]).float().mean())
    return mean_ci95(torch.stack(accs))
