"""A worker's state, split into its parts: de-duplication, drift watch, forgetting guard, lineage,
held together per model by :class:`ModelState` and for the worker by :class:`WorkerState`."""

from streams.worker.state.dedup import Dedup, SeenIds
from streams.worker.state.drift import DriftAlarm, DriftMonitor, DriftState
from streams.worker.state.guard import GuardState
from streams.worker.state.lineage import Lineage
from streams.worker.state.model import ModelState, WorkerState
from streams.worker.state.ownership import Ownership, home_partition
from streams.worker.state.quota import AgentQuota
from streams.worker.state.trend import ScoreTrend

__all__ = ["AgentQuota", "Dedup", "DriftAlarm", "DriftMonitor", "DriftState", "GuardState", "Lineage", "ModelState", "Ownership", "ScoreTrend",
           "SeenIds", "WorkerState", "home_partition"]
