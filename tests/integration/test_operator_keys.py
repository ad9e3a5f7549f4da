"""Access to rollouts: a worker given operators' public keys acts only on requests signed with one
of their private keys; an unsigned request (anyone who can write to the events topic) is refused
with a RequestRefused event, which `rollout start --wait` reports as an error."""

import asyncio
import os
import subprocess
import sys

from streams.kafka.topics import read_records
from streams.records.signing import Signer
from streams.records.wire import DecisionType
from streams.simulation.fleet import SineFleet

from .conftest import ROOT, publish_until, wait_for


def cli(bootstrap, *args):
    env = {**os.environ, "METASTREAM_KAFKA": bootstrap, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=90)


def test_an_unsigned_request_is_refused_and_a_signed_one_acted_on(broker, worker_factory, tmp_path):
    operator = Signer.generate()
    (tmp_path / "operator.pem").write_bytes(operator.private_pem())
    (tmp_path / "operator.pub").write_bytes(operator.public_pem())
    worker = worker_factory(METASTREAM_OPERATOR_KEYS=str(tmp_path / "operator.pub")).start()
    def two_versions():  # a slower machine needs more tasks before its second version: publish until there are two
        return worker.metrics().get("metastream_versions_published_total", 0) >= 2

    publish_until(broker.bootstrap, SineFleet(seed=5), "sine", two_versions, drifted=False, tries=20)
    wait_for(two_versions, 120, "two published versions")

    unsigned = cli(broker.bootstrap, "rollout", "start", "sine", "--version", "1", "--wait", "--timeout", "60")
    assert unsigned.returncode == 2 and "the worker refused the request" in unsigned.stderr, unsigned.stderr[-2000:]
    assert "it is unsigned" in unsigned.stderr

    signed = cli(broker.bootstrap, "rollout", "start", "sine", "--version", "1", "--wait", "--timeout", "60",
                 "--operator-key", str(tmp_path / "operator.pem"))
    assert signed.returncode == 0 and "the worker decided: RolloutStarted v1" in signed.stderr, signed.stderr[-2000:]
    events = [rec for _, rec in asyncio.run(read_records(broker.bootstrap, "events", "DecisionEvent"))]
    refused = [e for e in events if e["event_type"] == DecisionType.REQUEST_REFUSED]
    assert len(refused) == 1 and refused[0]["cause"] == "unauthorised"
    requests = [e for e in events if e["event_type"] == DecisionType.ROLLOUT_REQUESTED]
    assert [bool(e["signature"]) for e in requests] == [False, True] and requests[1]["key_id"] == operator.key_id
