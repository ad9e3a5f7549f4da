"""Run a worker process: the embedded broker when no bootstrap server is configured, the topics,
the metrics endpoint, and the Faust worker (which handles signals and commits offsets)."""

from __future__ import annotations

import asyncio
import logging

from learners.errors import ConfigError

from streams.kafka.broker import EmbeddedBroker, ensure_topics_sync
from streams.kafka.retention import problems, topic_configs
from streams.settings import Settings


def retention_problems(bootstrap: str, settings: Settings) -> list[str]:
    """What the existing topics would delete before the audit trail is done with it (a topic
    created by someone else keeps the cluster's default, 7 days unless set)."""
    configs = settings.topics.configs()
    actual = asyncio.run(topic_configs(bootstrap, configs))
    return problems(configs, actual, settings.topics.governed())


def run_worker(settings: Settings, loglevel: str = "WARNING") -> None:
    """Blocks until the worker is stopped (Ctrl-C / SIGTERM)."""
    import faust  # noqa: F401 - import before building the app so logging is configured once
    from faust.worker import Worker

    from streams.worker.app import WorkerRuntime

    import torch

    torch.set_num_threads(settings.process.torch_threads)
    broker = runtime = None
    bootstrap = settings.broker.bootstrap
    if not bootstrap:
        broker = EmbeddedBroker().start()
        bootstrap = broker.bootstrap
        print(f"embedded broker on {bootstrap}", flush=True)
    try:
        ensure_topics_sync(bootstrap, settings.topics.configs(), settings.broker.partitions, settings.broker.replication_factor,
                           settings.broker.min_insync_replicas)
        for problem in retention_problems(bootstrap, settings):
            print(f"warning: {problem}", flush=True)
        runtime = WorkerRuntime(settings, bootstrap)
        if settings.process.metrics_port:
            try:
                runtime.metrics.serve(settings.process.metrics_port, settings.process.metrics_host, settings.process.access_token)
            except OSError as exc:
                raise ConfigError(f"cannot serve metrics on port {settings.process.metrics_port} ({exc.strerror}): "
                                "pass --metrics-port with a free port, or 0 to turn metrics off") from None
        logging.getLogger("metastream").setLevel(loglevel)
        print(f"worker {settings.broker.app_id} consuming {settings.topics.experiences} on {bootstrap}; "
              f"metrics on :{settings.process.metrics_port or 'off'}", flush=True)
        signer = runtime.controller.signer
        print(f"versions signed with key {signer.key_id}" if signer else
              "versions are UNSIGNED: set METASTREAM_SIGNING_KEY to a key from `metastream keys generate` "
              "so subscribers can tell them from forgeries", flush=True)
        if runtime.rollouts.operators is None:
            print("operators' rollout requests are accepted unsigned: set METASTREAM_OPERATOR_KEYS to the public keys of "
                  "`metastream keys generate` so only their holders can promote or roll back", flush=True)
        runtime.predecessor = runtime.incarnation.begin()  # a mark left behind: the worker before this one crashed
        if runtime.predecessor is not None:
            print(f"the worker before this one (pid {runtime.predecessor.pid}) stopped without a clean shutdown "
                  f"{runtime.predecessor.gap_s():.1f}s ago: rebuilding from the log", flush=True)
        worker = Worker(runtime.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
        worker.spinner = None  # Faust's progress spinner writes terminal control codes; a worker's output is a log
        worker.execute_from_commandline()
    finally:
        if runtime is not None:
            runtime.controller.close()  # the update processes end with the worker (they also watch for it: SIGKILL)
            runtime.incarnation.end()  # a clean shutdown: the next worker here has no crash to report
        if broker:
            broker.stop()
