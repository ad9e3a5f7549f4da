"""Shadow candidates of a worker's model: other learners (another algorithm, a wider backbone, a
feature step more) kept beside the champion, scored prequentially on the *same* incoming tasks
before they learn from them, and trained with the update compute a bandit gives them.

The worker scores every shadow on each group of tasks it scores the champion on
(:meth:`ShadowPool.observe`, same support/query split), so the comparison is paired. After each
routine update of the champion, one shadow update runs: the champion's own learning does not slow
down (a first design that gave every other update to a shadow cost the served accuracy 0.6-0.7
points in ``bench/shadows.py``), and the shadows together cost as much compute as the champion.
That update goes to the shadow with the highest upper confidence bound of its windowed reward
(UCB1, Auer et al. 2002): promising shadows train more, the others now and then. A shadow whose windowed
reward beats the champion's by ``margin``, with the paired gain's one-sided 95% bound above zero,
is a :class:`Challenge`: the worker trains it once more on its buffer and judges it against the
champion on the same held-out tasks and the forgetting guard (:func:`propose_challenger`), then
rolls it out like any version. When it is published the two swap places (:meth:`ShadowPool.swap`):
the old champion stays on as a shadow, so a regime that favours it again brings it back.

>>> from learners.online.shadows import variant, variant_name
>>> base = {"algo": "protonet", "backbone": {"name": "tabular", "hidden": 64}, "task": {"name": "tabular"}}
>>> variant(base, {"backbone": {"hidden": 128}})["backbone"]
{'name': 'tabular', 'hidden': 128}
>>> variant_name({"algo": "matching"}), variant_name({"backbone": {"log": True, "products": 4}})
('algo=matching', 'backbone.log=True,backbone.products=4')
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from river import stats, utils

from .guard import allowances, era_scores, forgotten, raise_best
from .guarded import GuardedProposal, GuardPlan, UpdatePlan
from .learner import OnlineMetaLearner, Proposal
from .replay import TaskReplayBuffer

Z_95 = 1.645  # one-sided: the paired gain's lower bound must be above zero for a challenge


def variant(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``config`` with ``overrides`` merged in, section by section (a copy)."""
    out = copy.deepcopy(config)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = variant(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def variant_name(overrides: dict[str, Any], prefix: str = "") -> str:
    """A readable name for a variant: its overrides as ``section.key=value``."""
    parts = []
    for key, value in sorted(overrides.items()):
        if isinstance(value, dict):
            parts.append(variant_name(value, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key}={value}")
    return ",".join(parts) or "champion"


@dataclass(frozen=True)
class Challenge:
    """Shadow ``name`` beats the champion on the last ``tasks`` incoming tasks: windowed rewards
    (accuracy, or ``1 - relative MSE / 4``) and the paired gain's mean and lower bound."""

    name: str
    tasks: int
    shadow_reward: float
    champion_reward: float
    gain: float
    gain_lower_bound: float

    def figures(self) -> dict[str, float]:
        return {"prequential_tasks": float(self.tasks), "shadow_reward": self.shadow_reward,
                "champion_reward": self.champion_reward, "gain": self.gain, "gain_lower_bound": self.gain_lower_bound}


@dataclass
class Shadow:
    name: str
    learner: OnlineMetaLearner
    reward: utils.Rolling
    gain_mean: utils.Rolling  # shadow minus champion, task by task
    gain_var: utils.Rolling
    updates: int = 0  # updates the bandit gave it


@dataclass
class ShadowPool:
    """The shadows of one model and the champion's windowed reward on the same tasks."""

    champion_name: str
    window: int = 64
    margin: float = 0.02
    min_tasks: int = 32
    exploration: float = 0.5
    shadows: dict[str, Shadow] = field(default_factory=dict)
    champion_reward: utils.Rolling | None = None

    def __post_init__(self) -> None:
        if self.champion_reward is None:
            self.champion_reward = self._rolling(stats.Mean)

    def _rolling(self, kind) -> utils.Rolling:
        return utils.Rolling(kind, window_size=self.window)

    @classmethod
    def from_config(cls, config: dict[str, Any], overrides: list[dict[str, Any]], seed: int = 0, **settings: Any) -> "ShadowPool":
        """One shadow per override of the champion's ``config`` (a fresh, seeded learner each)."""
        pool = cls(champion_name="configured", **settings)
        for i, extra in enumerate(overrides):
            pool.add(variant_name(extra), OnlineMetaLearner(variant(config, extra), seed=seed + 1 + i))
        return pool

    def add(self, name: str, learner: OnlineMetaLearner) -> None:
        self.shadows[name] = Shadow(name, learner, self._rolling(stats.Mean), self._rolling(stats.Mean), self._rolling(stats.Var))

    def observe(self, champion: OnlineMetaLearner, batch, steps: int | None = None) -> None:
        """Score the champion and every shadow on ``batch`` (tasks no one has learned from yet)."""
        if batch is None:
            return
        base = champion.task_rewards(batch, steps)
        for r in base:
            self.champion_reward.update(float(r))
        for shadow in self.shadows.values():
            rewards = shadow.learner.task_rewards(batch, steps)
            for r, b in zip(rewards, base):
                shadow.reward.update(float(r))
                shadow.gain_mean.update(float(r - b))
                shadow.gain_var.update(float(r - b))

    def pick(self) -> Shadow | None:
        """The shadow that gets the next update: highest windowed reward plus an exploration bonus
        that shrinks with the updates it already had (UCB1); unscored shadows first."""
        if not self.shadows:
            return None
        total = sum(s.updates for s in self.shadows.values()) + 1

        def index(s: Shadow) -> float:
            if not s.reward.window:
                return math.inf
            return s.reward.get() + self.exploration * math.sqrt(2 * math.log(total) / (s.updates + 1))

        return max(self.shadows.values(), key=index)

    def challenger(self) -> Challenge | None:
        """The shadow that beats the champion by ``margin`` with a paired gain whose lower bound
        is above zero, over at least ``min_tasks`` tasks (the best such one), else ``None``."""
        best = None
        for s in self.shadows.values():
            n = len(s.gain_mean.window)
            if n < self.min_tasks:
                continue
            gain = s.gain_mean.get()
            bound = gain - Z_95 * math.sqrt(max(s.gain_var.get(), 0.0) / n)
            if gain > self.margin and bound > 0 and (best is None or gain > best.gain):
                best = Challenge(s.name, n, s.reward.get(), self.champion_reward.get(), gain, bound)
        return best

    def reset(self, name: str) -> None:
        """A challenge failed the gate: the shadow must earn its lead again on new tasks."""
        s = self.shadows[name]
        self.shadows[name] = Shadow(name, s.learner, self._rolling(stats.Mean), self._rolling(stats.Mean),
                                    self._rolling(stats.Var), s.updates)

    def swap(self, name: str, old_champion: OnlineMetaLearner) -> None:
        """Shadow ``name`` was published: the old champion becomes a shadow under its own name,
        with its windowed reward; every paired gain restarts (it was measured against the other)."""
        winner = self.shadows.pop(name)
        old_reward, self.champion_reward = self.champion_reward, winner.reward
        old_name, self.champion_name = self.champion_name, name
        self.add(old_name, old_champion)
        self.shadows[old_name].reward = old_reward
        for s in self.shadows.values():
            s.gain_mean, s.gain_var = self._rolling(stats.Mean), self._rolling(stats.Var)

    def switch_back(self, rolled_back: OnlineMetaLearner, config: dict[str, Any]) -> bool:
        """A switched-in champion was rolled back to a version of ``config``: the shadow of that
        config is champion again and ``rolled_back`` a shadow once more; False if none has it."""
        same = json.dumps(config, sort_keys=True, default=str)
        for name, s in self.shadows.items():
            if json.dumps(s.learner.config, sort_keys=True, default=str) == same:
                self.swap(name, rolled_back)
                return True
        return False

    def table(self) -> list[dict[str, Any]]:
        """Champion and shadows with their windowed rewards and updates (status page, events)."""
        rows = [{"name": self.champion_name, "role": "champion", "reward": self.champion_reward.get(),
                 "tasks": len(self.champion_reward.window), "updates": None}]
        rows += [{"name": s.name, "role": "shadow", "reward": s.reward.get(), "tasks": len(s.reward.window), "updates": s.updates}
                 for s in self.shadows.values()]
        return rows


def judge_against_champion(champion: OnlineMetaLearner, learner: OnlineMetaLearner, proposal: Proposal,
                           guard: GuardPlan | None) -> GuardedProposal:
    """A candidate of *another* config (a shadow, a distilled student) against the champion: both
    scored on the candidate's held-out tasks, split the same way, and the candidate's era scores
    checked by the forgetting guard against the champion's. No remedy is tried: a candidate of
    another config that forgets is rejected."""
    champ = champion.task_scores(champion.champion, proposal.held_batch)
    figures: dict = {}
    if guard is not None:
        reference = era_scores(champion.champion, champion.probe_batches(guard.probes))
        best = raise_best(guard.best, reference)
        scores = era_scores(proposal.learner, learner.probe_batches(guard.probes))
        forgot = forgotten(scores, guard.best, reference, guard.current_era, guard.max_drop, alpha=guard.alpha)
        figures = dict(champion_era_scores=reference, best_era_scores=best, era_scores=scores, first_forgetting=forgot,
                       forgetting=forgot, allowances=allowances(scores, guard.best, reference, guard.current_era,
                                                                guard.max_drop, alpha=guard.alpha))
    return GuardedProposal(learner.weights_bytes(proposal.learner), proposal.candidate_score, float(champ.mean()),
                           proposal.train_tasks, proposal.heldout_tasks, **figures, candidate_loss=proposal.candidate_loss,
                           champion_loss=float(champion.task_losses(champ, proposal.held_batch).mean()))


def _train(config: dict[str, Any], weights: bytes, buffer: TaskReplayBuffer, plan: UpdatePlan, seed: int,
           should_stop: Callable[[], bool] | None) -> tuple[OnlineMetaLearner, Proposal | None]:
    """A shadow rebuilt from its config and weights, and one plain update of it on the buffer."""
    learner = OnlineMetaLearner(config, seed=seed)
    learner.load_weights(weights)
    return learner, learner.propose(buffer, plan.iterations, plan.meta_batch, plan.heldout, plan.recent, plan.recent_share,
                                    should_stop=should_stop)


def propose_challenger(champion_config: dict[str, Any], champion_weights: bytes, config: dict[str, Any], weights: bytes,
                       buffer: TaskReplayBuffer, plan: UpdatePlan, guard: GuardPlan | None, seed: int,
                       should_stop: Callable[[], bool] | None = None) -> GuardedProposal | None:
    """Train a shadow (``config``, ``weights``) once more on the buffer and judge it against the
    champion; ``None`` with too few tasks or when stopped."""
    champion = OnlineMetaLearner(champion_config, seed=seed)
    champion.load_weights(champion_weights)
    learner, proposal = _train(config, weights, buffer, plan, seed, should_stop)
    return None if proposal is None else judge_against_champion(champion, learner, proposal, guard)


def train_shadow(config: dict[str, Any], weights: bytes, buffer: TaskReplayBuffer, plan: UpdatePlan, seed: int,
                 should_stop: Callable[[], bool] | None = None) -> tuple[bytes, float, float] | None:
    """One update of a shadow on the buffer: ``(weights, score after, score before)`` on its
    held-out tasks; the weights are the old ones when the update made it worse."""
    learner, proposal = _train(config, weights, buffer, plan, seed, should_stop)
    if proposal is None:
        return None
    keep = learner.passes_gate(proposal, 0.0)
    return (learner.weights_bytes(proposal.learner) if keep else weights), proposal.candidate_score, proposal.champion_score
