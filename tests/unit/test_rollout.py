"""The rollout policy, the always-valid comparison and the aliases, on their own."""

import numpy as np
import pytest

from streams.records.wire import Cause, DecisionType
from streams.worker.rollout.policy import Move, RolloutRules, judge
from streams.worker.rollout.sequential import RunningStats, compare
from streams.worker.rollout.serving import VersionStats
from streams.records.aliases import Aliases, aliases_from_events

RULES = RolloutRules(min_samples=200, evidence_timeout_s=10.0)


def stats(mean, n, sd=1.0, seed=0, latency=None, errors=0):
    v = VersionStats()
    losses = np.random.default_rng(seed).normal(mean, sd, n).astype("f4")
    losses[:errors] = np.nan
    v.record(losses, None if latency is None else np.full(n, latency, "f4"))
    return v


def test_a_clearly_worse_canary_is_rolled_back_and_a_good_one_advances_then_promotes():
    champion = stats(1.0, 5000)
    bad = judge(champion, stats(1.6, 300, seed=1), RULES, stage=0, stage_rows=300, stage_age_s=3)
    assert bad.move is Move.ROLLBACK and bad.cause is Cause.SEQUENTIAL_TEST and bad.figures["low"] > 0
    good = judge(champion, stats(0.95, 300, seed=2), RULES, stage=0, stage_rows=300, stage_age_s=3)
    assert good.move is Move.ADVANCE and good.cause is Cause.SEQUENTIAL_TEST
    last = judge(champion, stats(0.95, 300, seed=2), RULES, stage=3, stage_rows=300, stage_age_s=3)
    assert last.move is Move.PROMOTE


def test_a_stage_holds_until_it_has_evidence_then_advances_for_want_of_it():
    champion = stats(1.0, 5000)
    few = judge(champion, stats(1.0, 50, seed=3), RULES, stage=1, stage_rows=50, stage_age_s=3)
    assert few.move is Move.HOLD
    late = judge(champion, stats(1.0, 50, seed=3), RULES, stage=1, stage_rows=50, stage_age_s=11)
    assert late.move is Move.ADVANCE and late.cause is Cause.NO_EVIDENCE
    looks_worse = judge(champion, stats(1.15, 300, seed=4, sd=3.0), RULES, stage=0, stage_rows=300, stage_age_s=3)
    assert looks_worse.move is Move.HOLD  # worse than the tolerance but not yet significant: no advance


def test_a_stage_that_sees_no_harm_in_patience_times_its_samples_advances_whatever_the_estimate():
    """An equal canary whose estimate sits above the tolerance: held at first, then advanced once
    the stage has seen ``patience * min_samples`` rows without a significant harm (a truncated test)."""
    champion = stats(1.0, 5000)
    canary = stats(1.08, 1000, seed=9, sd=3.0)  # estimate above the 5% tolerance, interval across 0
    held = judge(champion, canary, RULES, stage=1, stage_rows=999, stage_age_s=3)
    assert held.move is Move.HOLD and held.figures["estimate"] > 0.05 and held.figures["low"] < 0
    limit = judge(champion, canary, RULES, stage=1, stage_rows=1000, stage_age_s=3)
    assert limit.move is Move.ADVANCE and limit.cause is Cause.SEQUENTIAL_TEST and "stage's limit" in limit.reason
    clearly_worse = judge(champion, stats(1.6, 1000, seed=8), RULES, stage=1, stage_rows=1000, stage_age_s=3)
    assert clearly_worse.move is Move.ROLLBACK  # the limit never passes a harm the test has found


def test_guardrails_roll_back_a_slow_or_failing_canary():
    champion = stats(1.0, 2000, latency=10.0)
    slow = judge(champion, stats(1.0, 300, seed=5, latency=30.0), RULES, stage=0, stage_rows=300, stage_age_s=3)
    assert slow.move is Move.ROLLBACK and slow.cause is Cause.LATENCY_GUARDRAIL
    jitter = judge(stats(1.0, 2000, latency=0.4), stats(1.0, 300, seed=5, latency=0.9), RULES, stage=0, stage_rows=300, stage_age_s=3)
    assert jitter.move is not Move.ROLLBACK  # 2x slower, but by half a millisecond
    failing = judge(champion, stats(1.0, 300, seed=6, latency=10.0, errors=30), RULES, stage=0, stage_rows=300, stage_age_s=3)
    assert failing.move is Move.ROLLBACK and failing.cause is Cause.ERROR_GUARDRAIL


def test_a_canary_s_slowest_task_on_a_busy_machine_is_not_a_slow_version():
    """Agents report one latency for each point of a task, so a canary's 300 rows are 15 tasks: its
    p95 was its slowest task (a moment the machine was busy), held against the champion's p95 over
    thousands of rows, and canaries as fast as the champion were rolled back. Medians compare like
    with like; a version slower on every prediction is still caught."""
    rng = np.random.default_rng(3)

    def tasks(n_tasks, typical, busy=0):
        per_task = rng.normal(typical, 0.1 * typical, n_tasks).clip(0.1)
        per_task[:busy] = 20.0  # tasks run while the update processes took the cores
        v = VersionStats()
        v.record(np.ones(20 * n_tasks, "f4"), np.repeat(per_task, 20).astype("f4"))
        return v

    champion = tasks(200, 1.0, busy=4)  # 2% of its tasks busy: under its p95
    busy_canary = tasks(15, 1.3, busy=1)  # one of 15 tasks busy: its p95 is that task
    assert busy_canary.p95_latency() > 1.5 * champion.p95_latency() + 10
    verdict = judge(champion, busy_canary, RULES, stage=0, stage_rows=300, stage_age_s=3)
    assert verdict.cause is not Cause.LATENCY_GUARDRAIL
    slow = judge(champion, tasks(15, 41.0), RULES, stage=0, stage_rows=300, stage_age_s=3)  # the bench's +40 ms
    assert slow.move is Move.ROLLBACK and slow.cause is Cause.LATENCY_GUARDRAIL


def test_the_confidence_sequence_holds_under_continuous_monitoring():
    """Equal versions, looked at after every 20 rows up to 4,000: the interval excludes the truth
    (0) in far fewer than alpha of the runs, where a t-test re-run at every look would not."""
    wrong = 0
    for run in range(100):
        rng = np.random.default_rng(run)
        a, b = RunningStats(), RunningStats()
        for _ in range(200):
            a.update_many(rng.normal(0, 1, 20))
            b.update_many(rng.normal(0, 1, 20))
            r = compare(a, b, alpha=0.05, tau=0.1)
            if r.low > 0 or r.high < 0:
                wrong += 1
                break
    assert wrong <= 5


def test_aliases_follow_the_events_and_serve_cohorts():
    """The events as a worker writes them: a rollout's position, an A/B test and a dropped
    challenger in their typed fields, encoded and decoded."""
    from schemas import codec_for
    from streams.records.wire import ABTestSpec, RolloutPosition, decision

    def ev(kind, version, **typed):
        return codec_for("DecisionEvent").decode(decision(kind, Cause.OTHER, "m", "", {}, version, **typed))

    log = [ev(DecisionType.ROLLOUT_PROMOTED, 1), ev(DecisionType.ROLLOUT_STARTED, 2, rollout=RolloutPosition(0, 5.0)),
           ev(DecisionType.CHALLENGER_QUEUED, 3), ev(DecisionType.ROLLOUT_ADVANCED, 2, rollout=RolloutPosition(1, 25.0))]
    aliases = aliases_from_events(log)["m"]
    assert (aliases.champion, aliases.canary, aliases.challenger, aliases.share, aliases.stage) == (1, 2, 3, 25.0, 1)
    assert aliases.version_for(10.0) == 2 and aliases.version_for(60.0) == 1 and aliases.version_for(None) == 1
    aliases.apply(ev(DecisionType.ROLLED_BACK, 2, drop_challenger=True))
    assert (aliases.canary, aliases.challenger, aliases.version_for(10.0)) == (None, None, 1)
    aliases.apply(ev(DecisionType.AB_TEST_STARTED, None, ab_test=ABTestSpec(1, 4, 50.0)))
    assert aliases.version_for(10.0) == 4 and aliases.version_for(90.0) == 1


def test_aliases_read_the_figures_of_events_written_before_the_typed_fields():
    def ev(kind, version, **figures):
        return {"event_type": kind.value, "model_id": "m", "version": version, "timestamp_ms": 0, "figures": figures,
                "reason": "", "cause": "other"}

    log = [ev(DecisionType.ROLLOUT_PROMOTED, 1), ev(DecisionType.ROLLOUT_STARTED, 2, share=5.0, stage=0),
           ev(DecisionType.CHALLENGER_QUEUED, 3), ev(DecisionType.ROLLOUT_ADVANCED, 2, share=25.0, stage=1)]
    aliases = aliases_from_events(log)["m"]
    assert (aliases.champion, aliases.canary, aliases.challenger, aliases.share, aliases.stage) == (1, 2, 3, 25.0, 1)
    assert aliases.version_for(10.0) == 2 and aliases.version_for(60.0) == 1 and aliases.version_for(None) == 1
    aliases.apply(ev(DecisionType.ROLLED_BACK, 2, drop_challenger=1.0))
    assert (aliases.canary, aliases.challenger, aliases.version_for(10.0)) == (None, None, 1)
    aliases.apply(ev(DecisionType.AB_TEST_STARTED, None, a=1, b=4, split=50.0))
    assert aliases.version_for(10.0) == 4 and aliases.version_for(90.0) == 1
    assert Aliases().version_for(10.0) is None


@pytest.mark.parametrize("stages,ok", [("5,25,50,100", True), ("5,50", False), ("50,25,100", False), ("x", False)])
def test_rollout_stages_are_checked(stages, ok):
    from learners.errors import ConfigError
    from streams.settings import Settings

    if ok:
        rules = Settings.from_env({"METASTREAM_ROLLOUT_STAGES": stages, "METASTREAM_ROLLOUT_ERROR_MARGIN": "0.07"}).rollout.rules()
        assert rules.stages == (5.0, 25.0, 50.0, 100.0) and rules.error_margin == 0.07 and rules.latency_floor_ms == 10.0
    else:
        with pytest.raises(ConfigError, match="ROLLOUT_STAGES"):
            Settings.from_env({"METASTREAM_ROLLOUT_STAGES": stages})


def test_the_champion_s_weights_stay_in_memory_however_many_versions_follow():
    from streams.settings import Settings
    from streams.worker.state import WorkerState

    model = WorkerState.from_settings(Settings.of(metrics_port=0)).models["sine"]
    model.aliases.champion = 3
    for version in range(1, 30):
        model.remember(version, bytes([version]))
    assert 3 in model.published and sorted(model.published) == [3, *range(22, 30)]
    model.aliases.champion = 25
    model.remember(30, b"x")
    assert 3 not in model.published and 25 in model.published


def _reporting(agents: int, per_second: float, seconds: int = 30, champion: int = 1):
    """Serving figures of ``agents`` agents reporting ``per_second`` losses a second, in all, for ``seconds``."""
    from streams.worker.rollout.serving import ServingStats

    s, k = ServingStats(), 0
    for t in range(seconds):
        for _ in range(int(per_second)):
            s.record(champion, np.ones(1), None, agent_id=f"agent-{k % agents}", at_ms=1000 * t + 500)
            k += 1
    return s


def test_a_rollout_starts_where_the_agents_can_judge_it_or_the_gate_s_verdict_stands():
    from streams.records.cohorts import cohort
    from streams.worker.rollout.policy import plan_start

    rules = RolloutRules(min_samples=30, evidence_timeout_s=30.0)
    now = 30_000
    # no agent has reported (the first versions): nothing would judge a canary
    unmeasured = plan_start(_reporting(200, 0.5), 1, "sine", rules, now)
    assert unmeasured.promote_now and "reported 0 losses" in unmeasured.reason
    # a new champion is measured beside its canary: the model's earlier versions' reports count
    assert not plan_start(_reporting(400, 200, champion=1), 2, "sine", rules, now).promote_now
    # a measured champion, but no agent reported lately: nothing would judge a canary
    quiet = plan_start(_reporting(200, 40), 1, "sine", rules, now + 120_000)
    assert quiet.promote_now and "no agent reported" in quiet.reason
    # plenty of evidence from many agents: the first stage
    busy = plan_start(_reporting(400, 200), 1, "sine", rules, now)
    assert (busy.stage, busy.share) == (0, 5.0)
    # few agents: the first stage whose cohort holds at least 3 of them
    few = plan_start(_reporting(8, 40), 1, "sine", rules, now)
    assert not few.promote_now and few.share > 5.0
    assert sum(cohort(f"agent-{a}", "sine") < few.share for a in range(8)) >= 3
    # a slow trickle of reports: a stage large enough to gather 30 in 30 s (20 a second: 5% gives 1, 25% gives 5)
    slow = plan_start(_reporting(400, 4), 1, "sine", rules, now)
    assert slow.share == 25.0 and slow.figures["share_for_evidence"] == pytest.approx(25.0)
    # too slow for any share short of everyone: promoted on the gate's verdict
    trickle = plan_start(_reporting(400, 1.5), 1, "sine", rules, now)
    assert trickle.promote_now and "no stage short of everyone" in trickle.reason


def test_the_manager_promotes_at_once_until_agents_report_and_rolls_out_once_they_do():
    import asyncio

    from streams.worker.rollout.manager import RolloutManager
    from streams.settings import Settings
    from streams.worker.state import WorkerState

    state = WorkerState.from_settings(Settings.of(metrics_port=0))
    sent = []

    async def decide(record):  # what the log would hold: the record must encode
        from schemas import codec_for
        sent.append(codec_for("DecisionEvent").decode(codec_for("DecisionEvent").encode(record)))

    manager = RolloutManager(state.models, RolloutRules(min_samples=30), decide)
    model = state.models["sine"]

    async def publish(version, cause=Cause.NEW_TASKS):
        await manager.on_published("sine", version, cause)
        return sent[-1]

    first = asyncio.run(publish(1))
    assert (first["event_type"], first["cause"]) == (DecisionType.ROLLOUT_PROMOTED.value, Cause.FIRST_VERSION.value)
    second = asyncio.run(publish(2))  # no agent has reported on v1 yet
    assert (second["event_type"], second["cause"], second["version"]) == (DecisionType.ROLLOUT_PROMOTED.value,
                                                                           Cause.NO_EVIDENCE.value, 2)
    assert model.aliases.champion == 2 and model.aliases.canary is None
    import time as _time
    now = _time.time() * 1000
    for t in range(30):  # 400 agents report on v2 for 30 s
        for k in range(20):
            model.serving.record(2, np.ones(1), None, agent_id=f"agent-{(20 * t + k) % 400}", at_ms=now - 29_000 + 1000 * t)
    third = asyncio.run(publish(3, Cause.SEARCH))  # a search's winner is rolled out for the search
    assert (third["event_type"], third["version"], third["rollout"]["share"], third["cause"]) == (
        DecisionType.ROLLOUT_STARTED.value, 3, 5.0, Cause.SEARCH.value)
    assert model.aliases.canary == 3 and model.aliases.champion == 2
    fourth = asyncio.run(publish(4, Cause.SHADOW))  # waits for v3's rollout, and keeps its cause for its turn
    assert (fourth["event_type"], fourth["cause"]) == (DecisionType.CHALLENGER_QUEUED.value, Cause.SHADOW.value)
    assert (model.aliases.challenger, model.aliases.challenger_cause) == (4, Cause.SHADOW)
    fifth = asyncio.run(publish(5, Cause.DRIFT))  # a drift update replaces the canary at once
    assert [(e["event_type"], e["version"], e["cause"]) for e in sent[-2:]] == [
        (DecisionType.ROLLED_BACK.value, 3, Cause.SUPERSEDED.value), (fifth["event_type"], 5, Cause.DRIFT.value)]


def test_with_operator_keys_only_signed_requests_are_acted_on():
    """An unsigned request, one signed by a key the worker does not trust and one altered after
    signing are refused with an event that says why; a request signed by an operator is acted on."""
    import asyncio

    from schemas import codec_for
    from streams.records.signing import Signer, Verifier
    from streams.records.wire import decision_record
    from streams.settings import Settings
    from streams.worker.rollout.manager import RolloutManager
    from streams.worker.state import WorkerState

    operator, stranger = Signer.generate(), Signer.generate()
    state = WorkerState.from_settings(Settings.of(metrics_port=0))
    sent = []

    async def decide(record):
        sent.append(codec_for("DecisionEvent").decode(codec_for("DecisionEvent").encode(record)))

    manager = RolloutManager(state.models, RolloutRules(min_samples=30), decide, operators=Verifier([operator.public_pem()]))
    for version in (1, 2):
        asyncio.run(manager.on_published("sine", version, Cause.NEW_TASKS))

    def request(signer=None, **change):
        record = decision_record(DecisionType.ROLLOUT_REQUESTED, Cause.OPERATOR, "sine", "requested by an operator", {}, 1)
        if signer is not None:
            record.update(signer.sign(record, "DecisionEvent"))
        record.update(change)
        asyncio.run(manager.on_request(codec_for("DecisionEvent").decode(codec_for("DecisionEvent").encode(record))))
        return sent[-1]

    refusals = [request(), request(stranger), request(operator, version=2)]
    assert [(e["event_type"], e["cause"]) for e in refusals] == [(DecisionType.REQUEST_REFUSED.value, Cause.UNAUTHORISED.value)] * 3
    assert "unsigned" in refusals[0]["reason"] and stranger.key_id in refusals[1]["reason"]
    assert "does not verify" in refusals[2]["reason"] and state.models["sine"].aliases.canary is None
    started = request(operator)
    assert (started["event_type"], started["version"]) == (DecisionType.ROLLOUT_STARTED.value, 1)


def test_the_worker_s_own_paired_evidence_rolls_back_a_canary_no_agent_reported_on():
    from streams.worker.rollout.heldout import HeldoutEvidence
    from streams.worker.rollout.policy import judge_rollout
    from streams.worker.rollout.serving import ServingStats

    rng = np.random.default_rng(7)
    hard = rng.uniform(0.1, 0.9, 400)  # tasks differ far more than the versions do: the pairing removes that
    worse, same = HeldoutEvidence(), HeldoutEvidence()
    worse.start(1, 2), same.start(1, 2)
    worse.add(hard, hard * 1.3 + rng.normal(0, 0.02, 400))
    same.add(hard, hard * 1.01 + rng.normal(0, 0.02, 400))
    quiet = ServingStats()  # no agent reported a loss of either version
    bad = judge_rollout(quiet, 1, 2, RULES, stage=0, stage_age_s=3, heldout=worse)
    assert bad.move is Move.ROLLBACK and bad.cause is Cause.HELDOUT_TEST and bad.figures["heldout_low"] > 0
    within_margin = judge_rollout(quiet, 1, 2, RULES, stage=0, stage_age_s=3, heldout=same)
    assert within_margin.move is Move.HOLD and within_margin.figures["heldout_tasks"] == 400
    other = judge_rollout(quiet, 1, 3, RULES, stage=0, stage_age_s=3, heldout=worse)  # evidence about another canary
    assert other.move is Move.HOLD and "heldout_tasks" not in other.figures
    few = HeldoutEvidence()
    few.start(1, 2), few.add(hard[:20], hard[:20] * 2)
    assert judge_rollout(quiet, 1, 2, RULES, stage=0, stage_age_s=3, heldout=few).move is Move.HOLD  # fewer than min_samples


def test_a_harm_that_multiplies_heavy_tailed_losses_is_found_on_the_log_scale_in_fewer_rows():
    rng = np.random.default_rng(3)
    champion, canary = VersionStats(), VersionStats()
    champion.record(rng.lognormal(0, 1.5, 4000), None)  # sine losses: a few tasks far worse than most
    rows = 0
    verdict = None
    while rows < 400 and (verdict is None or verdict.move is not Move.ROLLBACK):
        canary.record(3 * rng.lognormal(0, 1.5, 5), None)  # the bad version: three times the loss
        rows += 5
        verdict = judge(champion, canary, RULES, stage=0, stage_rows=rows, stage_age_s=3)
    assert verdict.move is Move.ROLLBACK and verdict.cause is Cause.SEQUENTIAL_TEST, verdict
    assert rows <= 80 and verdict.figures["log_low"] > 0, (rows, verdict.figures)
    good = VersionStats()
    good.record(rng.lognormal(0, 1.5, 400), None)  # as good as the champion: neither test rolls it back
    assert judge(champion, good, RULES, stage=0, stage_rows=400, stage_age_s=3).move is not Move.ROLLBACK
