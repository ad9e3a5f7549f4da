"""Snapshots of a worker's derived state: what ingest built comes back whole into a fresh state,
the store keeps the newest per set of partitions, and a snapshot the log or the settings no
longer agree with is never used (the broker-side checks are in
tests/integration/test_restart_state.py)."""

import asyncio
import time

import numpy as np
import pytest

from learners.online import EraScore
from streams.settings import Settings


@pytest.fixture
def settings():
    return Settings.of(metrics_port=0)


def _worked_state(settings):
    from streams.worker.state import WorkerState
    from streams.worker.state.health import Quarantine

    state = WorkerState.from_settings(settings)
    model = state.models["sine"]
    rng = np.random.default_rng(0)
    for i in range(12):
        model.buffer.add(f"t{i}", rng.normal(size=(10, 1)).astype("f4"), rng.normal(size=(10, 1)).astype("f4"))
        model.dedup.fresh([f"e{i}-{j}" for j in range(10)])
        model.lineage.note("experiences", 0, i)
    for loss in [0.5] * 200 + [2.0] * 60:
        if model.drift.monitor.update(loss):
            model.drift.era += 1
    model.guard.probes.offer(0, np.zeros((10, 1), "f4"), np.ones((10, 1), "f4"), task_id="p0")
    model.guard.record(3, {0: EraScore.same(61.5)}, parent=2)
    model.new_tasks = 7
    state.positions = {0: 12, 1: 3}
    state.health.add_quarantine("flooder", Quarantine({0: 5}, time.time() * 1000 + 100_000))
    return state


def test_what_ingest_built_comes_back_whole(settings, tmp_path):
    from streams.worker.recovery.snapshots import SnapshotStore, capture, restore
    from streams.worker.state import WorkerState

    state = _worked_state(settings)
    store = SnapshotStore(tmp_path, settings.broker.app_id)
    path = store.save(capture(state, {0, 1}, {0: 40}, settings))
    assert path.exists() and store.paths((0, 1)) == [path]

    fresh = WorkerState.from_settings(settings)
    snapshot = store.load(path)
    assert restore(fresh, snapshot, {"sine"}, first=True) == {"sine"}
    a, b = state.models["sine"], fresh.models["sine"]
    assert b.buffer.digest() == a.buffer.digest() and b.buffer.num_tasks == 12
    assert (b.drift.era, b.drift.monitor.observations) == (a.drift.era, a.drift.monitor.observations) and b.drift.era >= 1
    assert b.dedup.counted == 120 and b.dedup.fresh(["e3-4", "new"]) == [1]
    assert b.guard.best_for(3) == {0: EraScore.same(61.5)} and b.guard.parents == {3: 2} and "p0" in b.guard.probes.ids and b.new_tasks == 7
    assert b.lineage.ranges() == a.lineage.ranges()
    assert fresh.positions == {0: 12, 1: 3} and snapshot.score_starts == {0: 40}
    assert fresh.health.quarantined("flooder", 0, 5) and not fresh.health.quarantined("flooder", 0, 4)


def test_a_later_change_to_the_state_is_not_in_the_snapshot(settings):
    from streams.worker.recovery.snapshots import capture, restore
    from streams.worker.state import WorkerState

    state = _worked_state(settings)
    snapshot = capture(state, {0, 1}, {}, settings)
    state.models["sine"].buffer.add("after", np.zeros((10, 1), "f4"), np.zeros((10, 1), "f4"))
    fresh = WorkerState.from_settings(settings)
    restore(fresh, snapshot, {"sine"}, first=True)
    assert not fresh.models["sine"].buffer.has("after")


def test_the_store_keeps_the_newest_two_per_partition_set_and_skips_what_does_not_load(settings, tmp_path):
    from streams.worker.recovery.snapshots import SnapshotStore, capture

    store = SnapshotStore(tmp_path, settings.broker.app_id)
    state = _worked_state(settings)
    saved = []
    for ms in (1000, 2000, 3000):
        snap = capture(state, {0, 1}, {}, settings)
        snap.taken_ms = ms
        saved.append(store.save(snap))
    other = capture(state, {0}, {}, settings)
    store.save(other)
    assert store.paths((0, 1)) == [saved[2], saved[1]] and len(store.paths((0,))) == 1
    (store.directory / "p0-1.9999.snapshot").write_bytes(b"not a pickle of a snapshot")
    assert store.load(store.paths((0, 1))[0]) is None  # the newest does not load: skipped, not fatal


def test_a_snapshot_of_other_settings_or_ahead_of_the_group_is_not_used(settings, tmp_path):
    from streams.worker.recovery.snapshots import SnapshotStore, capture

    store = SnapshotStore(tmp_path, settings.broker.app_id)
    store.save(capture(_worked_state(settings), {0, 1}, {}, settings))
    # both checks come before the broker is asked anything: no broker is needed to refuse
    ahead = asyncio.run(store.usable({0, 1}, {0: 11, 1: 3}, settings, "127.0.0.1:1"))
    other = asyncio.run(store.usable({0, 1}, {0: 12, 1: 3}, Settings.of(metrics_port=0, guard_probes=8), "127.0.0.1:1"))
    none_there = asyncio.run(store.usable({0}, {0: 12}, settings, "127.0.0.1:1"))
    assert ahead is None and other is None and none_there is None


def test_a_snapshot_someone_else_could_have_written_is_not_unpickled(settings, tmp_path):
    import os
    import stat

    from streams.worker.recovery.snapshots import SnapshotStore, capture, untrusted

    store = SnapshotStore(tmp_path, settings.broker.app_id)
    path = store.save(capture(_worked_state(settings), {0, 1}, {}, settings))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert untrusted(path) is None and store.load(path) is not None
    os.chmod(path, 0o666)  # anyone may write it: a pickle from anyone would run as the worker
    assert "writable" in untrusted(path) and store.load(path) is None
    os.chmod(path, 0o620)
    assert store.load(path) is None
    assert "cannot stat" in untrusted(tmp_path / "gone.snapshot")


def test_a_snapshot_whose_state_is_corrupt_is_skipped_whole_and_an_older_one_used(settings, tmp_path):
    """The file unpickles but the state inside it does not: the store skips it at load, so the
    rebuild takes the older snapshot (or replays the log) instead of restoring half of it."""
    import os

    from streams.worker.recovery.snapshots import SnapshotStore, capture

    store = SnapshotStore(tmp_path, settings.broker.app_id)
    state = _worked_state(settings)
    good = capture(state, {0, 1}, {}, settings)
    good.taken_ms = 1000
    store.save(good)
    bad = capture(state, {0, 1}, {}, settings)
    bad.taken_ms, bad.state = 2000, bad.state[: len(bad.state) // 2]  # cut in the middle
    path = store.save(bad)
    os.chmod(path, 0o600)
    assert store.paths((0, 1))[0] == path and store.load(path) is None
    assert store.load(store.paths((0, 1))[1]).taken_ms == 1000


def test_the_fingerprint_names_the_package_versions(settings, monkeypatch):
    from streams.worker.recovery import snapshots

    before = snapshots.fingerprint(settings)
    monkeypatch.setattr(snapshots, "package_versions", lambda: {"river": "0.0.1"})
    assert snapshots.fingerprint(settings) != before  # after an upgrade the log rebuilds the state
