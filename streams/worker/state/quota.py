"""Per-agent ingest quotas: token buckets of rows and bytes per agent, so one agent's flood cannot
crowd out the others' experiences or the worker's updates (what is over quota goes to the
dead-letter topic, nothing is lost). The buckets run on the messages' log timestamps, not the
worker's clock, so replaying the log after a restart decides exactly as the live run did.

>>> quota = AgentQuota(rows_per_s=10, bytes_per_s=0)
>>> [quota.admit("a", 10, 100, t) is None for t in (0, 0, 0, 1000, 1500)]
[True, True, False, True, False]
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class AgentQuota:
    rows_per_s: float = 0.0  # 0: no limit
    bytes_per_s: float = 0.0
    burst_s: float = 2.0  # a bucket holds this many seconds of its rate
    max_agents: int = 100_000  # buckets kept (the least recently seen agent is forgotten first)
    _buckets: OrderedDict = field(default_factory=OrderedDict)  # agent -> [row tokens, byte tokens, last timestamp ms]

    @property
    def enabled(self) -> bool:
        return self.rows_per_s > 0 or self.bytes_per_s > 0

    def admit(self, agent: str, rows: int, nbytes: int, timestamp_ms: float) -> str | None:
        """Take ``rows`` and ``nbytes`` from ``agent``'s buckets; ``None`` when within its quota,
        else why not (the message is then refused whole and takes nothing)."""
        if not self.enabled:
            return None
        cap_rows, cap_bytes = self.rows_per_s * self.burst_s, self.bytes_per_s * self.burst_s
        bucket = self._buckets.pop(agent, None) or [cap_rows, cap_bytes, timestamp_ms]
        self._buckets[agent] = bucket
        if len(self._buckets) > self.max_agents:
            self._buckets.popitem(last=False)
        elapsed = max(0.0, timestamp_ms - bucket[2]) / 1000
        bucket[0] = min(cap_rows, bucket[0] + elapsed * self.rows_per_s)
        bucket[1] = min(cap_bytes, bucket[1] + elapsed * self.bytes_per_s)
        bucket[2] = max(bucket[2], timestamp_ms)
        if self.rows_per_s > 0 and rows > bucket[0]:
            return f"agent {agent!r} is over its quota of {self.rows_per_s:g} rows/s"
        if self.bytes_per_s > 0 and nbytes > bucket[1]:
            return f"agent {agent!r} is over its quota of {self.bytes_per_s:g} bytes/s"
        bucket[0] -= rows if self.rows_per_s > 0 else 0
        bucket[1] -= nbytes if self.bytes_per_s > 0 else 0
        return None
