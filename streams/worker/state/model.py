"""A worker's state, in one place: per model id, its learner (the champion), replay buffer,
de-duplication, drift watch, forgetting guard and lineage; and the worker's read positions.

The state is derived from the log: a restarted worker rebuilds it by replaying ``experiences``
(``streams/worker/recovery/rebuild.py``). It is created once and handed to the ingest path, the update controller
and the rebuild, which are the only code that changes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from learners.online import OnlineMetaLearner, ProbeSet, TaskReplayBuffer
from learners.online.shadows import ShadowPool

from streams.worker.rollout.heldout import HeldoutEvidence
from streams.worker.rollout.serving import ServingStats
from streams.records.aliases import Aliases
from streams.settings import Settings
from streams.worker.state.dedup import Dedup
from streams.worker.state.drift import DriftMonitor, DriftState
from streams.worker.state.guard import GuardState
from streams.worker.state.health import Health
from streams.worker.state.lineage import Lineage
from streams.worker.state.ownership import Ownership
from streams.worker.state.quota import AgentQuota
from streams.worker.state.regime import RegimeWatch
from streams.worker.state.trend import ScoreTrend


@dataclass(frozen=True)
class Published:
    """A published version as the worker keeps it to go back to: its weights and the learner
    config they belong to (a search's winner changes rates, strengths, even the architecture)."""

    weights: bytes
    config: dict[str, Any] | None = None  # None: the model's configured learner


def same_config(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal as JSON (a config read back from a record has lists where the live one had tuples)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


@dataclass
class ModelState:
    model_id: str
    learner: OnlineMetaLearner
    buffer: TaskReplayBuffer
    drift: DriftState
    guard: GuardState
    dedup: Dedup = field(default_factory=Dedup)
    lineage: Lineage = field(default_factory=Lineage)
    version: int = 0  # the newest version number published (0: none yet)
    weights_version: int = 0  # the version whose weights the learner holds (0: its configured initial weights)
    new_tasks: int = 0  # tasks first seen since the last update started
    trend: ScoreTrend = field(default_factory=ScoreTrend)
    last_search: float = -float("inf")  # time.monotonic() when the last search started
    aliases: Aliases = field(default_factory=Aliases)  # champion, canary, challenger (rebuilt from the events on the log)
    serving: ServingStats = field(default_factory=ServingStats)  # the agents' reported losses per version
    published: dict[int, Published] = field(default_factory=dict)  # the latest published versions (to go back to)
    rejected_streak: int = 0  # candidates rejected in a row
    last_published: float = field(default_factory=lambda: __import__("time").monotonic())  # when a version last went out
    shadows: ShadowPool | None = None  # shadow candidates, when the model's config names some
    challenging: str | None = None  # the shadow whose challenge is under way
    cold_start_pending: bool = False  # adopted by the new-models policy: its first scored tasks choose where it starts
    last_message: tuple[int, int] | None = None  # (partition, offset) of the last experience message ingested for it
    regime: RegimeWatch = field(default_factory=RegimeWatch)  # where a mixture's scored tasks route
    task_agent: dict[str, str] = field(default_factory=dict)  # buffered task -> the agent that sent it (a quarantine purges them)
    heldout: HeldoutEvidence = field(default_factory=HeldoutEvidence)  # a rollout's canary and champion on the same fresh tasks

    def note_agent(self, task_ids, agent_id: str | None) -> None:
        """Who sent these buffered tasks; forgets tasks the buffer no longer holds once it has twice as many."""
        if agent_id:
            self.task_agent.update(dict.fromkeys(task_ids, agent_id))
        if len(self.task_agent) > 2 * max(self.buffer.num_tasks, 1024):
            self.task_agent = {t: a for t, a in self.task_agent.items() if self.buffer.has(t)}

    def purge_agent(self, agent_id: str) -> int:
        """Drop an agent's buffered tasks (its data was judged noise): returns how many went."""
        gone = [t for t, a in self.task_agent.items() if a == agent_id]
        for tid in gone:
            if self.buffer.has(tid):
                self.buffer.remove(tid)
            del self.task_agent[tid]
        return len(gone)

    def remember(self, version: int, weights: bytes, config: dict[str, Any] | None = None, keep: int = 8) -> None:
        """Keep a published version's weights and config: the newest ``keep``, and those an alias
        names (a rollback reverts to the champion, however many versions came since)."""
        self.published[version] = Published(weights, config)
        pinned = {self.aliases.champion, self.aliases.canary, self.aliases.challenger}
        for old in sorted(self.published)[:-keep]:
            if old not in pinned:
                del self.published[old]

    def learner_of(self, version: int) -> OnlineMetaLearner | None:
        """A learner of its own holding a remembered published version's weights (None: not remembered)."""
        kept = self.published.get(version)
        if kept is None:
            return None
        learner = OnlineMetaLearner(kept.config if kept.config is not None else self.learner.config)
        learner.load_weights(kept.weights)
        return learner

    def observe_rollout(self, batch, steps: int | None = None) -> None:
        """A running rollout's canary and champion scored on ``batch``, fresh tasks (``rollout/heldout.py``)."""
        a = self.aliases
        if a.canary is not None and a.champion is not None and batch is not None:
            self.heldout.observe(a.champion, a.canary, batch, self.learner_of, steps)

    def load_version(self, version: int) -> bool:
        """Learn on from a remembered published version: its weights in a learner of its own config
        (False when it is not remembered). Loading a searched version's weights into the configured
        learner would score and train them with rates they were not meta-learned for."""
        kept = self.published.get(version)
        if kept is None:
            return False
        if kept.config is not None and not same_config(kept.config, self.learner.config):
            self.learner = OnlineMetaLearner(kept.config)
        self.learner.load_weights(kept.weights)
        self.weights_version = version
        return True


@dataclass
class WorkerState:
    models: dict[str, ModelState]  # the model ids this worker owns (all configured ones until the group assigns partitions)
    positions: dict[int, int] = field(default_factory=dict)  # partition of experiences -> next offset to read
    request_floor: dict[int, int] = field(default_factory=dict)  # partition of events -> first offset of a request to act on
    health: Health = field(default_factory=Health)
    quota: AgentQuota = field(default_factory=AgentQuota)  # per-agent ingest quotas (off by default)
    ownership: Ownership = field(default_factory=Ownership)
    settings: Settings | None = None
    adopted: set[str] = field(default_factory=set)  # model ids the new-models policy took on
    configs: dict[str, dict] = field(default_factory=dict)  # model id -> config: the configured ones and those adopted

    @classmethod
    def from_settings(cls, settings: Settings) -> "WorkerState":
        """Fresh state for every configured model: the learners' initial weights, empty buffers
        (the byte budget shared equally), fresh detectors and probe sets."""
        state = cls({}, quota=AgentQuota(settings.ingest.agent_rows_per_s, settings.ingest.agent_bytes_per_s), settings=settings,
                    configs=dict(settings.catalog.models))
        for mid in state.configs:
            state.models[mid] = state.fresh_model(mid)
        return state

    def fresh_model(self, model_id: str) -> ModelState:
        """A model's state as it is before any experience: its configured weights, an empty buffer,
        a fresh detector and probe set (a worker that gains a model rebuilds it from here)."""
        s = self.settings
        cfg = {k: v for k, v in self.configs[model_id].items() if k != "shadows"}  # the champion's own config
        per_model_bytes = int(s.ingest.buffer_mb * 2**20 / max(len(self.configs), 1))
        model = ModelState(model_id, OnlineMetaLearner(cfg), TaskReplayBuffer(per_model_bytes, s.ingest.max_points_per_task),
                           DriftState(DriftMonitor(s.drift.detector)), GuardState(ProbeSet(s.guard.probes)),
                           trend=ScoreTrend(s.search.window, s.search.trend, s.search.trend_t, fresh=s.update.heldout_tasks))
        if self.configs[model_id].get("shadows"):  # shadows start from their own seeded weights, not a checkpoint's
            model.shadows = ShadowPool.from_config(cfg, self.configs[model_id]["shadows"], window=s.shadow.window,
                                                   margin=s.shadow.margin, min_tasks=s.shadow.min_tasks,
                                                   exploration=s.shadow.exploration)
        if cfg.get("checkpoint"):  # a model folder: start from its weights
            model.learner.load_weights((Path(cfg["checkpoint"]) / "model.safetensors").read_bytes())
        return model

    def __getitem__(self, model_id: str) -> ModelState:
        return self.models[model_id]
