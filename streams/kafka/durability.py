"""How producers write: every producer of metastream waits for all in-sync replicas (``acks=all``;
with ``acks=1`` an acknowledged record is lost when its leader fails before a follower copied it),
and is idempotent (no duplicate from a retried send) where the broker can give it a producer id.

The embedded broker (Tansu) advertises InitProducerId but answers it with an error, and an
idempotent aiokafka producer then never sends; so support is asked of the broker once per
bootstrap address, by that very request, and its absence is said once in the log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("metastream.durability")
_known: dict[str, bool] = {}


async def supports_idempotence(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """Whether the broker hands out producer ids (cached per bootstrap address)."""
    if bootstrap in _known:
        return _known[bootstrap]
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.transaction import InitProducerIdRequest

    from streams.kafka.connection import client_options

    client = AIOKafkaClient(bootstrap_servers=bootstrap, **client_options())
    try:
        await client.bootstrap()
        response = await asyncio.wait_for(client.send(client.get_random_node(), InitProducerIdRequest(None, 60000)), timeout_s)
        ok = response.error_code == 0
    except Exception:  # noqa: BLE001 - an unsupported request, an error answer or no answer all mean no
        ok = False
    finally:
        await client.close()
    if not ok:
        log.warning("the broker at %s gives no producer ids: producers are not idempotent there "
                    "(a retried send may write a record twice; workers drop such duplicates by event id)", bootstrap)
    _known[bootstrap] = ok
    return ok


async def producer_options(bootstrap: str) -> dict[str, Any]:
    """Keyword arguments for an ``AIOKafkaProducer`` on ``bootstrap``."""
    return {"acks": "all", "enable_idempotence": await supports_idempotence(bootstrap)}
