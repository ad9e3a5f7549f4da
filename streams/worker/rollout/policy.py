"""What a running rollout should do now, from the agents' reported losses: advance to the next
stage, promote the canary, hold, or roll back. A pure function of the state and the figures, so
it is tested on its own.

- **Roll back** when the canary is significantly worse (the always-valid interval for
  ``canary - champion`` mean loss lies above 0, or that of the mean log-loss while the mean loss
  is not lower: each at ``alpha / 2``), or breaks a guardrail: its median prediction latency
  above ``latency_ratio`` times the champion's, or its error rate (non-finite losses) more than
  ``error_margin`` above the champion's; or when the worker's own paired evidence (``heldout.py``:
  both versions scored on the same fresh tasks, whoever reports) shows it worse by more than
  ``margin`` of the champion's loss, significantly (cause ``heldout_test``).
- **Advance** once the stage has seen ``min_samples`` canary rows without a significant harm and
  with the observed difference within ``margin`` times the champion's mean loss (a canary that
  looks worse holds its stage until the test decides; the rollback check runs at every look, so a
  harm found later still rolls back); the figures say whether non-inferiority was also shown (the
  whole interval below that tolerance). A stage is a truncated test: once it has seen
  ``patience`` times ``min_samples`` canary rows without a significant harm, it advances whatever
  the point estimate (the estimate of a canary as good as the champion wanders above the tolerance
  about as often as below, and a stage waiting for it to come back could hold for minutes). Passing the stage before everyone (50% by default) is a
  **promotion**: at 100% no agent is left on the champion, so a canary judged there would be
  compared with the champion's losses from an earlier time (a drift in between would look like
  harm, and roll a good version back).
- **Advance for want of evidence** when a stage has seen fewer than ``min_samples`` canary rows
  in ``evidence_timeout_s`` (agents that do not report losses): the gate's verdict stands.
- Otherwise **hold**.

Where a rollout starts (:func:`plan_start`) depends on the evidence agents can give, so that a
version the gate passed reaches the fleet in bounded time at any rate of reports:

- a model whose versions agents have not yet measured (fewer than ``min_samples`` reported losses
  of any of its versions: its first versions) or that no agent reported on lately leaves nothing
  to judge a canary by: the new version is **promoted at once** on the gate's held-out evidence
  (cause ``no_evidence``);
- otherwise the first stage is the smallest whose cohort holds at least ``min_agents`` of the
  agents seen reporting and, at the observed report rate, gathers ``min_samples`` losses within
  ``evidence_timeout_s``; when only the last stage (everyone) would, the version is promoted at
  once too, since no share of the fleet is left to compare it with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from streams.records.wire import Cause
from streams.records.cohorts import cohort
from streams.worker.rollout.heldout import HeldoutEvidence
from streams.worker.rollout.sequential import compare, effect_scale
from streams.worker.rollout.serving import ServingStats, VersionStats


class Move(Enum):
    HOLD = "hold"
    ADVANCE = "advance"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class RolloutRules:
    stages: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    alpha: float = 0.05
    margin: float = 0.05  # non-inferiority: worse by less than this share of the champion's mean loss
    min_samples: int = 30  # canary observations (tasks agents met with it) a stage must see before it advances
    patience: int = 5  # ... and after this many times min_samples with no significant harm, it advances
    evidence_timeout_s: float = 30.0
    latency_ratio: float = 1.5
    latency_floor_ms: float = 10.0  # and at least this much slower: on a loaded machine a canary's p95 jitters by 5 ms (measured: 6.9 against 1.5 ms, a false rollback)
    error_margin: float = 0.02
    guardrail_min_rows: int = 40
    min_agents: int = 3  # a first stage's cohort holds at least this many of the agents seen reporting
    evidence_window_s: float = 30.0  # the report rate and the reporting agents are read over this window


@dataclass
class Verdict:
    move: Move
    cause: Cause | None = None
    figures: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def judge(champion: VersionStats | None, canary: VersionStats | None, rules: RolloutRules, stage: int, stage_rows: int,
          stage_age_s: float, heldout: HeldoutEvidence | None = None) -> Verdict:
    champion, canary = champion or VersionStats(), canary or VersionStats()
    # two always-valid tests at alpha/2 each (their union holds at alpha): on the losses, and on their
    # logarithms, which finds a harm that multiplies heavy-tailed losses in a third of the rows
    result = compare(champion.losses, canary.losses, rules.alpha / 2, tau=effect_scale(champion.losses, canary.losses))
    logged = compare(champion.log_losses, canary.log_losses, rules.alpha / 2,
                     tau=effect_scale(champion.log_losses, canary.log_losses))
    figures = {"estimate": result.estimate, "low": result.low, "high": result.high, "e_value": result.e_value,
               "p_value": result.p_value, "n_champion": result.n_a, "n_canary": result.n_b, "stage_rows": stage_rows,
               "champion_mean_loss": champion.losses.mean, "canary_mean_loss": canary.losses.mean,
               "champion_p95_latency_ms": champion.p95_latency(), "canary_p95_latency_ms": canary.p95_latency(),
               "champion_error_rate": champion.error_rate, "canary_error_rate": canary.error_rate,
               "log_estimate": logged.estimate, "log_low": logged.low, "log_high": logged.high}
    if heldout is not None:
        figures.update(heldout.figures(rules.alpha))
    figures = {k: float(v) for k, v in figures.items()}
    if canary.rows >= rules.guardrail_min_rows and champion.rows >= rules.guardrail_min_rows:
        if canary.error_rate > champion.error_rate + rules.error_margin:
            return Verdict(Move.ROLLBACK, Cause.ERROR_GUARDRAIL, figures,
                           f"canary error rate {canary.error_rate:.1%} against the champion's {champion.error_rate:.1%}")
        lat_c, lat_k = canary.median_latency(), champion.median_latency()
        if lat_c == lat_c and lat_k == lat_k and lat_c > rules.latency_ratio * lat_k and lat_c - lat_k > rules.latency_floor_ms:
            return Verdict(Move.ROLLBACK, Cause.LATENCY_GUARDRAIL, figures,
                           f"canary median latency {lat_c:.1f} ms against the champion's {lat_k:.1f} ms")
    if result.low > 0:
        return Verdict(Move.ROLLBACK, Cause.SEQUENTIAL_TEST, figures,
                       f"canary worse: mean loss {canary.losses.mean:.4g} against {champion.losses.mean:.4g} "
                       f"(difference in [{result.low:.3g}, {result.high:.3g}], e-value {result.e_value:.3g})")
    if logged.low > 0 and result.estimate > 0:  # worse on the log scale and not better on average
        return Verdict(Move.ROLLBACK, Cause.SEQUENTIAL_TEST, figures,
                       f"canary worse: its losses {np.exp(logged.estimate):.3g} times the champion's (geometric mean; "
                       f"factor in [{np.exp(logged.low):.3g}, {np.exp(logged.high):.3g}]), mean loss "
                       f"{canary.losses.mean:.4g} against {champion.losses.mean:.4g}")
    if heldout is not None and heldout.pairs >= rules.min_samples:
        own = heldout.comparison(rules.alpha)
        if own.low > rules.margin * abs(heldout.champion.mean):
            return Verdict(Move.ROLLBACK, Cause.HELDOUT_TEST, figures,
                           f"canary worse on {heldout.pairs} fresh tasks the worker scored both on: mean loss "
                           f"{heldout.canary.mean:.4g} against {heldout.champion.mean:.4g} (difference in "
                           f"[{own.low:.3g}, {own.high:.3g}], more than {rules.margin:.0%} of the champion's)")
    last = stage >= len(rules.stages) - 2  # the next stage is everyone: that is the champion
    move = Move.PROMOTE if last else Move.ADVANCE
    tolerance = rules.margin * abs(champion.losses.mean)
    non_inferior = result.high < tolerance
    figures["non_inferior"] = float(non_inferior)
    limit = stage_rows >= rules.patience * rules.min_samples
    if stage_rows >= rules.min_samples and (result.estimate <= tolerance or limit):
        shown = (f"not worse than the champion by {rules.margin:.0%}" if non_inferior else
                 "no significant harm" + ("" if result.estimate <= tolerance else " by the stage's limit"))
        return Verdict(move, Cause.SEQUENTIAL_TEST, figures,
                       f"{shown} in {stage_rows} canary rows: loss difference in [{result.low:.3g}, {result.high:.3g}]")
    if stage_rows < rules.min_samples and stage_age_s >= rules.evidence_timeout_s:
        return Verdict(move, Cause.NO_EVIDENCE, figures,
                       f"{stage_rows} reported losses in {stage_age_s:.0f}s (need {rules.min_samples}): the gate's verdict stands")
    return Verdict(Move.HOLD, None, figures)


@dataclass(frozen=True)
class StartPlan:
    """Where a rollout of a gated version starts: ``stage`` (an index into the stages, with its
    ``share``), or ``stage == -1``: promote now on the gate's verdict."""

    stage: int
    share: float
    reason: str
    figures: dict[str, float]

    @property
    def promote_now(self) -> bool:
        return self.stage < 0


def plan_start(stats: ServingStats, champion: int | None, model_id: str, rules: RolloutRules, now_ms: float) -> StartPlan:
    """The first stage of a rollout (see the module's docstring).

    >>> import numpy as np
    >>> s = ServingStats()
    >>> plan_start(s, 1, "sine", RolloutRules(), 0).promote_now  # no agent has reported yet
    True
    >>> for t in range(30):
    ...     for a in range(200):
    ...         s.record(1, np.ones(1), None, agent_id=f"agent-{a}", at_ms=1000 * t)
    >>> p = plan_start(s, 1, "sine", RolloutRules(), 30_000)  # 200 reports/s from 200 agents: 5% will do
    >>> p.stage, p.share
    (0, 5.0)
    """
    measured = sum(v.rows for v in stats.versions.values())  # a new champion is measured beside its canary
    rate = stats.report_rate(now_ms, rules.evidence_window_s)
    agents = stats.recent_agents(now_ms, rules.evidence_window_s)
    figures = {"reported_losses": float(measured), "report_rate": rate, "reporting_agents": float(len(agents))}
    if measured < rules.min_samples:
        return StartPlan(-1, 100.0, f"agents have reported {measured} losses of this model's versions (a canary needs "
                         f"{rules.min_samples} to be judged): the gate's verdict stands", figures)
    if rate <= 0 or not agents:
        return StartPlan(-1, 100.0, f"no agent reported a loss in the last {rules.evidence_window_s:.0f}s: "
                         "the gate's verdict stands", figures)
    need_rate = 100.0 * rules.min_samples / (rate * rules.evidence_timeout_s)
    k = min(rules.min_agents, max(len(agents) // 2, 1))
    need_agents = sorted(cohort(a, model_id) for a in agents)[k - 1] + 1e-9
    need = max(rules.stages[0], need_rate, need_agents)
    figures.update(share_for_evidence=need_rate, share_for_agents=need_agents)
    for i, share in enumerate(rules.stages[:-1]):  # a canary needs a champion beside it: the last stage is everyone
        if share >= need:
            return StartPlan(i, share, "a gated candidate", figures)
    return StartPlan(-1, 100.0, f"{rate:.1f} reported losses/s from {len(agents)} agents: no stage short of everyone would gather "
                     f"{rules.min_samples} within {rules.evidence_timeout_s:.0f}s; the gate's verdict stands", figures)


def judge_rollout(stats: ServingStats, champion: int | None, canary: int, rules: RolloutRules, stage: int,
                  stage_age_s: float, heldout: HeldoutEvidence | None = None) -> Verdict:
    """``heldout``: the worker's own paired evidence, used when it is about these two versions."""
    if heldout is not None and heldout.versions != (champion, canary):
        heldout = None
    return judge(stats.rollout.get(champion) if champion is not None else None, stats.rollout.get(canary), rules, stage,
                 stats.stage_rows.get(canary, 0), stage_age_s, heldout)
