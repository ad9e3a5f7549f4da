"""The Faust app of a worker: topics ``experiences``, ``models``, ``events``, ``experiences.dlq``,
an ``ingest`` agent on experiences, and timers for scheduled updates and gauges.

Values travel as raw bytes and are decoded by our own Avro codec, so a message that fails to
decode still reaches the DLQ whole, with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import time

from schemas import CodecError, codec_for

from streams.worker.access import REFUSAL, authorised
from streams.worker.diagnosis.broker_watch import BrokerWatch
from streams.worker.diagnosis.cycle import DiagnosisCycle
from streams.worker.diagnosis.engine import Diagnoser
from streams.worker.faust_app import faust_app
from streams.worker.diagnosis.remedies import Remedies
from streams.worker.diagnosis.rules import load_rules
from streams.worker.ingest import Ingestor
from streams.worker.learning.controller import UpdateController
from streams.worker.metrics import WorkerMetrics
from streams.worker.recovery.announce import member_lost_record, restart_record
from streams.worker.recovery.incarnation import Incarnation, Predecessor
from streams.worker.recovery.rebuild import rebuild_state
from streams.records.wire import MAX_DEAD_LETTER_KEY, Cause, DecisionType, score_record
from streams.worker.rollout.manager import REQUESTS, RolloutManager
from streams.settings import Settings
from streams.worker.state import WorkerState
from streams.worker.status import render_status
from streams.worker.recovery.snapshots import SnapshotStore, capture, read_anchors
from streams.kafka.topics import end_offsets, partition_count

log = logging.getLogger("metastream.worker")


class WorkerRuntime:
    """Everything one worker process holds, wired to one Faust app."""

    def __init__(self, settings: Settings, bootstrap: str, metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.metrics = metrics or WorkerMetrics()
        self.state = WorkerState.from_settings(settings)
        self.ingestor = Ingestor(self.state, settings, self.metrics)
        self.ready = asyncio.Event()
        self._assignment_lock = asyncio.Lock()
        self._pending_assignments = 0
        self._assignment_tasks: set[asyncio.Task] = set()
        # read at a rebuild even when this worker takes none (METASTREAM_SNAPSHOT_EVERY_S=0)
        self.snapshots = SnapshotStore(settings.snapshots.dir or f"{settings.broker.app_id}-data/snapshots", settings.broker.app_id)
        self.incarnation = Incarnation(self.snapshots.directory)  # its mark: whether the worker before it stopped cleanly
        self.predecessor: Predecessor | None = None  # what ``begin`` found (``run.py``): reported once the state is rebuilt
        self.app = faust_app(settings, bootstrap)
        raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        self.topics = {name: self.app.topic(name, partitions=settings.broker.partitions, **raw) for name in settings.topics.all}
        self.controller = UpdateController(self.state, settings, self.metrics, self.send, self.decide)
        self.rollouts = RolloutManager(self.state.models, settings.rollout.rules(), self.decide,
                                       enabled=settings.rollout.enabled, revert=self.controller.revert, ab_max_s=settings.rollout.ab_max_s,
                                       operators=settings.operators())
        self.controller.rollouts = self.rollouts
        self.broker_watch = BrokerWatch(bootstrap)
        self.diagnosis = DiagnosisCycle(self.state, settings, Diagnoser(load_rules(settings.diagnosis.rules or None)),
                                        Remedies(self.state, settings, self.controller, self.decide, self.metrics), self.broker_watch)
        self._register()

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        await self.topics[topic].send(key=key, value=value)

    async def decide(self, record: dict) -> None:
        """A decision (a DecisionEvent record): encoded once for the log, keyed by its model; the
        status page keeps the record as it is."""
        await self.send(self.settings.topics.events, record["model_id"].encode(), codec_for("DecisionEvent").encode(record))
        self.state.health.decisions.append(record)

    async def send_dead_letter(self, key: bytes | None, letter: bytes, offset: int) -> None:
        """Send a dead letter; one the producer refuses anyway is logged, never allowed to stop the agent
        (the original stays on its topic at ``offset``)."""
        try:
            await self.send(self.settings.topics.dlq, (key or b"")[:MAX_DEAD_LETTER_KEY], letter)
        except Exception:  # noqa: BLE001
            log.exception("could not send the dead letter of offset %s (%d bytes)", offset, len(letter))

    async def take_assignment(self, assigned: set[int]) -> None:
        """The group assigned these experiences partitions: keep the models homed on them, drop
        the others, and rebuild from the log the models this worker gains (all of them the first
        time). Assignments are taken one after the other; ingest waits until none is pending."""
        try:
            async with self._assignment_lock:
                await self._take_assignment(assigned)
        except Exception:  # noqa: BLE001 - logged; the worker reads on with what it has
            log.exception("rebuilding the models of partitions %s failed", sorted(assigned))
        finally:
            self._pending_assignments -= 1
            if not self._pending_assignments:  # no newer assignment waits: ingest may read on
                self.state.ownership.settled.set()
            if not self.ready.is_set():
                self.ready.set()
                self.metrics.ready.set(1)

    async def _take_assignment(self, assigned: set[int]) -> None:
        s, state = self.settings, self.state
        started = time.perf_counter()
        first = not state.ownership.assigned_once
        count = await partition_count(self.bootstrap, s.topics.experiences) or s.broker.partitions
        previous = set(state.ownership.assigned)
        gained, lost = state.ownership.assign(assigned, count, state.configs)
        for mid in set(state.models) - state.ownership.owned:
            del state.models[mid]
            self.metrics.forget_model(mid)
        for partition in previous - assigned:
            state.positions.pop(partition, None)
            self.metrics.forget_partition(partition)
        if first:
            counts = await rebuild_state(state, self.ingestor, s, self.bootstrap, partitions=assigned, snapshots=self.snapshots)
        elif gained:
            for mid in gained:
                state.models[mid] = state.fresh_model(mid)
            counts = await rebuild_state(state, self.ingestor, s, self.bootstrap, models=gained, partitions=assigned - previous,
                                         snapshots=self.snapshots)
        else:
            counts = {}
        seconds = time.perf_counter() - started
        if first and self.predecessor is not None:
            await self.decide(restart_record(self.predecessor, counts, seconds, sorted(assigned)))
            self.predecessor = None
        elif not first and assigned - previous and previous <= assigned:
            await self.decide(member_lost_record(sorted(assigned - previous), sorted(gained), counts, seconds))
        if counts:
            self.metrics.rebuild_seconds.set(seconds)
            self.metrics.rebuild_messages.set(counts["messages"])
            self.metrics.rebuild_from_snapshot.set(counts["from_snapshot"])
        log.info("partitions %s of %s assigned: models %s (gained %s, lost %s); rebuilt in %.2fs: %s", sorted(assigned),
                 s.topics.experiences, sorted(state.models), sorted(gained), sorted(lost), seconds, counts)

    async def take_snapshot(self) -> None:
        """Snapshot the derived state of the partitions this worker holds (``snapshots.py``), between
        two ingested messages; never during a rebalance."""
        state, s = self.state, self.settings
        if not self.ready.is_set() or self._pending_assignments or not state.ownership.assigned:
            return
        score_starts = await end_offsets(self.bootstrap, s.topics.scores)  # before the capture: see snapshots.py
        if self._pending_assignments or not state.ownership.settled.is_set():
            return
        started = time.perf_counter()
        snapshot = capture(state, state.ownership.assigned, score_starts, s)
        captured = time.perf_counter() - started
        snapshot.anchors = await read_anchors(self.bootstrap, s.topics.experiences, snapshot.positions)
        path = await asyncio.get_running_loop().run_in_executor(None, self.snapshots.save, snapshot)
        self.metrics.snapshots.inc()
        log.info("snapshot %s: %.1f MiB, captured in %.2fs (ingest paused), written in %.2fs", path, len(snapshot.state) / 2**20,
                 captured, time.perf_counter() - started - captured)

    def _register(self) -> None:
        """The app's agents, pages and timers."""
        self._register_group()
        self._register_agents()
        self._register_timers()
        self._register_remedies()

    def _register_group(self) -> None:
        """What a worker does when it starts and when the consumer group moves partitions."""
        app, s = self.app, self.settings

        @app.task
        async def warm_up() -> None:
            self.controller.warm_up()

        @app.on_partitions_revoked.connect
        async def on_revoked(sender, revoked, **kwargs) -> None:
            self.state.ownership.settled.clear()  # until the new assignment is known and rebuilt

        @app.on_partitions_assigned.connect
        async def on_assigned(sender, assigned, **kwargs) -> None:
            # the rebuild runs beside the group protocol, not inside its callback: replaying a long
            # log takes longer than the session timeout, and the group would evict this worker
            self._pending_assignments += 1
            self.state.ownership.settled.clear()
            task = asyncio.ensure_future(self.take_assignment({tp.partition for tp in assigned if tp.topic == s.topics.experiences}))
            self._assignment_tasks.add(task)
            task.add_done_callback(self._assignment_tasks.discard)

    def _register_agents(self) -> None:
        """The stream processors (experiences in, operators' requests in) and the status page."""
        app, s = self.app, self.settings

        @app.agent(self.topics[s.topics.experiences], name="ingest")
        async def ingest(stream) -> None:
            await self.ready.wait()
            settled = self.state.ownership.settled
            async for event in stream.events():
                if not settled.is_set():  # a rebalance: the models this worker gains are being rebuilt
                    await settled.wait()
                msg = event.message
                try:
                    result = self.ingestor.ingest(event.value, event.key, msg.topic, msg.partition, msg.offset,
                                                  timestamp_ms=msg.timestamp * 1000 if msg.timestamp else None)
                except Exception as exc:  # noqa: BLE001 - nothing may stop the agent; keep the message
                    log.exception("ingest failed at %s[%s]@%s", msg.topic, msg.partition, msg.offset)
                    result = self.ingestor.dead_letter(event.value, event.key, msg.topic, msg.partition, msg.offset,
                                                       "internal_error", f"{type(exc).__name__}: {exc}")
                if result.dead_letter is not None:
                    await self.send_dead_letter(event.key, result.dead_letter, msg.offset)
                    continue
                if result.scored is not None:  # what the detector was fed, for an exact rebuild after a restart
                    await self.send(s.topics.scores, result.model_id.encode(),
                                    score_record(result.model_id, msg.partition, msg.offset, *result.scored))
                await self.controller.on_ingest(result)

        @app.agent(self.topics[s.topics.events], name="requests")
        async def requests(stream) -> None:
            """Operators' requests (rollout, promote, rollback, A/B test) arrive as events."""
            await self.ready.wait()
            async for event in stream.events():
                try:
                    record = codec_for("DecisionEvent").decode(event.value)
                except CodecError:
                    continue
                model = self.state.models.get(record["model_id"])
                if model is None or DecisionType(record["event_type"]) not in REQUESTS:
                    continue
                if event.message.offset < self.state.request_floor.get(event.message.partition, 0):
                    continue  # on the log before this worker's group first started: history, already answered
                try:
                    await self.rollouts.on_request(record)
                except Exception:  # noqa: BLE001 - a malformed request (say, an A/B test without versions) is refused, not fatal
                    log.exception("refused the request at %s@%s: %s", event.message.partition, event.message.offset, record)

        @app.page("/status")
        async def status(web, request):
            if not authorised(request.headers.get("Authorization", ""), request.query.get("token", ""), s.process.access_token):
                return web.text(REFUSAL.decode(), status=401)
            decisions = list(reversed(self.state.health.decisions))
            return web.html(render_status(self.state, decisions, list(self.state.health.active.values()), s.broker.app_id))

    def _register_timers(self) -> None:
        """What runs on a clock: tasks whose scoring waits, snapshots, rollouts, gauges."""
        app, s = self.app, self.settings

        @app.timer(s.drift.window_s)
        async def score_due() -> None:
            """Completed tasks whose scoring window passed with no message to carry them."""
            if not self.ready.is_set() or not self.state.ownership.settled.is_set():
                return
            for result, partition, offset in self.ingestor.score_due():
                await self.send(s.topics.scores, result.model_id.encode(),
                                score_record(result.model_id, partition, offset, *result.scored))
                await self.controller.on_ingest(result)

        if s.snapshots.every_s > 0:
            @app.timer(s.snapshots.every_s)
            async def snapshot() -> None:
                try:
                    await self.take_snapshot()
                except Exception:  # noqa: BLE001 - a snapshot only saves replay time; the worker goes on
                    log.exception("taking a snapshot failed")

        @app.timer(1.0)
        async def rollouts() -> None:
            if self.ready.is_set():
                await self.rollouts.tick()

        @app.timer(1.0)
        async def gauges() -> None:
            self.ingestor.refresh_gauges()
            lag = self.metrics.observe_lag(getattr(app, "consumer", None), self.state.positions, s.topics.experiences)
            self.state.health.note_lag(lag)
            self.incarnation.beat()  # the last second this worker was known alive
            await self.broker_watch.probe()  # at most its timeout (2 s): this timer's other gauges wait meanwhile
            self.metrics.broker_unreachable.set(self.broker_watch.unreachable_s())

    def _register_remedies(self) -> None:
        """Diagnosis and the updates and searches that run on a schedule."""
        app, s = self.app, self.settings

        if s.diagnosis.every_s > 0:
            @app.timer(s.diagnosis.every_s)
            async def diagnose() -> None:
                """The diagnosis rules on the worker's signals; each diagnosis and its remedy are events."""
                if not self.ready.is_set():
                    return
                await self.diagnosis.run()
                self.metrics.quarantined.set(self.state.health.in_quarantine())  # after the remedies: this tick's count

        if s.search.every_s > 0:
            @app.timer(s.search.every_s)
            async def scheduled_search() -> None:
                if self.ready.is_set():
                    for mid in self.state.models:
                        self.controller.request_search(mid, Cause.SCHEDULE, {})

        if s.update.schedule_s > 0:
            @app.timer(s.update.schedule_s)
            async def scheduled() -> None:
                if self.ready.is_set():
                    for mid in self.state.models:
                        self.controller.request(mid, Cause.SCHEDULE, {})
