"""A mixture of meta-models as one :class:`MetaLearner`: several components of one config (each a
meta-initialisation or an embedding net), one per task regime, in the spirit of Jerfel et al.
(2019). It is what a worker serves when a model config carries ``"mixture"``: one version's
weights hold every component (``components.0.``, ``components.1.``, ...) and the router's
statistics, and ``adapt``/``predict`` route by themselves, so consumers do not change.

Routing. Regression tasks go to the component that fits their own support best after one
adaptation step on it. Task *encodings* do not do it: under the meta-trained sine
model the gradient codes' cosine to the pre-drift regime's mean code was 0.45 at the median for new
pre-drift tasks and 0.45 for drifted ones. A 1-shot classification support cannot be split
(half of it holds half of the classes), so classification routes by where the support's inputs
lie: the component whose training inputs' running mean is nearest, in units of their spread.
Training routes by the query loss (the labels are known there).

Spawning, recurrence, merging and the components' budget: ``regimes.py``.

Routing cost and accuracy. One step on the whole support, scored on the support. A held-out
score (one step on one half, scored on the other, both ways) routed worse where it matters: right
after a spawn, the young component took a third of the old regime's tasks, and the mixture lost
3.1 points on the old regime against its first component alone (mean of 8 seeds, range -6.3 to
+1.1; the forgetting guard then rejected every candidate), where the whole-support fit gains 0.4
(-1.6 to +1.9) and costs half the steps. It routes the new regime's tasks a little worse
(4.2 points lower there, still 25 above the pre-drift version). Training routes by the query loss:
each task is scored cheaply by every component (the training steps), and only the
``route_candidates`` best are adapted in full, so its cost does not grow with the components.

>>> import torch
>>> from learners import MAML, MLP
>>> torch.manual_seed(0) and None
>>> mix = MetaMixture(MAML(MLP(), "regression", inner_lr=0.01))
>>> sx = torch.randn(3, 10, 1); sy = torch.sin(sx)
>>> mix.route(sx, sy).tolist()
[0, 0, 0]
>>> sorted(mix.model.state_dict())[:2]  # one component: its own weights, as a plain model's
['0.bias', '0.weight']
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import nn

from ..base import MetaLearner, task_score
from ..tasks.base import TaskBatch
from . import regimes
from .mixture_module import MixtureModule
from .regimes import RegimeJudgement, Verdict

USE_DECAY = 0.995  # per meta-update: a component's use count halves in about 140 updates without tasks


class MetaMixture(MetaLearner):
    """Components of one learner config behind a router; ``make`` builds a component's learner
    around a network (default: a deep copy of the first learner with that network)."""

    name = "mixture"

    def __init__(self, first: MetaLearner, make: Callable[[nn.Module], MetaLearner] | None = None,
                 max_components: int = 4, spawn_ratio: float = 1.5, merge_tolerance: float = 0.02, min_tasks: int = 16,
                 route_candidates: int = 2) -> None:
        self.model = MixtureModule(first.model)
        self.kind, self.meta_lr, self.optimizer_name = first.kind, first.meta_lr, first.optimizer_name
        self._make = make or _copier(first)
        self._learners = [first]
        self.max_components, self.spawn_ratio = max_components, spawn_ratio
        self.merge_tolerance, self.min_tasks, self.route_candidates = merge_tolerance, min_tasks, route_candidates

    @property
    def components(self) -> list[MetaLearner]:
        """One learner per network in :attr:`model`, rebuilt for networks it has not seen (loaded)."""
        nets = list(self.model.components)
        if len(self._learners) != len(nets) or any(a.model is not b for a, b in zip(self._learners, nets)):
            known = {id(c.model): c for c in self._learners}
            self._learners = [known.get(id(n)) or self._make(n) for n in nets]
        return self._learners

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.components[0].optimizer

    @optimizer.setter
    def optimizer(self, fresh: torch.optim.Optimizer) -> None:
        """A fresh optimizer for the mixture is a fresh one of the same kind for each component."""
        for c in self.components:
            c.optimizer = type(fresh)(c.model.parameters(), **fresh.defaults)

    # --- routing ------------------------------------------------------------------------------
    def support_loss(self, component: MetaLearner, support_x: torch.Tensor, support_y: torch.Tensor,
                     steps: int | None = 1) -> torch.Tensor:
        """Per task: how well ``component`` fits the support after ``steps`` adaptation steps on it
        (``None``: the full adaptation): MSE, or 1 - accuracy."""
        adapted = component.adapt_tasks(support_x, support_y, steps)
        with torch.no_grad():
            score = task_score(component.kind, component.predict_tasks(adapted, support_x), support_y)
        return score if component.kind == "regression" else 1.0 - score

    def shortlisted(self, cheap: Callable[[MetaLearner], torch.Tensor],
                    full: Callable[[MetaLearner, torch.Tensor], torch.Tensor], tasks: int) -> torch.Tensor:
        """``[components, tasks]`` losses: ``full`` (a component, task indices) for each task's
        ``route_candidates`` best components by ``cheap``, infinite for the others; ``full`` for
        every component when there are no more than that."""
        comps = self.components
        everything = torch.arange(tasks)
        if len(comps) <= self.route_candidates:
            return torch.stack([full(c, everything) for c in comps])
        quick = torch.stack([cheap(c) for c in comps])
        top = quick.topk(self.route_candidates, dim=0, largest=False).indices
        losses = torch.full(quick.shape, float("inf"))
        for k, c in enumerate(comps):
            idx = torch.nonzero((top == k).any(0)).flatten()
            if len(idx):
                losses[k, idx] = full(c, idx)
        return losses

    def input_distance(self, support_x: torch.Tensor) -> torch.Tensor:
        """``[components, tasks]``: squared distance of each task's mean support input to each
        component's running input mean, per feature in units of its running variance."""
        mean = support_x.flatten(2).mean(1)
        mu, var = self.model.input_mean, self.model.input_var
        if mu.shape[1] != mean.shape[1]:  # no statistics yet
            return torch.zeros(len(self.model.components), len(mean))
        return (((mean[None] - mu[:, None]) ** 2) / (var[:, None] + 1e-2)).mean(-1)

    def route(self, support_x: torch.Tensor, support_y: torch.Tensor) -> torch.Tensor:
        """The component index for each task, from its support set alone."""
        if len(self.model.components) == 1:
            return torch.zeros(len(support_x), dtype=torch.long)
        if self.kind == "classification":
            return self.input_distance(support_x).argmin(0)
        return torch.stack([self.support_loss(c, support_x, support_y) for c in self.components]).argmin(0)

    def component_loss(self, c: MetaLearner, batch: TaskBatch, steps: int | None = None, relative: bool = False) -> torch.Tensor:
        """``[tasks]``: one component's post-adaptation query loss (MSE or 1 - accuracy); ``relative``:
        a regression task's MSE over its targets' variance (so a task's amplitude does not weigh)."""
        adapted = c.adapt_tasks(batch.support_x, batch.support_y, steps)
        with torch.no_grad():
            score = task_score(c.kind, c.predict_tasks(adapted, batch.query_x), batch.query_y)
        if c.kind != "regression":
            return 1.0 - score
        return score / batch.target_variance().clamp(min=1e-6) if relative else score

    def query_losses(self, batch: TaskBatch, training: bool = False, relative: bool = False) -> torch.Tensor:
        """``[components, tasks]``: each component's post-adaptation query loss (MSE or 1 - accuracy);
        ``training``: adapted with the inner loop's training steps, not the (often many more) test steps."""
        return torch.stack([self.component_loss(c, batch, getattr(c, "inner_steps", None) if training else None, relative)
                            for c in self.components])

    # --- MetaLearner ----------------------------------------------------------------------------
    def adapt_tasks(self, support_x: torch.Tensor, support_y: torch.Tensor, steps: int | None = None) -> Any:
        routes = self.route(support_x, support_y)
        self.last_routes = routes  # which component each task went to (the worker watches where the stream routes)
        parts = []
        for k, c in enumerate(self.components):
            idx = torch.nonzero(routes == k).flatten()
            if len(idx):
                parts.append((idx, c, c.adapt_tasks(support_x[idx], support_y[idx], steps)))
        return parts

    def predict_tasks(self, adapted: Any, query_x: torch.Tensor) -> torch.Tensor:
        out = None
        for idx, c, state in adapted:
            part = c.predict_tasks(state, query_x[idx])
            if out is None:
                out = part.new_zeros((len(query_x), *part.shape[1:]))
            out[idx] = part
        return out

    def predict_unadapted(self, query_x: torch.Tensor, ways: int) -> torch.Tensor:
        return self.components[0].predict_unadapted(query_x, ways)

    def meta_update(self, batch: TaskBatch) -> dict[str, float]:
        """Each task trains the component with the lowest query loss on it (and moves that
        component's input statistics); nothing else trains on it."""
        if len(self.model.components) > 1:
            routes = self.shortlisted(lambda c: self.component_loss(c, batch, getattr(c, "inner_steps", None)),
                                      lambda c, i: self.component_loss(c, batch.tasks(i)), batch.num_tasks).argmin(0)
        else:
            routes = torch.zeros(batch.num_tasks, dtype=torch.long)
        losses = []
        uses = self.model.uses
        if len(uses) != len(self.model.components):
            self.model.resize(len(self.model.components), self.model.input_mean.shape[1])
            uses = self.model.uses
        uses.mul_(USE_DECAY)
        for k, c in enumerate(self.components):
            idx = torch.nonzero(routes == k).flatten()
            if len(idx):
                part = batch.tasks(idx)
                losses.append(c.meta_update(part)["loss"] * len(idx))
                uses[k] += len(idx)
                if self.kind == "classification":
                    self.track_inputs(k, part)
        return {"loss": sum(losses) / batch.num_tasks}

    def track_inputs(self, k: int, batch: TaskBatch, momentum: float = 0.1) -> None:
        """Move component ``k``'s running input mean and variance toward ``batch``'s inputs."""
        x = batch.inputs().flatten(1).detach()
        m = self.model
        if m.input_mean.shape != (len(m.components), x.shape[1]):
            m.resize(len(m.components), x.shape[1])
        if not m.input_var[k].any():  # first sight: take the batch's statistics as they are
            m.input_mean[k], m.input_var[k] = x.mean(0), x.var(0)
        else:
            m.input_mean[k] = (1 - momentum) * m.input_mean[k] + momentum * x.mean(0)
            m.input_var[k] = (1 - momentum) * m.input_var[k] + momentum * x.var(0)

    def hyperparameters(self) -> dict[str, Any]:
        return {**self.components[0].hyperparameters(), "components": len(self.model.components)}

    # --- spawning and merging ---------------------------------------------------------------
    # --- regimes: spawning, recurrence, budget (regimes.py) -----------------------------------
    def judge(self, recent: TaskBatch, eras: dict[int, TaskBatch], left: int | None = None) -> RegimeJudgement:
        """:func:`regimes.judge`: whether ``recent`` is a regime ``eras`` already had."""
        return regimes.judge(self, recent, eras, left)

    def answer(self, recent: TaskBatch, eras: dict[int, TaskBatch], fit: Callable[[MetaLearner], None] | None = None,
               left: int | None = None) -> RegimeJudgement:
        """:func:`regimes.answer`: judge ``recent`` and spawn a component for a new regime."""
        return regimes.answer(self, recent, eras, fit, left)

    def maybe_spawn(self, recent: TaskBatch, known: TaskBatch | dict[int, TaskBatch],
                    fit: Callable[[MetaLearner], None] | None = None) -> bool:
        """Spawn a component for ``recent`` when no earlier era's component fits them (see
        :meth:`answer`); ``known`` one batch of earlier tasks (one era) or a batch per era."""
        return self.answer(recent, known if isinstance(known, dict) else {0: known}, fit).verdict is Verdict.NEW

    def merge_converged(self, batch: TaskBatch) -> int:
        """Drop every component whose tasks in ``batch`` an older component fits within
        ``merge_tolerance`` (relative loss) and that fits the older one's tasks as well; how many went."""
        merged = 0
        while len(self.model.components) > 1:
            losses = self.query_losses(batch)
            routes = losses.argmin(0)
            pair = next(((i, j) for j in range(1, len(losses)) for i in range(j) if self._converged(losses, routes, i, j)), None)
            if pair is None:
                return merged
            self.model.keep([k for k in range(len(losses)) if k != pair[1]])
            merged += 1
        return merged

    def _converged(self, losses: torch.Tensor, routes: torch.Tensor, i: int, j: int) -> bool:
        tol = 1 + self.merge_tolerance
        for a, b in ((i, j), (j, i)):
            mine = routes == b
            if mine.any() and not losses[a, mine].mean() <= tol * losses[b, mine].mean():
                return False
        return True

    def score(self, batch: TaskBatch) -> float:
        """Mean post-adaptation query score (MSE or accuracy) with each task routed by its support."""
        adapted = self.adapt_tasks(batch.support_x, batch.support_y)
        with torch.no_grad():
            return float(task_score(self.kind, self.predict_tasks(adapted, batch.query_x), batch.query_y).mean())


def _copier(first: MetaLearner) -> Callable[[nn.Module], MetaLearner]:
    template = copy.deepcopy(first)

    def make(net: nn.Module) -> MetaLearner:
        learner = copy.copy(template)
        learner.model = net
        learner.optimizer = type(template.optimizer)(net.parameters(), **template.optimizer.defaults)
        return learner

    return make
