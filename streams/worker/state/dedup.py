"""De-duplication by event id: at-least-once delivery re-sends experiences, and a worker counts
each event id once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence


class SeenIds:
    """Ids already counted, bounded: two generations of plain sets, the older dropped when the newer
    fills up, so memory stays below ``capacity`` ids and look-ups stay O(1).

    >>> seen = SeenIds(capacity=4)
    >>> seen.update(["a", "b"])
    >>> "a" in seen, "c" in seen, len(seen)
    (True, False, 2)
    """

    def __init__(self, capacity: int = 5_000_000) -> None:
        self.capacity = capacity
        self._new: set[str] = set()
        self._old: set[str] = set()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._new or event_id in self._old

    def add(self, event_id: str) -> None:
        self._new.add(event_id)
        if len(self._new) >= self.capacity // 2:
            self._old, self._new = self._new, set()

    def update(self, event_ids: Iterable[str]) -> None:
        self._new.update(event_ids)
        if len(self._new) >= self.capacity // 2:  # checked per batch: a generation may run one batch over
            self._old, self._new = self._new, set()

    def isdisjoint(self, event_ids: Iterable[str]) -> bool:
        return self._new.isdisjoint(event_ids) and self._old.isdisjoint(event_ids)

    def __len__(self) -> int:
        return len(self._new) + len(self._old)

    def __getstate__(self) -> dict:
        """Pickled as two joined strings, three times faster than a set of millions of ids (a
        snapshot pauses ingest while it pickles); ids that hold the separator stay a set.

        >>> import pickle
        >>> seen = SeenIds(capacity=8); seen.update(["a", "b" + chr(30), "c"])
        >>> back = pickle.loads(pickle.dumps(seen)); sorted(back._new) == ["a", "b" + chr(30), "c"], len(back)
        (True, 3)
        """
        return {"capacity": self.capacity, "new": _pack(self._new), "old": _pack(self._old)}

    def __setstate__(self, state: dict) -> None:
        self.capacity = state["capacity"]
        self._new, self._old = _unpack(state["new"]), _unpack(state["old"])


_SEP = "\x1e"  # ASCII record separator


def _pack(ids: set[str]) -> str | set[str]:
    joined = _SEP.join(ids)
    return joined if joined.count(_SEP) == max(len(ids) - 1, 0) else set(ids)


def _unpack(packed: str | set[str]) -> set[str]:
    if isinstance(packed, set):
        return packed
    return set(packed.split(_SEP)) if packed else set()


@dataclass
class Dedup:
    """A model's event ids seen so far, and how many experiences it counted and skipped."""

    seen: SeenIds = field(default_factory=SeenIds)
    counted: int = 0
    duplicates: int = 0

    def fresh(self, event_ids: Sequence[str]) -> list[int]:
        """Rows of ``event_ids`` not counted before (a retry can repeat ids inside one batch too),
        marked as seen now and counted.

        >>> d = Dedup()
        >>> d.fresh(["a", "b", "a"]), d.fresh(["b", "c"]), (d.counted, d.duplicates)
        ([0, 1], [1], (3, 2))
        """
        if len(set(event_ids)) == len(event_ids) and self.seen.isdisjoint(event_ids):  # the usual case: all new
            self.seen.update(event_ids)
            self.counted += len(event_ids)
            return list(range(len(event_ids)))
        first: dict[str, int] = {}
        for i, eid in enumerate(event_ids):
            if eid not in self.seen and eid not in first:
                first[eid] = i
        self.seen.update(first)
        self.counted += len(first)
        self.duplicates += len(event_ids) - len(first)
        return list(first.values())
