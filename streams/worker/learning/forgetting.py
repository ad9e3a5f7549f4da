"""What a ``ForgettingDetected`` event says about a candidate the forgetting guard caught: the
eras it lost points on, by how much, and whether the remedies (more replay, distillation, EWC)
saved it. A pure function of the guard's proposal, so the controller only sends it."""

from __future__ import annotations

from dataclasses import dataclass

from learners.online import GuardedProposal


@dataclass(frozen=True)
class ForgettingReport:
    rejected: bool  # still forgetting after the remedies: the candidate is not published
    reason: str
    figures: dict[str, float]


def forgetting_report(proposal: GuardedProposal, max_drop: float) -> ForgettingReport:
    """The event's reason and figures for a proposal whose first try forgot an era."""
    rejected = bool(proposal.forgetting)
    figures = dict(proposal.mixture_figures)
    for era, drop in proposal.first_forgetting.items():
        best, parent = proposal.best_era_scores.get(era), proposal.champion_era_scores.get(era)
        figures[f"era_{era}_best_held_points"] = best.held if best is not None else float("nan")  # the best version, held half
        figures[f"era_{era}_parent_points"] = parent.points if parent is not None else float("nan")  # the champion, all probes
        figures[f"era_{era}_drop_points"] = drop
    for era, score in proposal.era_scores.items():
        figures[f"era_{era}_candidate_points"] = score.points
        figures[f"era_{era}_candidate_held_points"] = score.held
    reason = (f"candidate lost more than {max_drop:g} points on era(s) {sorted(proposal.first_forgetting)}; "
              + ("still after more replay, distillation and EWC: rejected" if rejected
                 else "remediated with more replay, distillation and EWC"))
    return ForgettingReport(rejected, reason, figures)
