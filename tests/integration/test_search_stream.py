"""A worker searches a model's hyperparameters on its own, in the update process, and the winner
goes through the same gate as any update: SearchStarted, SearchFinished with the figures, then
VersionPublished (its config carries what the search chose) or VersionRejected."""

import asyncio
import json

from streams.simulation.fleet import SineFleet
from streams.records.wire import Cause, DecisionType
from streams.kafka.topics import read_records

from .conftest import publish_rounds, wait_for


def _events(bootstrap):
    return [rec for _, rec in asyncio.run(read_records(bootstrap, "events", "DecisionEvent"))]


def test_the_worker_runs_a_study_and_gates_its_winner(broker, worker_factory):
    worker = worker_factory(METASTREAM_SEARCH_EVERY_S="3", METASTREAM_SEARCH_COOLDOWN_S="1", METASTREAM_SEARCH_TRIALS="3",
                            METASTREAM_SEARCH_ITERATIONS="10", METASTREAM_UPDATE_ITERATIONS="20",
                            METASTREAM_NEW_TASKS_TRIGGER="100000").start()
    publish_rounds(broker.bootstrap, SineFleet(seed=7), "sine", rounds=3, drift_from=99, tasks=30)

    def searched():
        events = _events(broker.bootstrap)
        finished = [i for i, e in enumerate(events) if e["event_type"] == DecisionType.SEARCH_FINISHED]
        after = [e for e in events[finished[0] + 1:] if e["event_type"] in (DecisionType.VERSION_PUBLISHED,
                                                                           DecisionType.VERSION_REJECTED)] if finished else []
        return (events, finished[0], after[0]) if after else None

    events, at, verdict = wait_for(searched, 120, "a search and the gate's verdict on its winner")
    started = [e for e in events[:at] if e["event_type"] == DecisionType.SEARCH_STARTED]
    assert started and Cause(started[0]["cause"]) is Cause.SCHEDULE
    figures = events[at]["figures"]
    assert figures["trials"] == 3 and figures["finished_trials"] >= 1 and "param_inner_lr" in figures
    if verdict["event_type"] == DecisionType.VERSION_PUBLISHED:
        assert Cause(verdict["cause"]) is Cause.SEARCH
        versions = [rec for _, rec in asyncio.run(read_records(broker.bootstrap, "models", "ModelVersion"))]
        chosen = next(v for v in versions if v["version"] == verdict["version"])
        assert chosen["metrics"]["trigger_search"] == 1.0
        config = json.loads(chosen["config_json"])
        assert config["learner"]["inner_lr"] == figures["param_inner_lr"]
        assert config["continual"]["ewc"] == figures["param_ewc"]
    else:
        assert Cause(verdict["cause"]) in (Cause.WORSE_THAN_CHAMPION, Cause.FORGETTING)
    assert worker.proc.poll() is None

