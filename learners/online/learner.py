"""Incremental meta-learning from a replay buffer, for the stream workers (pure PyTorch, no Kafka).

The champion is the published model. A buffered task is split into support and query the way its
kind needs (``tasks/split.py``: per class for classification). ``fewshot_losses`` scores incoming
tasks with the champion before it learns from them (the drift signal). ``propose`` copies the champion, runs a few meta-updates on
tasks drawn from the buffer (with replay, and distillation toward the champion on old tasks) and
scores candidate and champion on held-out buffered tasks after the same few-shot adaptation, which
is what the promotion gate looks at. ``guarded.py`` wraps it with the forgetting guard.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ..backbones import IMAGE_BACKBONES
from ..base import MetaLearner, task_score
from ..continual.ewc import EWC
from ..registry import build_learner, is_metric, task_kind
from ..tabular.importance import task_permutation_importance
from ..tabular.standardiser import has_standardiser, refit_standardisers, set_importance
from ..tasks.base import TaskBatch
from ..tasks.split import points_needed, split_task
from ..transfer.mixture import MetaMixture
from .heldout import held_out_count, heldout_split, passes_gate
from .guard import ProbeSet
from .mixture_update import MixtureChange, reshape_mixture
from .replay import TaskReplayBuffer


@dataclass
class Proposal:
    learner: MetaLearner
    candidate_score: float
    champion_score: float
    iterations: int
    train_tasks: int
    heldout_tasks: int
    held_batch: TaskBatch | None = None  # the held-out tasks as split for scoring (a champion of another config is scored on them)
    mixture: MixtureChange | None = None  # what the update did to a mixture's components
    candidate_loss: float = float("nan")  # mean per-task loss on the held-out tasks (``task_losses``): what the gate judges
    champion_loss: float = float("nan")


class OnlineMetaLearner:
    def __init__(self, config: dict[str, Any], shots: int | None = None, seed: int = 0) -> None:
        self.config = config
        self.kind = task_kind(config)
        self.shots = shots or int(config["task"]["shots"])
        self.ways = int(config["task"].get("ways", 1)) if self.kind == "classification" else 1
        backbone = config.get("backbone", {})
        size = int(backbone.get("image_size", config["task"].get("image_size", 28)))
        self.image_shape = (1, size, size) if backbone.get("name") in IMAGE_BACKBONES else None  # flat features -> images
        torch.manual_seed(seed)
        self.champion = build_learner(config)
        self.champion.model.eval()
        self._gen = torch.Generator().manual_seed(seed)

    # --- weights ----------------------------------------------------------------------------
    def weights_bytes(self, learner: MetaLearner | None = None) -> bytes:
        state = {k: v.detach().cpu().contiguous() for k, v in (learner or self.champion).model.state_dict().items()}
        return save_safetensors(state)

    def load_weights(self, data: bytes) -> None:
        self.champion.model.load_state_dict(load_safetensors(data))

    # --- tasks from the buffer --------------------------------------------------------------
    @property
    def points_per_task(self) -> int:
        """Points a task needs before it can be split into support and query (and scored)."""
        return points_needed(self.shots, self.kind, self.ways)

    def task_batch(self, buffer: TaskReplayBuffer, task_ids: list[str], generator: torch.Generator | None = None) -> TaskBatch | None:
        """Split each task's buffered points into support and query: ``shots`` points each for
        regression, ``shots`` per class of ``ways`` classes each for classification (drawn from
        ``generator``, default the learner's own)."""
        gen = self._gen if generator is None else generator
        self.last_batch_ids: list[str] = []  # the tasks the batch holds, in order (some may be skipped)
        if self.kind == "classification":
            rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))
            splits = [(t, split_task(*buffer.arrays(t), self.shots, self.kind, self.ways, rng)) for t in task_ids if buffer.has(t)]
            self.last_batch_ids = [t for t, sp in splits if sp is not None]
            return self.stack_splits([sp for _, sp in splits if sp is not None])
        need = 2 * self.shots
        xs, ys = [], []
        for tid in task_ids:
            if not buffer.has(tid):  # evicted meanwhile
                continue
            x, y = buffer.arrays(tid)
            if len(x) < need:
                continue
            self.last_batch_ids.append(tid)
            idx = torch.randperm(len(x), generator=gen)[:need].numpy()
            xs.append(x[idx])
            ys.append(y[idx])
        if not xs:
            return None
        x = torch.from_numpy(np.stack(xs))
        y = torch.from_numpy(np.stack(ys))
        k = self.shots
        return TaskBatch(x[:, :k], y[:, :k], x[:, k:], y[:, k:])

    def stack_splits(self, splits: list[tuple[np.ndarray, ...]]) -> TaskBatch | None:
        """Per-task ``split_task`` results as one batch, features shaped as the backbone takes them."""
        if not splits:
            return None
        sx, sy, qx, qy = (torch.from_numpy(np.stack(part)) for part in zip(*splits))
        if self.image_shape is not None:
            sx, qx = (t.reshape(*t.shape[:2], *self.image_shape) for t in (sx, qx))
        return TaskBatch(sx, sy, qx, qy)

    def probe_batches(self, probes: ProbeSet) -> dict[int, TaskBatch]:
        """The forgetting guard's probe tasks, one batch per era, split the same way every time."""
        out = {}
        for era, tasks in probes.tasks.items():
            batch = self.stack_splits([sp for sp in (split_task(x, y, self.shots, self.kind, self.ways) for x, y in tasks)
                                       if sp is not None])
            if batch is not None:
                out[era] = batch
        return out

    def fewshot_losses_by_task(self, buffer: TaskReplayBuffer, task_ids: list[str], steps: int = 3) -> dict[str, tuple[float, float]]:
        """``{task id: (the drift signal, the plain loss)}`` for the tasks it could score: the plain
        loss (MSE, not relative to the task's spread; or cross-entropy) shows a task whose targets
        are noise, which the relative one hides."""
        losses = self.fewshot_losses(buffer, task_ids, steps)
        return dict(zip(self.last_batch_ids, zip(losses.tolist(), self.last_plain_losses.tolist())))

    def fewshot_losses(self, buffer: TaskReplayBuffer, task_ids: list[str], steps: int = 3) -> np.ndarray:
        """Per-task query loss of the champion after ``steps`` adaptation steps on ``shots`` support
        points: the prequential signal that shows a change in the task distribution even when the
        unadapted loss does not (for sine, a change of frequency leaves the mean loss as it was).
        For regression it is the MSE relative to the task's variance (clipped at 4)."""
        batch = self.task_batch(buffer, task_ids)
        self.last_plain_losses = np.zeros(0, "f4")
        self.last_batch = batch  # shadow candidates are scored on the very same split
        if batch is None:
            return np.zeros(0, "f4")
        adapted = self.champion.adapt_tasks(batch.support_x, batch.support_y, steps)
        with torch.no_grad():
            out = self.champion.predict_tasks(adapted, batch.query_x)
            if self.kind == "regression":
                # relative to the task's own spread: a sine's MSE scales with its amplitude squared,
                # and that heavy tail would hide a change from the detector for many tasks
                mse = ((out - batch.query_y) ** 2).flatten(1).mean(1)
                self.last_plain_losses = mse.numpy()
                spread = batch.target_variance()
                return (mse / (spread + 0.05)).clamp(max=4.0).numpy()
            ce = torch.nn.functional.cross_entropy(out.flatten(0, 1), batch.query_y.flatten(), reduction="none").view(
                out.shape[0], -1).mean(1).numpy()
            self.last_plain_losses = ce
            return ce

    def task_rewards(self, batch: TaskBatch, steps: int | None = None) -> np.ndarray:
        """Per-task prequential reward of the champion on ``batch``, in [0, 1], higher is better:
        ``1 - task_losses``. What shadow candidates are compared by (``shadows.py``)."""
        return 1.0 - self.task_losses(self.task_scores(self.champion, batch, steps), batch)

    def task_scores(self, learner: MetaLearner, batch: TaskBatch, steps: int | None = None) -> torch.Tensor:
        """Per-task post-adaptation query score (MSE or accuracy) of ``learner`` on ``batch``."""
        adapted = learner.adapt_tasks(batch.support_x, batch.support_y, steps)
        with torch.no_grad():
            return task_score(self.kind, learner.predict_tasks(adapted, batch.query_x), batch.query_y)

    def task_losses(self, scores: torch.Tensor, batch: TaskBatch) -> np.ndarray:
        """Per-task loss in [0, 1] from ``task_scores``: the error rate, or for regression
        ``min(relative MSE, 4) / 4`` (the MSE relative to the task's spread, as the drift signal
        takes it). A sine's raw MSE grows with its amplitude squared, so the mean raw MSE of a few
        tasks is one or two large-amplitude tasks' (on 16 held-out tasks its difference between two
        versions did not even correlate with the difference on 400 fresh tasks; this one did, 0.83)."""
        if self.kind == "regression":
            return ((scores / (batch.target_variance() + 0.05)).clamp(max=4.0) / 4.0).numpy().astype("f8")
        return (1.0 - scores).numpy().astype("f8")

    def score(self, learner: MetaLearner, batch: TaskBatch) -> float:
        """Mean post-adaptation query score (MSE or accuracy) on the given tasks."""
        return float(self.task_scores(learner, batch).mean())

    def passes_gate(self, proposal: "Proposal", margin: float) -> bool:
        """The gate a candidate passes before it is published (``heldout.passes_gate``)."""
        return passes_gate(self.kind, proposal, margin)

    def judged(self, proposal: "Proposal", learner: MetaLearner, champion: MetaLearner, batch: TaskBatch) -> "Proposal":
        """``proposal`` with the scores and per-task losses of ``learner`` (the candidate) and
        ``champion`` on the held-out ``batch``."""
        cand, champ = self.task_scores(learner, batch), self.task_scores(champion, batch)
        proposal.candidate_score, proposal.champion_score = float(cand.mean()), float(champ.mean())
        proposal.candidate_loss = float(self.task_losses(cand, batch).mean())
        proposal.champion_loss = float(self.task_losses(champ, batch).mean())
        return proposal

    def propose(self, buffer: TaskReplayBuffer, iterations: int, meta_batch: int, heldout: int = 16,
                recent: int = 64, recent_share: float = 0.5, should_stop: Callable[[], bool] | None = None,
                distill: float = 0.0, distill_tasks: list[str] | None = None, ewc: float = 0.0,
                era: int | None = None, known: TaskBatch | None = None) -> Proposal | None:
        """Meta-update a copy of the champion on buffered tasks; score both on held-out tasks.

        Held-out tasks (``held_out_count``) are every other one of the ``2 * heldout`` newest (they show the current
        distribution, and the newest tasks are not all taken from training: right after a drift the
        few post-drift tasks must serve both). Each meta-batch draws ``recent_share`` of its tasks
        from the ``recent`` newest training tasks and the rest from all of them, old ones included:
        that is the replay that keeps old tasks in mind. With ``distill`` > 0, each iteration also
        takes a step that keeps the candidate's outputs on ``distill_tasks`` (the old ones; default
        all training tasks) close to the champion's, its parent: learning without forgetting, in
        function space. With ``ewc`` > 0 that step also carries an EWC penalty (Fisher of the parent
        on those tasks' inputs, anchored at the parent): in weight space. ``should_stop`` is polled
        every iteration: when it says so the update is abandoned and ``None`` is returned.
        """
        ready = buffer.tasks_with(self.points_per_task)
        heldout = held_out_count(len(ready), heldout)
        if len(ready) < heldout + 2:
            return None
        held, train = heldout_split(ready, heldout)
        held_batch = self.task_batch(buffer, held)
        if held_batch is None:  # e.g. classification tasks with enough rows but too few per class
            return None
        latest = train[-recent:]
        candidate = copy.deepcopy(self.champion)
        candidate.optimizer = type(self.champion.optimizer)(candidate.model.parameters(), **self.champion.optimizer.defaults)
        change = None
        if isinstance(candidate, MetaMixture):  # kept by routing, not by a pull toward the parent (mixture_update.py)
            change = reshape_mixture(self, candidate, buffer, train, known, era, iterations, meta_batch, self._gen)
            if len(candidate.components) > 1:  # one component learns as one model does, guarded the same way
                distill, ewc = 0.0, 0.0
        if has_standardiser(candidate.model):  # tabular: the statistics follow the buffer's rows
            refit_standardisers(candidate.model, np.concatenate([buffer.arrays(t)[0] for t in train]))
        candidate.model.train()
        n_recent = min(max(round(meta_batch * recent_share), 1), meta_batch)
        parent = self.champion.model
        keep = set(distill_tasks) if distill_tasks is not None else None
        anchors = [t for t in train if keep is None or t in keep]
        distill_opt = torch.optim.Adam(candidate.model.parameters(), lr=float(self.config["learner"].get("meta_lr", 1e-3)))
        consolidation = self._ewc(candidate.model, buffer, anchors, ewc) if ewc > 0 and anchors else None
        for _ in range(iterations):
            if should_stop is not None and should_stop():
                return None
            pick = [latest[i] for i in torch.randint(len(latest), (n_recent,), generator=self._gen).tolist()]
            pick += [train[i] for i in torch.randint(len(train), (meta_batch - n_recent,), generator=self._gen).tolist()]
            batch = self.task_batch(buffer, pick)
            if batch is not None:
                candidate.meta_update(batch)
            if (distill > 0 or consolidation is not None) and anchors:
                self._keep_step(candidate.model, parent, buffer, anchors, meta_batch, distill, consolidation, distill_opt)
        candidate.model.eval()
        if has_standardiser(candidate.model):  # what each column is worth, for the next refit and 'models show'
            seed = int(torch.randint(2**31, (1,), generator=self._gen))
            set_importance(candidate.model, task_permutation_importance(candidate, held_batch, self.kind, seed))
        proposal = Proposal(candidate, 0.0, 0.0, iterations, len(train), len(held), held_batch, change)
        return self.judged(proposal, candidate, self.champion, held_batch)

    def _keep_step(self, model: torch.nn.Module, parent: torch.nn.Module, buffer: TaskReplayBuffer, anchors: list[str],
                   meta_batch: int, distill: float, consolidation: EWC | None, opt: torch.optim.Optimizer) -> None:
        """One step that keeps the candidate near its parent: its outputs on ``meta_batch`` old
        tasks close to the parent's (distillation), and its weights by the EWC penalty."""
        loss = consolidation.penalty() if consolidation is not None else torch.zeros(())
        old = [anchors[i] for i in torch.randint(len(anchors), (meta_batch,), generator=self._gen).tolist()]
        replayed = self.task_batch(buffer, old) if distill > 0 else None
        if replayed is not None:
            x = replayed.inputs()
            with torch.no_grad():
                target = parent(x)
            loss = loss + distill * torch.nn.functional.mse_loss(model(x), target)
        if loss.requires_grad:
            opt.zero_grad()
            loss.backward()
            opt.step()

    def _ewc(self, model: torch.nn.Module, buffer: TaskReplayBuffer, tasks: list[str], lam: float, points: int = 256) -> EWC:
        """An EWC penalty anchored at ``model``'s current weights (the parent's), its Fisher taken
        on ``points`` inputs drawn from ``tasks``."""
        pick = [tasks[i] for i in torch.randint(len(tasks), (min(len(tasks), 32),), generator=self._gen).tolist()]
        batch = self.task_batch(buffer, pick)
        x = batch.inputs() if batch is not None else None
        # a metric learner's outputs are embeddings, not logits: read them as a Gaussian's mean
        logits = self.kind == "classification" and not is_metric(self.config["algo"])
        penalty = EWC(model, lam=lam, fisher_samples=points, seed=int(torch.randint(2**31, (1,), generator=self._gen)),
                      kind="classification" if logits else "regression")
        if x is not None:
            penalty.consolidate(x)
        return penalty

    def promote(self, proposal: Proposal) -> None:
        self.champion = proposal.learner
        self.champion.model.eval()
