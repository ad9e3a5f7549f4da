"""Which model ids this worker owns: those whose experiences' partition the consumer group
assigned to it. A model id is the key of its experiences, so Kafka's default partitioner (murmur2
of the key, as the Java client and aiokafka use) puts all of them on one partition, its home; the
worker that holds that partition is the model's only learner and publisher, and the model moves
with the partition when the group rebalances.

>>> own = Ownership()
>>> own.assign({0}, partitions=2, model_ids=["sine2", "sine-a"])
({'sine2'}, set())
>>> own.owns("sine2"), own.owns("sine-a"), home_partition("sine-a", 2)
(True, False, 1)
>>> own.assign({0, 1}, partitions=2, model_ids=["sine2", "sine-a"])
({'sine-a'}, set())
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Iterable

from aiokafka.partitioner import murmur2


def home_partition(model_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key ``model_id``."""
    return (murmur2(model_id.encode()) & 0x7FFFFFFF) % max(partitions, 1)


def _set(event: asyncio.Event) -> asyncio.Event:
    event.set()
    return event


@dataclass
class Ownership:
    assigned: set[int] = field(default_factory=set)  # experiences partitions the group gave this worker
    partitions: int = 0  # partitions of the experiences topic
    owned: set[str] = field(default_factory=set)
    assigned_once: bool = False
    # clear while the group rebalances: a finished update waits to learn whether its model is still this worker's
    settled: asyncio.Event = field(default_factory=lambda: _set(asyncio.Event()))

    def owns(self, model_id: str) -> bool:
        return model_id in self.owned

    def assign(self, assigned: set[int], partitions: int, model_ids: Iterable[str]) -> tuple[set[str], set[str]]:
        """Take a new assignment; returns the model ids gained and lost (every owned one is gained
        the first time)."""
        owned = {m for m in model_ids if home_partition(m, partitions) in assigned}
        gained = owned if not self.assigned_once else owned - self.owned
        lost = self.owned - owned
        self.assigned, self.partitions, self.owned, self.assigned_once = set(assigned), partitions, owned, True
        return gained, lost
