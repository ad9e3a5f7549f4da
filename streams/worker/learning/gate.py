"""The gate an update's candidate passes before it is published: better than the champion on the
newest held-out tasks (within a margin), and the figures its decision events carry."""

from __future__ import annotations

from learners.online import GuardedProposal, OnlineMetaLearner
from streams.worker.learning.process import UpdateResult


def gate_figures(kind: str, proposal: GuardedProposal, seconds: float, number: int) -> dict[str, float]:
    """The candidate's and champion's held-out scores, the update's time and size, its seed and,
    for a mixture of meta-models, its components."""
    score_name = "mse" if kind == "regression" else "accuracy"
    figs = {f"candidate_{score_name}": proposal.candidate_score, f"champion_{score_name}": proposal.champion_score,
            "update_seconds": seconds, "train_tasks": proposal.train_tasks, "heldout_tasks": proposal.heldout_tasks,
            "seed": float(number),  # the update job's number seeds its random draws (the audit shows it)
            "candidate_loss": proposal.candidate_loss, "champion_loss": proposal.champion_loss}  # what the gate judged
    figs.update(proposal.mixture_figures)
    figs.update(proposal.allowance_figures)
    return figs


def gate_rejection(learner: OnlineMetaLearner, proposal: GuardedProposal, margin: float) -> str | None:
    """Why the candidate is rejected, or ``None`` when it passes: its mean per-task held-out loss
    may be worse than the champion's by at most ``margin`` (a share of it for regression, accuracy
    points for classification; ``learners/online/heldout.py``)."""
    if learner.passes_gate(proposal, margin):
        return None
    worse = f"{margin:.0%}" if learner.kind == "regression" else f"{100 * margin:g} accuracy points"
    return (f"candidate worse than champion by more than {worse}: mean held-out loss {proposal.candidate_loss:.4g} "
            f"against {proposal.champion_loss:.4g} on {proposal.heldout_tasks} tasks")


def search_summary(result: UpdateResult) -> tuple[str, dict[str, float]]:
    """A finished search's reason (the best trial's parameters) and figures."""
    params = result.params
    reason = f"best of {int(result.search_figures['trials'])} trials: " + ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    return reason, {**result.search_figures, **{f"param_{k}": v for k, v in params.items() if isinstance(v, (int, float))}}
