"""One guarded update: propose a candidate, score it on every era's probes, and if it forgets an
era, redo it once with more replay and stronger distillation and EWC.

Plain data in (:class:`UpdatePlan`, :class:`GuardPlan`), plain data out (:class:`GuardedProposal`),
so the stream worker can run it in another process; this module knows nothing of processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .guard import Allowance, EraScore, ProbeSet, allowances, era_scores, forgotten, raise_best
from .learner import OnlineMetaLearner
from .mixture_update import is_mixture, known_tasks
from .replay import TaskReplayBuffer

REMEDY_SHARE = 0.25  # recent share of the meta-batch when an update is redone: more replay
REMEDY_FACTOR = 4.0  # distillation and EWC strength multiplied by this when redone


@dataclass(frozen=True)
class UpdatePlan:
    """How long and on what an update trains: ``iterations`` meta-batches of ``meta_batch`` tasks,
    ``recent_share`` of them from the ``recent`` newest training tasks; ``heldout`` tasks judge it."""

    iterations: int
    meta_batch: int
    heldout: int
    recent: int
    recent_share: float


@dataclass
class GuardPlan:
    """The forgetting guard's inputs: probe tasks per era, each era's best score so far under a
    published version, the largest drop allowed (points), the distillation and EWC strengths,
    the ids of buffered tasks of earlier eras (their anchors) and the era being learned."""

    probes: ProbeSet
    best: dict[int, EraScore]
    max_drop: float
    distill: float
    ewc: float
    old_tasks: list[str]
    current_era: int
    parent: dict[int, EraScore] = field(default_factory=dict)  # the champion's era scores in its own config (set by a search,
    # whose candidates run in the winner's config: the champion scored in that one is not what was published)
    alpha: float = 0.0  # > 0: a drop counts only beyond the probes' noise at this family-wise level (guard.forgotten)
    folded: tuple[int, ...] = ()  # eras judged a regime an earlier era had: checked on that era's probes, not their own


@dataclass
class GuardedProposal:
    """A candidate's weights and figures. ``forgetting`` non-empty: it still forgets after the
    remedy and must not be published. ``first_forgetting``: what the first try forgot (if any)."""

    weights: bytes
    candidate_score: float
    champion_score: float
    train_tasks: int
    heldout_tasks: int
    champion_era_scores: dict[int, EraScore] = field(default_factory=dict)
    era_scores: dict[int, EraScore] = field(default_factory=dict)
    best_era_scores: dict[int, EraScore] = field(default_factory=dict)
    first_forgetting: dict[int, float] = field(default_factory=dict)
    forgetting: dict[int, float] = field(default_factory=dict)
    allowances: dict[int, Allowance] = field(default_factory=dict)  # what each era of ``era_scores`` was allowed to lose
    mixture: dict[str, int | bool] | None = None  # a mixture's components after the update, spawned, merged
    candidate_loss: float = float("nan")  # mean per-task held-out loss (``OnlineMetaLearner.task_losses``): what the gate judges
    champion_loss: float = float("nan")

    @property
    def mixture_figures(self) -> dict[str, float]:
        """A mixture's components after the update, whether one was spawned, how many merged."""
        return {f"mixture_{k}": float(v) for k, v in (self.mixture or {}).items()}

    @property
    def allowance_figures(self) -> dict[str, float]:
        """Points each era was allowed to lose (parent, all probes; best, held half): an audit checks
        the guard's promise from a version's record with them."""
        figures = {}
        for era, allow in self.allowances.items():
            figures[f"era_{era}_allowance_points"] = allow.best
            figures[f"era_{era}_parent_allowance_points"] = allow.parent
        return figures

    @property
    def remediated(self) -> bool:
        return bool(self.first_forgetting) and not self.forgetting


def given_up(proposal) -> tuple[int, ...]:
    """Eras a mixture's update gave up to stay within its components' budget (an event says so)."""
    change = proposal.mixture
    return change.judgement.given_up if change is not None and change.judgement is not None else ()


def propose_guarded(learner: OnlineMetaLearner, buffer: TaskReplayBuffer, plan: UpdatePlan, guard: GuardPlan | None,
                    should_stop: Callable[[], bool] | None = None) -> GuardedProposal | None:
    """``None`` when there are too few tasks or ``should_stop`` said so. Without a guard there is
    no distillation or EWC either: both serve the forgetting promise."""
    distill = guard.distill if guard else 0.0
    old = guard.old_tasks if guard else None
    ewc = guard.ewc if guard and old else 0.0

    def propose(share: float, distill: float, ewc: float, anchors: list[str] | None):
        return learner.propose(buffer, plan.iterations, plan.meta_batch, plan.heldout, plan.recent, share,
                               should_stop=should_stop, distill=distill, distill_tasks=anchors, ewc=ewc,
                               era=guard.current_era if guard else None, known=known)

    probes = learner.probe_batches(guard.probes) if guard is not None else {}  # split once: spawn check and era scores
    known = known_tasks(probes, guard.current_era) if guard is not None and is_mixture(learner) else None
    # no old era yet: the first try distils on no task, the remedy on every training task
    proposal = propose(plan.recent_share, distill, ewc, old)
    if proposal is None or (should_stop is not None and should_stop()):
        return None
    figures: dict = {}
    if guard is not None:
        champion = {**era_scores(learner.champion, probes), **guard.parent}

        def allowed(proposal, scores):  # eras not checked: given up (a mixture at its budget retired the only
            # component that served them) and folded (their regime is checked on an earlier era's probes)
            return allowances(scores, guard.best, champion, guard.current_era, guard.max_drop,
                              given_up(proposal) + tuple(guard.folded), guard.alpha)

        scores = era_scores(proposal.learner, probes)
        figures.update(champion_era_scores=champion, best_era_scores=raise_best(guard.best, champion), era_scores=scores,
                       allowances=allowed(proposal, scores))
        forgot = forgotten(scores, guard.best, champion, guard.current_era, guard.max_drop, allowed=figures["allowances"])
        if forgot:
            figures["first_forgetting"] = forgot
            if should_stop is not None and should_stop():
                return None
            proposal = propose(min(plan.recent_share, REMEDY_SHARE), max(REMEDY_FACTOR * distill, 1.0), REMEDY_FACTOR * ewc,
                               old or None)
            if proposal is None:
                return None
            figures["era_scores"] = era_scores(proposal.learner, probes)
            figures["allowances"] = allowed(proposal, figures["era_scores"])
            figures["forgetting"] = forgotten(figures["era_scores"], guard.best, champion, guard.current_era, guard.max_drop,
                                              allowed=figures["allowances"])
    if proposal.mixture is not None:
        figures["mixture"] = proposal.mixture.as_dict()
    return GuardedProposal(learner.weights_bytes(proposal.learner), proposal.candidate_score, proposal.champion_score,
                           proposal.train_tasks, proposal.heldout_tasks, **figures, candidate_loss=proposal.candidate_loss,
                           champion_loss=proposal.champion_loss)
