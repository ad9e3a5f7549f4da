"""Which experiences a model learned from: per (topic, partition), the first and last offset of
the messages ingested for it. A published version names these ranges, so it can be rebuilt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Lineage:
    offsets: dict[tuple[str, int], list[int]] = field(default_factory=dict)  # (topic, partition) -> [first, last]

    def note(self, topic: str, partition: int, offset: int) -> None:
        span = self.offsets.setdefault((topic, partition), [offset, offset])
        span[1] = max(span[1], offset)

    def ranges(self) -> list[dict[str, Any]]:
        """As ``OffsetRange`` records of a ``ModelVersion`` (end inclusive).

        >>> lineage = Lineage()
        >>> for offset in (4, 9, 7): lineage.note("experiences", 0, offset)
        >>> lineage.ranges()
        [{'topic': 'experiences', 'partition': 0, 'start_offset': 4, 'end_offset': 9}]
        """
        return [{"topic": t, "partition": p, "start_offset": lo, "end_offset": hi}
                for (t, p), (lo, hi) in sorted(self.offsets.items())]
