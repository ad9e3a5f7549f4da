"""Snapshots of a worker's derived state, so that a restart replays only the log written since
the last one instead of the whole log (the soak measured a restart growing from 13 s to 245 s
as the log grew). Like a Faust table's local store beside its changelog: the log stays the
truth, a snapshot only says "this is the state after these offsets".

A snapshot holds, per model, what the ingest path built (replay buffer, drift watch, forgetting
guard, de-duplication, lineage, score trend), the worker's agent quotas and quarantines, and
where it stood: the next offset per partition of ``experiences`` and the end of ``scores`` just
before it was taken. It is used only when the log still agrees with it:

- the same settings that decide what ingest keeps (``fingerprint``);
- the group has committed at least as far on every partition (else the restarted consumer would
  deliver messages the snapshot already holds): the newest such snapshot is taken;
- the message just before each position is the one the snapshot saw (its ``anchors``), so a
  snapshot of another cluster, or of a topic deleted and recreated, is never loaded.

Anything else falls back to replaying the whole log. Snapshots are pickles in the worker's own
directory (``METASTREAM_SNAPSHOT_DIR``): trusted like the worker's code, never read from Kafka,
written readable by the worker's user alone, and loaded only when no other user could have
written them (:func:`untrusted`).
They are written per set of partitions (``p0-1``), so a worker that gains partitions at a
rebalance can start from the snapshot the previous owner left, when it shares the directory.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

from streams.settings import Settings
from streams.worker.state import ModelState
from streams.worker.state import WorkerState
from streams.kafka.topics import read_range

log = logging.getLogger("metastream.snapshots")

FORMAT = 3  # raised whenever the pickled state's classes change shape: an older snapshot is then not used
PARTS = ("buffer", "drift", "guard", "dedup", "lineage", "trend", "new_tasks")  # what ingest builds, per model


def fingerprint(settings: Settings, configs: dict | None = None) -> str:
    """What decides the derived state besides the log: ingest's settings and the models' configs
    (``configs``: the worker's, adopted models included; default: the configured ones)."""
    configs = settings.catalog.models if configs is None else configs
    data = {"format": FORMAT, "replay": settings.replay_settings(), "models": configs,
            "buffer_mb": settings.ingest.buffer_mb, "drift_group": settings.drift.group, "packages": package_versions()}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


STATE_PACKAGES = ("metastream", "river", "torch", "numpy")  # whose classes a snapshot pickles


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """The versions of the packages whose objects a snapshot holds: after an upgrade the state is
    rebuilt from the log rather than unpickled into classes that may have changed."""
    found = {}
    for name in STATE_PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["metastream_source"] = source_digest()  # a checkout changes its code without changing its version
    return found


def source_digest() -> str:
    """SHA-256 of this project's Python source (learners, streams, schemas), 16 hex digits."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[3]
    for package in ("learners", "streams", "schemas"):
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def anchor_of(value: bytes | None, timestamp: int) -> str:
    return hashlib.sha256((value or b"") + str(timestamp).encode()).hexdigest()


@dataclass
class Snapshot:
    partitions: tuple[int, ...]
    positions: dict[int, int]  # experiences partition -> next offset to ingest
    score_starts: dict[int, int]  # scores partition -> its end just before the snapshot was taken
    taken_ms: int
    fingerprint: str
    state: bytes  # pickled {"models": {id: {part: value}}, "quota": ..., "quarantine": {agent: [Quarantine]}}
    anchors: dict[int, str] = field(default_factory=dict)  # partition -> anchor_of the message before its position

    @property
    def name(self) -> str:
        return f"p{'-'.join(map(str, self.partitions))}.{self.taken_ms}.snapshot"


def capture(state: WorkerState, partitions: set[int], score_starts: dict[int, int], settings: Settings) -> Snapshot:
    """The state now, frozen (pickled at once: ingest goes on changing it). Synchronous, so it
    falls between two ingested messages."""
    models = {mid: {part: getattr(model, part) for part in PARTS} for mid, model in state.models.items()}
    blob = pickle.dumps({"models": models, "quota": state.quota, "quarantine": state.health.quarantine},
                        protocol=pickle.HIGHEST_PROTOCOL)
    positions = {p: state.positions[p] for p in sorted(partitions) if p in state.positions}
    return Snapshot(tuple(sorted(partitions)), positions, dict(score_starts), int(time.time() * 1000),
                    fingerprint(settings, state.configs), blob)


async def read_anchors(bootstrap: str, topic: str, positions: dict[int, int]) -> dict[int, str]:
    """The anchor of the message just before each position (partitions at 0 have none)."""
    out = {}
    for partition, position in positions.items():
        if position <= 0:
            continue
        async for msg in read_range(bootstrap, topic, {partition: position}, first=position - 1, partition=partition):
            if msg.offset == position - 1:
                out[partition] = anchor_of(msg.value, msg.timestamp)
            break
    return out


class SnapshotStore:
    """The snapshot files of one consumer group: ``<dir>/<app id>/p<partitions>.<taken ms>.snapshot``,
    the newest ``keep`` per set of partitions."""

    def __init__(self, directory: str | Path, app_id: str, keep: int = 2) -> None:
        self.directory = Path(directory) / app_id
        self.keep = keep

    def save(self, snapshot: Snapshot) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / snapshot.name
        tmp = path.with_suffix(".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:  # the worker's alone
            pickle.dump(snapshot, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # whole or not at all: a kill mid-write leaves the previous ones
        for old in self.paths(snapshot.partitions)[self.keep:]:
            old.unlink(missing_ok=True)
        return path

    def paths(self, partitions: tuple[int, ...]) -> list[Path]:
        """Snapshot files of exactly these partitions, newest first."""
        prefix = f"p{'-'.join(map(str, partitions))}."
        found = [p for p in self.directory.glob(prefix + "*.snapshot") if p.name.count(".") == 2]
        return sorted(found, key=lambda p: int(p.name.split(".")[1]) if p.name.split(".")[1].isdigit() else -1, reverse=True)

    def load(self, path: Path) -> Snapshot | None:
        why = untrusted(path)
        if why:
            log.warning("snapshot %s is not loaded: %s (a snapshot is unpickled, so only the worker's user may write it; "
                        "chown it to that user and chmod go-w, or delete it)", path, why)
            return None
        try:
            with open(path, "rb") as f:
                snapshot = pickle.load(f)
            if not isinstance(snapshot, Snapshot):
                raise TypeError(f"it holds a {type(snapshot).__name__}, not a Snapshot")
            state_of(snapshot)  # the state inside is whole too: restore() must not find out half-way
            return snapshot
        except Exception as exc:  # noqa: BLE001 - an unreadable snapshot only costs a longer replay
            log.warning("snapshot %s does not load (%s: %s): it is skipped (an older one, or the log, rebuilds the "
                        "state)", path, type(exc).__name__, exc)
            return None

    async def usable(self, partitions: set[int], committed: dict[int, int], settings: Settings,
                     bootstrap: str, configs: dict | None = None) -> Snapshot | None:
        """The newest snapshot of exactly ``partitions`` that the log still agrees with (module docstring)."""
        for path in self.paths(tuple(sorted(partitions))):
            snapshot = self.load(path)
            if snapshot is None:
                continue
            if snapshot.fingerprint != fingerprint(settings, configs):
                log.info("snapshot %s was taken under other settings: not used", path.name)
                continue
            ahead = {p: o for p, o in snapshot.positions.items() if o > committed.get(p, 0)}
            if ahead:
                log.info("snapshot %s is ahead of the group's committed offsets on %s: trying an older one", path.name, ahead)
                continue
            if await read_anchors(bootstrap, settings.topics.experiences, snapshot.positions) != snapshot.anchors:
                log.warning("snapshot %s does not match the log (another cluster, or the topic was recreated): not used", path.name)
                continue
            return snapshot
        return None


def untrusted(path: Path) -> str | None:
    """Why a snapshot file may hold someone else's bytes (``None``: it may not): owned by another
    user than the worker's (or root), or writable by its group or by anyone (as ssh treats its keys)."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot stat it ({exc.strerror})"
    if st.st_uid not in (os.getuid(), 0):
        return f"owned by uid {st.st_uid}, not this worker's ({os.getuid()})"
    if st.st_mode & 0o022:
        return f"writable by its group or by anyone (mode {st.st_mode & 0o777:o})"
    return None


def state_of(snapshot: Snapshot) -> dict:
    """The state a snapshot holds, checked for the parts :func:`restore` reads."""
    data = pickle.loads(snapshot.state)
    if not isinstance(data, dict) or not {"models", "quota", "quarantine"} <= set(data):
        raise ValueError("its state lacks models, quota or quarantine")
    if not all(isinstance(parts, dict) for parts in data["models"].values()):
        raise ValueError("a model's parts are not a mapping")
    return data


def restore(state: WorkerState, snapshot: Snapshot, models: set[str], first: bool) -> set[str]:
    """Put the snapshot's parts of ``models`` into ``state`` (and, at a first assignment, the
    worker's quotas and quarantines). Returns the models restored."""
    data = state_of(snapshot)
    restored = set()
    for mid, parts in data["models"].items():
        model: ModelState | None = state.models.get(mid)
        if mid not in models or model is None:
            continue
        for part, value in parts.items():
            setattr(model, part, value)
        model.drift.token_time = time.monotonic()  # the token bucket runs on this process's clock
        restored.add(mid)
    if first:
        state.quota = data["quota"]
        for agent, spells in data["quarantine"].items():  # on the log's clock: they mean the same here
            for q in spells:
                state.health.add_quarantine(agent, q)
    state.positions.update(snapshot.positions)
    return restored
