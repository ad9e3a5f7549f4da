"""A worker's state, split into its parts: de-duplication, drift watch, forgetting guard, lineage,
held together per model by :class:`ModelState` and for the worker by :class:`WorkerState`."""

from .dedup import Dedup, SeenIds
from .drift import DriftAlarm, DriftMonitor, DriftState
from .guard import GuardState
from .lineage import Lineage
from .model import ModelState, WorkerState
from .ownership import Ownership, home_partition
from .quota import AgentQuota
from .trend import ScoreTrend

__all__ = ["AgentQuota", "Dedup", "DriftAlarm", "DriftMonitor", "DriftState", "GuardState", "Lineage", "ModelState", "Ownership", "ScoreTrend",
           "SeenIds", "WorkerState", "home_partition"]
