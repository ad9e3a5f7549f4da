"""``metastream demo``: the embedded broker, a worker, and a simulated fleet of agents with a drift
injected midway, shown as a live table: sine regression (frequency doubles) or 5-way 1-shot digit
classification (``--task digits``: images turn a quarter). The worker is a real ``metastream
worker`` process talking to the broker over TCP; the demo watches ``models``, ``events`` and the
worker's metrics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.table import Table

from schemas import codec_for

from streams.kafka.broker import EmbeddedBroker, ensure_topics, free_port
from streams.simulation import METRIC
from streams.simulation.fleet import DigitFleet, SineFleet, publish_served_tasks
from streams.worker.metrics import scrape
from streams.client.publisher import ExperiencePublisher
from streams.records.wire import Cause, DecisionType, RolloutPosition
from streams.settings import Settings
from streams.client.subscriber import ModelSubscriber


@dataclass
class DemoState:
    task: str = "sine"
    started: float = field(default_factory=time.monotonic)
    published: int = 0
    rate: float = 0.0
    drift_injected_at: float | None = None
    drift_alarms: list[float] = field(default_factory=list)
    versions: list[tuple[int, float, float]] = field(default_factory=list)  # (version, t, mse after)
    rejected: int = 0
    forgetting: int = 0  # candidates that lost too much on an old era (ForgettingDetected)
    rejected_forgetting: int = 0
    champion: int | None = None
    canary: str = "-"  # "v7 at 25%"
    rollouts: list[str] = field(default_factory=list)  # the latest rollout decisions, newest last
    promoted: int = 0
    rolled_back: int = 0
    status_url: str = ""
    buffer_tasks: float = 0
    ingested: float = 0
    quality: dict[str, tuple[float, float]] = field(default_factory=dict)  # label -> (before, after)
    models: dict[int, object] = field(default_factory=dict)  # version -> LoadedModel
    pre_drift_version: int | None = None  # the champion when the drift came (the latest version if none was yet)
    champion_at_drift: int | None = None  # the version most agents were served when the drift came
    summary: dict[str, float] = field(default_factory=dict)

    def t(self) -> float:
        return time.monotonic() - self.started


def evaluate(model, fleet, drifted: bool, tasks: int = 100, shots: int = 10) -> tuple[float, float]:
    """Sine: MSE of ``model`` on fresh tasks of the given distribution (the same ones every call),
    before and after 10-shot adaptation. Digits: 5-way accuracy (%) on fresh tasks from the test images, after 1-shot
    adaptation (a ProtoNet has no "before": its classes are the support's); the first is NaN."""
    import torch

    if isinstance(fleet, DigitFleet):
        return float("nan"), digits_accuracy(model, drifted, tasks)

    fresh = SineFleet(seed=999, points_per_task=fleet.points_per_task)  # the same fresh tasks every call
    xs, ys = zip(*[fresh.sample_task(drifted)[1:] for _ in range(tasks)])
    x, y = torch.tensor(np.stack(xs)), torch.tensor(np.stack(ys))
    learner = model.learner  # all tasks in one batch: the demo's own loop must leave the worker its cores
    with torch.no_grad():
        before = float(((learner.predict_unadapted(x[:, shots:], 0) - y[:, shots:]) ** 2).mean())
    adapted = learner.adapt_tasks(x[:, :shots], y[:, :shots])
    with torch.no_grad():
        after = float(((learner.predict_tasks(adapted, x[:, shots:]) - y[:, shots:]) ** 2).mean())
    return before, after


def digits_accuracy(model, rotated: bool, tasks: int) -> float:
    """1 support and 9 query images per class of fresh 5-way tasks (the same tasks every call)."""
    fleet = DigitFleet(seed=999, per_class=10, split="test")
    hits = total = 0
    for _ in range(tasks):
        sx, sy, qx, qy = fleet.episode(rotated)
        pred = model.predict(model.adapt(sx, sy), qx).argmax(-1).numpy()
        hits += int((pred == qy).sum())
        total += len(qy)
    return 100.0 * hits / total


def render(s: DemoState, duration: float) -> Table:
    table = Table(title=f"metastream demo  t={s.t():5.1f}s / {duration:.0f}s", expand=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("status page", s.status_url or "-")
    table.add_row("experiences published", f"{s.published:,}")
    table.add_row("experiences/s", f"{s.rate:,.0f}")
    table.add_row("ingested by the worker", f"{s.ingested:,.0f}")
    table.add_row("tasks in the replay buffer", f"{s.buffer_tasks:,.0f}")
    table.add_row("drift injected at", "-" if s.drift_injected_at is None else f"{s.drift_injected_at:.1f}s")
    table.add_row("drift alarms", ", ".join(f"{t:.1f}s" for t in s.drift_alarms[-4:]) or "-")
    table.add_row("versions published", ", ".join(f"v{v}@{t:.1f}s" for v, t, _ in s.versions[-4:]) or "-")
    table.add_row("versions rejected", str(s.rejected))
    table.add_row("forgetting detected (then rejected)", f"{s.forgetting} ({s.rejected_forgetting})")
    table.add_row("champion (most agents)", "-" if s.champion is None else f"v{s.champion}")
    table.add_row("canary (by cohort)", s.canary)
    table.add_row("rollouts promoted / rolled back", f"{s.promoted} / {s.rolled_back}")
    for line in s.rollouts[-3:]:
        table.add_row("  rollout decision", line)
    for label, (b, a) in s.quality.items():
        if np.isnan(b):
            table.add_row(f"accuracy on {label} (1-shot, %)", f"{a:.1f}")
        else:
            table.add_row(f"MSE on {label} (before -> after 10 steps)", f"{b:.3f} -> {a:.3f}")
    return table


async def run_demo(duration: float = 100.0, drift_at: float = 0.45, rate: float = 1000.0, seed: int = 0,
                   task: str = "sine", console: Console | None = None, mixture: bool = True) -> DemoState:
    if task not in METRIC:
        raise ValueError(f"unknown demo task {task!r}; choose from {', '.join(METRIC)}")
    s = DemoState(task=task)
    with EmbeddedBroker() as broker:
        settings = Settings.from_env()
        await ensure_topics(broker.bootstrap, settings.topics.configs(), settings.broker.partitions)
        port, web = free_port(), free_port()
        s.status_url = f"http://127.0.0.1:{web}/status"
        env = dict(os.environ, METASTREAM_KAFKA=broker.bootstrap, METASTREAM_METRICS_PORT=str(port), METASTREAM_WEB_PORT=str(web),
                   METASTREAM_NEW_TASKS_TRIGGER=os.environ.get("METASTREAM_NEW_TASKS_TRIGGER", "150"))
        # the preset, as a mixture of meta-models (a component per regime: the default) or as one model
        env["METASTREAM_MODELS"] = f'{{"{task}": {{"preset": "{task}", "mixture": {"true" if mixture else "false"}}}}}'
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        fleet = SineFleet(seed=seed) if task == "sine" else DigitFleet(seed=seed)
        try:
            await _drive(s, broker.bootstrap, settings, fleet, port, duration, drift_at, rate, worker, console or Console(stderr=True))
        finally:
            worker.terminate()
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
    return s


async def _drive(s, bootstrap, settings, fleet, port, duration, drift_at, rate, worker, console: Console) -> None:
    from aiokafka import AIOKafkaConsumer

    from streams.kafka.connection import client_options

    events = AIOKafkaConsumer(settings.topics.events, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                              **client_options())
    await events.start()
    sub = await ModelSubscriber(bootstrap, settings.topics.models).start()
    pub = await ExperiencePublisher(bootstrap, agent_type=f"{s.task}-sim").start()
    try:
        with Live(render(s, duration), console=console, refresh_per_second=4) as live:
            last_eval = 0.0
            window: list[tuple[float, int]] = []
            while s.t() < duration:
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited ({worker.returncode}): {worker.stderr.read().decode()[-2000:]}")
                if s.drift_injected_at is None and drift_due(s, drift_at, duration):
                    fleet.drift()
                    s.drift_injected_at = s.t()
                    s.champion_at_drift = s.champion
                    s.pre_drift_version = s.champion if s.champion in s.models else max(s.models, default=None)
                tick = time.monotonic()
                n = await publish_served_tasks(pub, fleet, sub, rate * 0.1, s.task, shots=10)
                s.published += n
                window = [(t, c) for t, c in window + [(tick, n)] if tick - t < 2.0]
                s.rate = sum(c for _, c in window) / max(tick - window[0][0] + 0.1, 0.1)
                for msgs in (await events.getmany(timeout_ms=1)).values():
                    for msg in msgs:
                        note_decision(s, codec_for("DecisionEvent").decode(msg.value))
                await sub.poll(1)
                for m in sub.take_arrivals():
                    s.versions.append((m.version, s.t(), float("nan")))
                    s.models[m.version] = m
                metrics = scrape(port)
                s.buffer_tasks = metrics.get("metastream_buffer_tasks", s.buffer_tasks)
                s.ingested = metrics.get("metastream_experiences_ingested_total", s.ingested)
                latest = sub.latest_versions.get(s.task)
                if latest is not None and s.t() - last_eval > 3.0:
                    label = "drifted tasks" if fleet.drifted else "tasks"
                    s.quality[f"current {label} (v{latest.version})"] = evaluate(latest, fleet, fleet.drifted, tasks=50)
                    if len(s.quality) > 3:
                        s.quality.pop(next(iter(s.quality)))
                    last_eval = s.t()
                live.update(render(s, duration))
                await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
            await pub.flush()
        await sub.poll(500)
        for m in sub.take_arrivals():
            s.models[m.version] = m
        summarise(s, fleet)
    finally:
        await pub.stop()
        await sub.stop()
        await events.stop()


def note_decision(s: DemoState, rec: dict) -> None:
    """A decision of the worker's, counted for the live table."""
    kind = DecisionType(rec["event_type"])
    if kind is DecisionType.DRIFT_DETECTED:
        s.drift_alarms.append(s.t())
    elif kind is DecisionType.VERSION_REJECTED:
        s.rejected += 1
        s.rejected_forgetting += Cause(rec["cause"]) is Cause.FORGETTING
    elif kind is DecisionType.FORGETTING_DETECTED:
        s.forgetting += 1
    elif kind in ROLLOUT_EVENTS:
        note_rollout(s, kind, rec)


def drift_due(s: DemoState, drift_at: float, duration: float) -> bool:
    """The drift comes at ``drift_at`` of the run once the fleet is served an improved version (a
    champion after the first version), so that the demo tells the same story on a slow machine as
    on a fast one: an improvement reaches the agents, then the world changes. It comes at 3/4 of
    the run at the latest, improved champion or not (the summary then shows ``champion_at_drift`` 1)."""
    t = s.t()
    improved = s.champion is not None and bool(s.models) and s.champion > min(s.models)
    return t >= 0.75 * duration or (t >= drift_at * duration and improved)


ROLLOUT_EVENTS = (DecisionType.ROLLOUT_STARTED, DecisionType.ROLLOUT_ADVANCED, DecisionType.ROLLOUT_PROMOTED,
                  DecisionType.ROLLED_BACK)


def note_rollout(s: DemoState, kind: DecisionType, rec: dict) -> None:
    """Rollout stages and decisions for the live table."""
    version, position = rec["version"], RolloutPosition.of(rec)
    share = 0.0 if position is None else position.share
    if kind is DecisionType.ROLLOUT_PROMOTED:
        s.champion, s.canary = version, "-"
        s.promoted += 1
    elif kind is DecisionType.ROLLED_BACK:
        s.canary = "-"
        s.rolled_back += 1
    else:
        s.canary = f"v{version} at {share:g}%"
    note = {DecisionType.ROLLOUT_STARTED: f"v{version} canary at {share:g}%",
            DecisionType.ROLLOUT_ADVANCED: f"v{version} to {share:g}%",
            DecisionType.ROLLOUT_PROMOTED: f"v{version} champion",
            DecisionType.ROLLED_BACK: f"v{version} rolled back"}[kind]
    s.rollouts.append(f"{s.t():5.1f}s {note} ({rec['cause']})")


def summarise(s: DemoState, fleet, tasks: int = 300) -> None:
    """The champion before the drift against the latest, on tasks from before and after it."""
    metric = METRIC[s.task]
    if s.champion is not None:  # what most agents are served: the rollout's champion
        s.summary["champion"] = s.champion
    if s.champion_at_drift is not None:
        s.summary["champion_at_drift"] = s.champion_at_drift
    if s.pre_drift_version is not None:
        pre = s.models[s.pre_drift_version]
        s.summary["pre_drift_version"] = pre.version
        s.summary[f"pre_on_old_{metric}"] = evaluate(pre, fleet, False, tasks)[1]
        s.summary[f"pre_on_drifted_{metric}"] = evaluate(pre, fleet, True, tasks)[1]
    if s.models:
        latest = s.models[max(s.models)]
        s.summary["latest_version"] = latest.version
        s.summary["latest_components"] = float(len(getattr(latest.learner.model, "components", [None])))
        s.summary[f"latest_on_drifted_{metric}"] = evaluate(latest, fleet, True, tasks)[1]
        s.summary[f"latest_on_old_{metric}"] = evaluate(latest, fleet, False, tasks)[1]
    if s.drift_injected_at is not None:
        alarms = [t for t in s.drift_alarms if t >= s.drift_injected_at]
        if alarms:
            s.summary["drift_caught_after_s"] = alarms[0] - s.drift_injected_at
        after = [t for v, t, _ in s.versions if t >= s.drift_injected_at]
        if after:
            s.summary["first_version_after_drift_s"] = after[0] - s.drift_injected_at
