"""Stable cohorts: an agent's place in ``[0, 100)`` for a model is a hash of both ids, so it sees
one version consistently, and exactly the agents below the canary share see the canary. As the
share grows (5 -> 25 -> 50 -> 100) the agents already on the canary stay on it.

>>> c = cohort("agent-7", "sine")
>>> c == cohort("agent-7", "sine") and 0 <= c < 100
True
>>> share = sum(cohort(f"a{i}", "sine") < 25 for i in range(4000)) / 4000
>>> 0.23 < share < 0.27
True
"""

from __future__ import annotations

import hashlib


def cohort(agent_id: str, model_id: str) -> float:
    """The agent's position in ``[0, 100)`` for this model (uniform over agents)."""
    digest = hashlib.sha256(f"{model_id}\x00{agent_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100
