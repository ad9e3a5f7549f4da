"""Diagnosis rules as data, the engine's timing, and the remedies, on their own."""

import asyncio
import json
from types import SimpleNamespace

import numpy as np
import pytest

from learners.errors import ConfigError
from streams.worker.diagnosis.engine import Diagnoser
from streams.worker.diagnosis.remedies import Remedies
from streams.worker.diagnosis.rules import Action, load_rules, parse_rules
from streams.worker.diagnosis.signals import gather
from streams.worker.metrics import WorkerMetrics
from streams.records.wire import DecisionType
from streams.settings import Settings
from streams.worker.state import WorkerState


def test_the_shipped_rules_cover_every_fault_kind_and_bad_rules_say_what_is_wrong(tmp_path):
    rules = {r.name: r for r in load_rules()}
    assert {"accuracy_trend", "slow_inference", "memory_pressure", "dead_letter_spike", "poisoning_agent", "lag_growing",
            "stuck_learning"} <= set(rules)
    assert rules["memory_pressure"].action is Action.SHRINK and rules["poisoning_agent"].action is Action.QUARANTINE
    for bad, says in (([{"name": "x", "signal": "nope", "action": "alert", "above": 1}], "signal must be"),
                      ([{"name": "x", "signal": "dlq_per_s", "action": "dance", "above": 1}], "action must be"),
                      ([{"name": "x", "signal": "dlq_per_s", "action": "alert"}], "exactly one of")):
        with pytest.raises(ConfigError, match=says):
            parse_rules(bad)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([{"name": "mine", "signal": "memory_share", "above": 0.1, "action": "alert"}]))
    assert [r.name for r in load_rules(path)] == ["mine"]


def test_a_rule_fires_after_holding_for_its_time_and_then_cools_down():
    engine = Diagnoser(parse_rules([{"name": "spike", "signal": "dlq_per_s", "above": 5, "for_s": 10, "cooldown_s": 60,
                                     "action": "alert"}]))
    assert engine.evaluate({None: {"dlq_per_s": 9}}, now=0) == []  # crossed, not yet for 10 s
    assert engine.in_force  # but in force: the status page lists it
    assert [d.rule.name for d in engine.evaluate({None: {"dlq_per_s": 9}}, now=11)] == ["spike"]
    assert engine.evaluate({None: {"dlq_per_s": 9}}, now=30) == []  # cooling down
    assert engine.evaluate({None: {"dlq_per_s": 1}}, now=31) == [] and not engine.in_force  # back to normal


def test_signals_name_the_agent_behind_the_dead_letters_and_quarantine_stops_it():
    settings = Settings.of(metrics_port=0)
    state = WorkerState.from_settings(settings)
    for _ in range(40):
        state.health.note_dead_letter("mallory")
    for _ in range(5):
        state.health.note_dead_letter("alice")
    signals, context = gather(state, settings)
    assert signals[None]["top_agent_rejected_share"] == pytest.approx(40 / 45)
    assert context[None]["agent_id"] == "mallory"
    sent = []

    async def decide(record):  # what the log would hold: the record must encode
        from schemas import codec_for

        sent.append(codec_for("DecisionEvent").decode(codec_for("DecisionEvent").encode(record)))

    engine = Diagnoser(load_rules())
    fired = [d for d in engine.evaluate(signals, now=0.0, context=context) if d.rule.name == "poisoning_agent"]
    remedies = Remedies(state, settings, SimpleNamespace(), decide, WorkerMetrics())
    asyncio.run(remedies.act(fired[0]))
    assert state.health.quarantined("mallory") and not state.health.quarantined("alice")
    assert [e["event_type"] for e in sent] == [DecisionType.DIAGNOSIS_MADE, DecisionType.REMEDIATION_TAKEN]
    assert "mallory" in sent[1]["reason"] and sent[0]["figures"]["value"] > 0.5
    assert sent[1]["figures"]["purged_tasks"] == 0  # its rejected data never reached the buffer; what did is not judged noise


def test_a_noisy_agent_s_buffered_tasks_leave_with_its_quarantine_and_a_replay_drops_the_same():
    from streams.worker.diagnosis.engine import Diagnosis
    from streams.worker.recovery.log_replay import shrinks_from

    settings = Settings.of(metrics_port=0)
    state = WorkerState.from_settings(settings)
    sine = state.models["sine"]
    for agent in ("mallory", "alice"):
        for i in range(3):
            sine.buffer.add(f"{agent}-{i}", np.zeros((20, 1), "f4"), np.zeros((20, 1), "f4"))
            sine.note_agent([f"{agent}-{i}"], agent)
    sent = []

    async def decide(record):
        from schemas import codec_for

        sent.append(codec_for("DecisionEvent").decode(codec_for("DecisionEvent").encode(record)))

    rule = next(r for r in load_rules() if r.name == "noisy_agent")
    asyncio.run(Remedies(state, settings, SimpleNamespace(), decide, WorkerMetrics()).act(
        Diagnosis(rule, None, 0.9, {"noisy_agent_id": "mallory"})))
    assert sorted(sine.buffer.task_ids()) == ["alice-0", "alice-1", "alice-2"] and sent[1]["figures"]["purged_tasks"] == 3
    (purge,) = shrinks_from(sent)
    assert purge.agent == "mallory" and purge.model_id == ""


def _fill(buf, n: int = 5000) -> None:
    for i in range(n):  # 5,000 tasks of 40 points fill a 1 MiB bound
        buf.add(f"t{i}", np.zeros((40, 1), "f4"), np.zeros((40, 1), "f4"))


def test_a_full_buffer_is_not_memory_pressure_a_worker_near_its_budget_is():
    """A replay buffer at its bound is healthy (it evicts there); a worker whose resident memory
    passes 80% of its budget is not, and the remedy evicts half of what the buffers hold, keeps
    their bound there (down to a floor), and records the bounds where on the log a replay makes the
    same."""
    from streams.worker.recovery.log_replay import _apply, shrinks_from

    roomy = Settings.of(metrics_port=0, buffer_mb=1.0, memory_mb=1e6)
    state = WorkerState.from_settings(roomy)
    _fill(state.models["sine"].buffer)
    assert state.models["sine"].buffer.bytes > 0.8 * 2**20 and gather(state, roomy)[0][None]["memory_share"] < 0.8

    tight = Settings.of(metrics_port=0, buffer_mb=1.0, memory_mb=1.0)  # far below what any Python process holds
    signals, context = gather(state, tight)
    fired = [d for d in Diagnoser(load_rules()).evaluate(signals, now=0.0, context=context) if d.rule.name == "memory_pressure"]
    assert fired and signals[None]["memory_share"] > 0.8
    sent = []

    async def decide(record):
        from schemas import codec_for

        sent.append(codec_for("DecisionEvent").decode(codec_for("DecisionEvent").encode(record)))

    buf = state.models["sine"].buffer
    state.positions = {0: 120, 1: 75}
    for _ in range(6):  # the floor: a sixteenth of METASTREAM_BUFFER_MB
        asyncio.run(Remedies(state, tight, SimpleNamespace(), decide, WorkerMetrics()).act(fired[0]))
    assert buf.max_bytes == 2**16 and buf.bytes <= 2**16
    taken = [e for e in sent if e["event_type"] == DecisionType.REMEDIATION_TAKEN.value]
    bounds = [e["figures"]["bound_after_sine"] for e in taken]
    assert 2**19 - 320 <= bounds[0] <= 2**19 and bounds[3:] == [2**16] * 3  # half of the full buffer, ..., the floor
    assert all(b == max(2**16, a // 2) for a, b in zip(bounds, bounds[1:]))
    assert "at their floor" in taken[-1]["reason"] and "MiB budget" in taken[0]["reason"]
    assert taken[0]["figures"]["budget_mb"] == 1.0 and taken[0]["figures"]["used_mb_after"] > 1.0

    replayed = WorkerState.from_settings(tight)  # a restart replaying the log meets the shrinks where they were made
    _fill(replayed.models["sine"].buffer)
    shrinks = shrinks_from(sent)
    assert [s.positions for s in shrinks[:1]] == [{0: 120, 1: 75}]
    _apply(replayed, "sine", shrinks, {"sine": list(shrinks)})
    assert replayed.models["sine"].buffer.max_bytes == 2**16 and replayed.models["sine"].buffer.digest() == buf.digest()


class _Pool:
    """What the memory remedy needs of the update pool (``streams/worker/learning/pool.py``)."""

    def __init__(self) -> None:
        self.configured = self.size = 2
        self.warmed = 0

    def resize(self, processes: int) -> bool:
        processes, before = max(1, processes), self.size
        self.size = processes
        return processes != before

    def warm(self) -> list:
        self.warmed += 1
        return []


def test_memory_still_above_its_bound_after_the_buffers_gives_back_an_update_process_until_there_is_room():
    """Halving a buffer gives back megabytes; an update process holds hundreds. With the buffers
    halved and memory still above the bound, one of the two is given back (never the last); it is
    taken back only after the worker with one more process has stayed under 70% of its budget for
    a minute, so a limit that is still tight does not make it flap."""
    sent = []

    async def decide(record):
        sent.append(record)

    state = WorkerState.from_settings(Settings.of(metrics_port=0, buffer_mb=1.0))
    _fill(state.models["sine"].buffer)
    tight = Settings.of(metrics_port=0, buffer_mb=1.0, memory_mb=1.0)
    signals, context = gather(state, tight)
    fired = [d for d in Diagnoser(load_rules()).evaluate(signals, now=0.0, context=context) if d.rule.name == "memory_pressure"]
    pool = _Pool()
    remedies = Remedies(state, tight, SimpleNamespace(pool=pool), decide, WorkerMetrics())
    asyncio.run(remedies.act(fired[0]))
    assert pool.size == 1 and "one update process given back (1 left" in sent[-1]["reason"]
    assert sent[-1]["figures"]["update_processes"] == 1.0
    asyncio.run(remedies.act(fired[0]))
    assert pool.size == 1 and "given back" not in sent[-1]["reason"]  # the last one stays
    asyncio.run(remedies.regrow(now=0.0))
    asyncio.run(remedies.regrow(now=100.0))
    assert pool.size == 1  # no room under the tight budget

    roomy = Remedies(state, Settings.of(metrics_port=0, buffer_mb=1.0, memory_mb=1e6), SimpleNamespace(pool=pool), decide)
    before = len(sent)
    asyncio.run(roomy.regrow(now=0.0))
    asyncio.run(roomy.regrow(now=30.0))
    assert pool.size == 1 and len(sent) == before  # room, but not for a minute yet
    asyncio.run(roomy.regrow(now=61.0))
    assert pool.size == 2 and pool.warmed == 1
    assert sent[-1]["event_type"] == DecisionType.REMEDIATION_TAKEN.value and "back to 2 update processes" in sent[-1]["reason"]


def test_learning_is_stuck_only_while_the_drift_s_loss_stays_up():
    """Rejected candidates after a drift alarm are a stuck learner only while the loss has not come
    back: a false alarm in a stationary stream (the loss at its old level, no version needed) fired
    the rule twice in the self-healing bench's fault-free control."""
    settings = Settings.of(metrics_port=0)
    state = WorkerState.from_settings(settings)
    model = state.models["sine"]
    model.rejected_streak, model.last_published = 5, 0.0
    drift = model.drift
    for _ in range(200):
        drift.monitor.update(1.0)
    drift.first_drift_ms, drift.alarm_levels = 1, (1.0, 2.0)
    assert gather(state, settings)[0]["sine"]["stuck_s"] == 0.0  # the loss is where it was before the alarm
    for _ in range(200):
        drift.monitor.update(2.0)
    assert gather(state, settings)[0]["sine"]["stuck_s"] > 30.0  # still up: the drift waits for an answer
    drift.first_drift_ms = None  # a version answered it
    assert gather(state, settings)[0]["sine"]["stuck_s"] == 0.0


def test_an_agent_whose_tasks_fit_far_worse_than_the_others_is_named():
    from streams.worker.state.health import Health

    health = Health()
    rng = np.random.default_rng(0)
    for agent in range(40):  # heavy-tailed losses, as sine tasks give: no clean agent stands out
        for loss in rng.lognormal(0.0, 1.5, 40):
            health.note_agent_loss(f"clean-{agent}", float(loss))
    assert health.loss_outlier()[1] < 0.4
    for loss in rng.lognormal(3.0, 0.5, 20):  # targets that are noise: losses far above
        health.note_agent_loss("noisy", float(loss))
    agent, share, tasks = health.loss_outlier()
    assert agent == "noisy" and share > 0.9 and tasks == 20
    rule = next(r for r in load_rules() if r.name == "noisy_agent")
    assert rule.action is Action.QUARANTINE and rule.context_agent == "noisy_agent_id"


def test_an_agent_alone_in_a_new_regime_is_not_named_noisy():
    """Its tasks fit the champion as badly as noise does, but their labels follow from their inputs."""
    from streams.worker.state.health import Health

    health = Health()
    rng = np.random.default_rng(0)
    for agent in range(10):
        for loss in rng.lognormal(0.0, 1.5, 40):
            health.note_agent_loss(f"clean-{agent}", float(loss), noise=False)
    for loss in rng.lognormal(3.0, 0.5, 40):
        health.note_agent_loss("newcomer", float(loss), noise=False)
    assert health.loss_outlier()[1] < 0.2
    for loss in rng.lognormal(3.0, 0.5, 20):
        health.note_agent_loss("noisy", float(loss), noise=True)
    agent, share, _ = health.loss_outlier()
    assert agent == "noisy" and share > 0.6  # the rule's bound (the newcomer's losses raise the others' 90th percentile)
    from streams.worker.state.health import Quarantine

    health.add_quarantine("noisy", Quarantine({}, release_ms=2**50))  # judged: the next noisy agent is named, not it again
    for loss in rng.lognormal(3.0, 0.5, 20):
        health.note_agent_loss("noisy-2", float(loss), noise=True)
    assert health.loss_outlier()[0] == "noisy-2"


def test_noise_and_a_new_regime_are_told_apart_by_the_tasks_themselves():
    from learners.tasks.coherence import incoherent, label_coherence

    rng = np.random.default_rng(3)
    x = rng.uniform(-5, 5, (40, 1)).astype("f4")
    regimes = [incoherent(x, a * np.sin(f * x - p), "regression") for f in (1, 2, 3) for a, p in rng.uniform((0.1, 0), (5, 3), (5, 2))]
    noise = [incoherent(x, rng.normal(0, 3, x.shape), "regression") for _ in range(15)]
    assert not any(regimes) and sum(noise) >= 13, (regimes, noise)
    # classification: labels a function of the inputs, or drawn at random
    centres = rng.normal(0, 3, (5, 8))
    labels = np.repeat(np.arange(5), 8)
    points = centres[labels] + rng.normal(0, 1, (40, 8))
    assert label_coherence(points, labels, "classification") > 0.8
    assert incoherent(points, rng.integers(0, 5, 40), "classification")
    assert incoherent(points, np.full(40, np.nan), "regression") is False  # nothing to tell: not noise


def test_a_rule_that_names_an_agent_cools_down_per_agent():
    from streams.worker.diagnosis.engine import Diagnoser

    engine = Diagnoser([r for r in load_rules() if r.name == "noisy_agent"])
    seen = {None: {"agent_high_loss_share": 0.9}}
    first = engine.evaluate(seen, 0.0, {None: {"noisy_agent_id": "a", "agent_high_loss_share_count": 30}})
    again = engine.evaluate(seen, 5.0, {None: {"noisy_agent_id": "a", "agent_high_loss_share_count": 30}})
    other = engine.evaluate(seen, 6.0, {None: {"noisy_agent_id": "b", "agent_high_loss_share_count": 30}})
    assert (len(first), len(again), len(other)) == (1, 0, 1) and other[0].context["noisy_agent_id"] == "b"


def test_a_rule_waits_for_its_signal_s_count():
    from streams.worker.diagnosis.engine import Diagnoser
    from streams.worker.diagnosis.rules import parse_rules

    rule = parse_rules([{"name": "noisy", "signal": "agent_high_loss_share", "action": "alert", "above": 0.5, "min_count": 20}])
    diagnoser = Diagnoser(rule)
    few = diagnoser.evaluate({None: {"agent_high_loss_share": 0.9}}, 0.0, {None: {"agent_high_loss_share_count": 3}})
    many = diagnoser.evaluate({None: {"agent_high_loss_share": 0.9}}, 1.0, {None: {"agent_high_loss_share_count": 30}})
    assert (len(few), len(many)) == (0, 1)
