"""Whether the worker can reach its broker: a metadata request every second with a short timeout,
from a client of its own (the Faust consumer's own requests hang while a broker is stopped, and say
nothing). ``unreachable_s`` is how long requests have gone unanswered: the ``broker_unreachable``
rule's signal, back to 0 at the first answer."""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger("metastream.worker")


class BrokerWatch:
    def __init__(self, bootstrap: str, timeout_s: float = 2.0) -> None:
        self.bootstrap, self.timeout_s = bootstrap, timeout_s
        self.down_since: float | None = None  # monotonic time of the first unanswered probe since the last answer
        self._client = None

    async def probe(self) -> bool:
        """One metadata request; True when the broker answered within the timeout."""
        from aiokafka.client import AIOKafkaClient

        from streams.kafka.connection import client_options

        try:
            if self._client is None:
                self._client = AIOKafkaClient(bootstrap_servers=self.bootstrap, request_timeout_ms=int(self.timeout_s * 1000),
                                              **client_options())
                await asyncio.wait_for(self._client.bootstrap(), self.timeout_s)
            await asyncio.wait_for(self._client.fetch_all_metadata(), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer is the finding
            if self.down_since is None:
                log.warning("the broker at %s does not answer (%s)", self.bootstrap, type(exc).__name__)
                self.down_since = time.monotonic() - self.timeout_s
            if self._client is not None and not self._client._conns:  # never connected: start over next time
                await self.close()
            return False
        if self.down_since is not None:
            log.warning("the broker at %s answers again after %.1fs", self.bootstrap, self.unreachable_s())
        self.down_since = None
        return True

    def unreachable_s(self, now: float | None = None) -> float:
        if self.down_since is None:
            return 0.0
        return (time.monotonic() if now is None else now) - self.down_since

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:  # noqa: BLE001
                pass
