"""One round of self-diagnosis, every ``METASTREAM_DIAGNOSE_EVERY_S``: the signals gathered, the
rules evaluated, a remedy for each diagnosis that fired, and a ``DiagnosisCleared`` event for each
earlier diagnosis whose signal is back within its bound (healed, with how long it was open)."""

from __future__ import annotations

import time

from streams.settings import Settings
from streams.worker.diagnosis.broker_watch import BrokerWatch
from streams.worker.diagnosis.engine import Diagnoser
from streams.worker.diagnosis.memory import used_bytes, worker_budget
from streams.worker.diagnosis.remedies import Remedies
from streams.worker.diagnosis.signals import gather
from streams.worker.state import WorkerState


class DiagnosisCycle:
    def __init__(self, state: WorkerState, settings: Settings, diagnoser: Diagnoser, remedies: Remedies,
                 broker: BrokerWatch | None = None) -> None:
        self.state, self.settings, self.diagnoser, self.remedies, self.broker = state, settings, diagnoser, remedies, broker

    async def run(self) -> None:
        signals, context = gather(self.state, self.settings)
        if self.remedies.metrics is not None:  # what the memory rule reads, for a dashboard
            self.remedies.metrics.memory_used.set(used_bytes())
            self.remedies.metrics.memory_budget.set(worker_budget(self.settings.diagnosis))
            pool = getattr(self.remedies.controller, "pool", None)
            if pool is not None:
                self.remedies.metrics.update_processes.set(pool.size)
        if self.broker is not None:
            signals[None]["broker_unreachable_s"] = self.broker.unreachable_s()
        fired = self.diagnoser.evaluate(signals, time.monotonic(), context)
        self.state.health.active = {k: d.to_dict() for k, d in self.diagnoser.in_force.items()}
        for diagnosis in fired:
            await self.remedies.act(diagnosis)
        for cleared in self.diagnoser.take_cleared():
            await self.remedies.cleared(cleared)
        await self.remedies.regrow(time.monotonic())
