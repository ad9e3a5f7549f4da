"""The signals the diagnosis rules read, computed from the worker's state: per model (the score
trend, the champion's reported p95 latency, how long learning has been stuck) and for the worker
(its memory against its budget, dead letters per second and the agent that sent most of them, lag
growth)."""

from __future__ import annotations

import time
from typing import Any

from streams.settings import Settings
from streams.worker.diagnosis.memory import used_bytes, worker_budget
from streams.worker.state import WorkerState

STUCK_STREAK = 3  # rejected candidates in a row before learning counts as stuck


def gather(state: WorkerState, settings: Settings) -> tuple[dict[str | None, dict[str, float]], dict[str | None, dict[str, Any]]]:
    now = time.monotonic()
    signals: dict[str | None, dict[str, float]] = {}
    for mid, m in state.models.items():
        champion = m.serving.versions.get(m.aliases.champion) if m.aliases.champion is not None else None
        signals[mid] = {
            "score_trend": m.trend.change() if len(m.trend.errors) >= m.trend.window else 0.0,
            "p95_latency_ms": champion.p95_latency() if champion is not None else float("nan"),
            # stuck: candidates keep failing while a drift waits for its answer and the loss has not come
            # back (in a stable regime a converged champion rightly turns most candidates down)
            "stuck_s": now - m.last_published if m.rejected_streak >= STUCK_STREAK and m.drift.unanswered() else 0.0,
        }
    health = state.health
    agent, share, count = health.top_rejected_agent()
    noisy, high_share, tasks = health.loss_outlier()
    signals[None] = {"memory_share": used_bytes() / worker_budget(settings.diagnosis),
                     "dlq_per_s": health.dlq_per_s(), "top_agent_rejected_share": share,
                     "lag_growth_per_s": health.lag_growth_per_s(), "agent_high_loss_share": high_share}
    context = {None: {"agent_id": agent or "", "top_agent_rejected_share_count": count,
                      "noisy_agent_id": noisy or "", "agent_high_loss_share_count": tasks}}
    return signals, context
