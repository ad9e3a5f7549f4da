"""What a mixture of meta-models says on ``events`` (``learners/transfer/mixture.py``): a drift
that led back to a regime a component already serves (``RegimeRecognised``: the drift is answered
by routing, nothing is relearned; said by the update that judged the era's tasks, or by ingest
when most scored tasks move to another component, often before any alarm), and a component retired to keep the mixture within its
budget (``ComponentRetired``: which, why, and how many eras only it served). Pure functions of the
update's figures, and the ``announce_*`` coroutines that send them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from learners.online import GuardedProposal
from streams.records.wire import Cause, DecisionType, decision_record
from streams.worker.state import ModelState
from streams.worker.state.regime import RegimeShift


@dataclass(frozen=True)
class MixtureReport:
    reason: str
    figures: dict[str, float]


def recognition(change: Mapping[str, Any], era: int) -> MixtureReport | None:
    """The ``RegimeRecognised`` event of an update of ``era`` that judged its tasks a known regime.

    >>> recognition({"recognised": True, "like_era": 1, "component": 0, "fit_ratio": 0.9, "components": 2}, 3).reason
    "era 3's tasks are era 1's regime coming back: component 0 serves them (their loss 0.90x its own on that era)"
    >>> recognition({"recognised": False}, 3) is None
    True
    """
    if not change.get("recognised"):
        return None
    return MixtureReport(
        f"era {era}'s tasks are era {int(change['like_era'])}'s regime coming back: component "
        f"{int(change['component'])} serves them (their loss {change['fit_ratio']:.2f}x its own on that era)",
        {"era": float(era), "like_era": float(change["like_era"]), "component": float(change["component"]),
         "fit_ratio": float(change["fit_ratio"]), "components": float(change["components"])})


def retirement(change: Mapping[str, Any]) -> MixtureReport | None:
    """The ``ComponentRetired`` event of a published version that made room for a new component."""
    if change.get("retired", -1) < 0:
        return None
    why = "it was the least used" if change["retired_least_used"] else "it and its nearest fit each other's eras"
    return MixtureReport(
        f"component {int(change['retired'])} retired to spawn one for a new regime within {int(change['components'])} "
        f"components: {why}; eras given up: {int(change['given_up_eras'])}",
        {"component": float(change["retired"]), "least_used": float(change["retired_least_used"]),
         "given_up_eras": float(change["given_up_eras"]), "components": float(change["components"])})


def routed(component: int, previous: int, share: float, window: int, era: int) -> MixtureReport:
    """The ``RegimeRecognised`` event of a stream whose scored tasks moved to another component.

    >>> routed(1, 0, 0.7, 64, 2).reason
    'the stream moved to component 1: 70% of the last 64 scored tasks route there (before: component 0)'
    """
    return MixtureReport(
        f"the stream moved to component {component}: {100 * share:.0f}% of the last {window} scored tasks route there "
        f"(before: component {previous})",
        {"era": float(era), "component": float(component), "previous": float(previous), "share": float(share),
         "window": float(window)})


async def announce_recognised(state: ModelState, job, proposal: GuardedProposal, decide) -> None:
    """A mixture's update that judged its era's tasks a regime it already serves: the drift is
    answered by routing, and the era is folded into the earlier one (the guard checks the regime
    there: ``GuardState.fold``), whether or not the candidate passes: the judgement is of the tasks,
    and spawns nothing. ``RegimeRecognised`` says so once an era; a restart folds again from it."""
    era = job.guard.current_era if job.guard is not None else None
    report = recognition(proposal.mixture or {}, era) if era is not None else None
    if report is not None and state.guard.fold(era, int(report.figures["like_era"])):
        state.guard.recognised_era = max(state.guard.recognised_era, era)
        await decide(DecisionType.REGIME_RECOGNISED, Cause.RECURRENCE, report.reason, report.figures)


async def announce_retired(proposal: GuardedProposal, decide) -> None:
    """A published mixture version that made room for a new component (``ComponentRetired``)."""
    report = retirement(proposal.mixture or {})
    if report is not None:
        await decide(DecisionType.COMPONENT_RETIRED, Cause.BUDGET, report.reason, report.figures)


async def announce_routed(controller, model_id: str, shift: RegimeShift) -> None:
    """Ingest saw the stream's tasks move to another component of a mixture: a regime it knows,
    served by routing (the era's drift, if one was called, is answered)."""
    state = controller.state.models[model_id]
    state.guard.recognised_era = max(state.guard.recognised_era, state.drift.era)
    report = routed(shift.component, shift.previous, shift.share, state.regime.window, state.drift.era)
    await controller.decide(decision_record(DecisionType.REGIME_RECOGNISED, Cause.RECURRENCE, model_id, report.reason,
                                            report.figures, state.version))
