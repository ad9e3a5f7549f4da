"""Prometheus metrics of a worker (served over HTTP by prometheus-client), with Prometheus naming."""

from __future__ import annotations

import urllib.request

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from streams.worker.access import serve_metrics


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.ingested = Counter("metastream_experiences_ingested_total", "Experiences accepted into a replay buffer", ["model_id"], registry=r)
        self.duplicates = Counter("metastream_experiences_duplicate_total", "Experiences skipped as already counted (same event id)", ["model_id"], registry=r)
        self.rejected = Counter("metastream_experiences_rejected_total", "Messages sent to the DLQ, by reason", ["reason"], registry=r)
        self.drift_alarms = Counter("metastream_drift_alarms_total", "Drift detector alarms", ["model_id", "detector"], registry=r)
        self.published = Counter("metastream_versions_published_total", "Model versions published", ["model_id"], registry=r)
        self.forgetting = Counter("metastream_forgetting_detected_total", "Candidates that lost too much on an old era, by outcome",
                                  ["model_id", "outcome"], registry=r)
        self.versions_rejected = Counter("metastream_versions_rejected_total", "Candidate versions rejected by the promotion gate", ["model_id"], registry=r)
        self.update_seconds = Histogram("metastream_update_duration_seconds", "Duration of an incremental meta-update",
                                        ["model_id"], buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=r)
        self.buffer_bytes = Gauge("metastream_buffer_bytes", "Bytes held by a model's replay buffer", ["model_id"], registry=r)
        self.buffer_tasks = Gauge("metastream_buffer_tasks", "Tasks held by a model's replay buffer", ["model_id"], registry=r)
        self.consumer_lag = Gauge("metastream_consumer_lag_messages", "Messages behind the end of the experiences topic", ["partition"], registry=r)
        self.prequential_loss = Gauge("metastream_prequential_loss", "Recent mean few-shot prequential loss of the champion (the drift signal)", ["model_id"], registry=r)
        self.ready = Gauge("metastream_worker_ready", "1 once the worker has rebuilt its state and consumes", registry=r)
        self.diagnoses = Counter("metastream_diagnoses_total", "Diagnoses made by the rules, by rule and action", ["rule", "action"],
                                 registry=r)
        self.quarantined = Gauge("metastream_agents_quarantined", "Agents whose experiences are refused for now", registry=r)
        self.broker_unreachable = Gauge("metastream_broker_unreachable_seconds", "How long the broker has not answered (0: it answers)",
                                        registry=r)
        self.buffer_bound = Gauge("metastream_buffer_bound_bytes", "The replay buffers' byte bound (all models)", registry=r)
        self.memory_used = Gauge("metastream_memory_used_bytes", "Resident memory of the worker and its update processes", registry=r)
        self.memory_budget = Gauge("metastream_memory_budget_bytes", "The worker's memory budget (the memory_pressure rule's 100%)",
                                   registry=r)
        self.update_processes = Gauge("metastream_update_processes", "Update processes the worker runs (fewer under memory "
                                      "pressure)", registry=r)
        self.champion_latency = Gauge("metastream_champion_p95_latency_ms", "p95 prediction latency agents report for the champion",
                                      ["model_id"], registry=r)
        self.score_trend = Gauge("metastream_score_trend", "Relative change of the champion's held-out error over its last updates",
                                 ["model_id"], registry=r)
        self.drift_observations = Gauge("metastream_drift_observations", "Losses the drift detector has been fed", ["model_id"], registry=r)
        self.candidate_reward = Gauge("metastream_candidate_reward", "Windowed prequential reward (accuracy, or 1 - relative MSE / 4) of a "
                                      "model's champion and shadow candidates on the same incoming tasks", ["model_id", "candidate", "role"], registry=r)
        self.guard_probes = Gauge("metastream_guard_probes", "Held-out probe tasks of the forgetting guard, per era", ["model_id", "era"], registry=r)
        self.era = Gauge("metastream_era", "Drift alarms so far: the era new tasks belong to", ["model_id"], registry=r)
        self.owned = Gauge("metastream_model_owned", "1 for each model id this worker learns and publishes (its partition is assigned here)",
                           ["model_id"], registry=r)
        self.champion_version = Gauge("metastream_champion_version", "Version number of the current champion", ["model_id"], registry=r)
        self.rebuild_seconds = Gauge("metastream_rebuild_seconds", "How long the last rebuild of state from the log took", registry=r)
        self.rebuild_messages = Gauge("metastream_rebuild_messages", "Experience messages the last rebuild replayed", registry=r)
        self.rebuild_from_snapshot = Gauge("metastream_rebuild_from_snapshot", "1 when the last rebuild started from a snapshot",
                                           registry=r)
        self.updates_in_flight = Gauge("metastream_updates_in_flight", "Updates of a model running or waiting their turn "
                                       "(0: its learning has caught up with what it was asked)", ["model_id"], registry=r)
        self.snapshots = Counter("metastream_snapshots_total", "Snapshots of the derived state written", registry=r)

    def forget_model(self, model_id: str) -> None:
        """Drop a model's per-model series when the group moves the model to another worker: its
        owner reports it from then on, so a sum over workers counts each experience once."""
        for metric in (self.ingested, self.duplicates, self.published, self.versions_rejected, self.buffer_bytes, self.buffer_tasks,
                       self.prequential_loss, self.champion_latency, self.score_trend, self.drift_observations, self.era,
                       self.champion_version, self.owned):
            try:
                metric.remove(model_id)
            except KeyError:
                pass

    def forget_partition(self, partition: int) -> None:
        """Drop the lag of a partition this worker no longer reads."""
        try:
            self.consumer_lag.remove(str(partition))
        except KeyError:
            pass

    def observe_lag(self, consumer, positions: dict[int, int], topic: str) -> int:
        """Set each partition's lag from the consumer's high-water marks; returns the total."""
        total = 0
        for partition, position in positions.items():
            try:
                tp = next(tp for tp in consumer.assignment() if tp.topic == topic and tp.partition == partition)
                high = consumer.highwater(tp)
                if high is not None:
                    self.consumer_lag.labels(str(partition)).set(max(high - position, 0))
                    total += max(high - position, 0)
            except Exception:  # noqa: BLE001 - a gauge must never break the worker
                pass
        return total

    def serve(self, port: int, addr: str = "127.0.0.1", token: str = "") -> None:
        serve_metrics(self.registry, port, addr, token)


def parse_metrics(text: str, prefix: str = "metastream_") -> dict[str, float]:
    """Samples of a Prometheus text exposition (``prometheus_client``'s own parser): each sample
    under ``name{label="value",...}`` and, summed over its labels, under its bare name.

    >>> parse_metrics('# TYPE metastream_x gauge\\nmetastream_x{model_id="a"} 2.0\\nmetastream_x{model_id="b"} 3.0\\n')
    {'metastream_x{model_id="a"}': 2.0, 'metastream_x': 5.0, 'metastream_x{model_id="b"}': 3.0}
    """
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith(prefix):
                continue
            if sample.labels:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
                out[sample.name] = out.get(sample.name, 0.0) + sample.value
            else:
                out[sample.name] = sample.value
    return out


def scrape(port: int, host: str = "127.0.0.1", timeout: float = 1.0, token: str = "") -> dict[str, float]:
    """A worker's metrics (see :func:`parse_metrics`), or ``{}`` when its endpoint does not answer
    (or refuses: ``token`` is the worker's access token, if it has one)."""
    request = urllib.request.Request(f"http://{host}:{port}/metrics",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return parse_metrics(text)
