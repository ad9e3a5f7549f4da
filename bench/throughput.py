"""Experiences per second through a worker's whole ingest path (decode, validate, de-duplicate,
buffer, prequential loss, drift), beside a Faust agent that does nothing per message and raw aiokafka
consumption, on the same broker and the same messages (ExperienceBatch, 64 experiences each). The
table also counts the torch calls the ingest path makes per message (on the path alone, in this
process), since where a small torch call is dear the ratio falls with that count.

    python bench/throughput.py [--messages 4000]

Each consumer runs in its own process, one after the other, reading the topic from the start.
The ratio to the do-nothing agent is taken by CPU time a message (every thread of the consumer's
process, median of the runs): by wall time the do-nothing agent alternates between runs bound by
its CPU (about 10,000 messages/s on a 2-core x86_64) and runs where it waits on fetches (about
3,600; py-spy: its main thread idle in epoll 60% of the time), so a rate ratio compares the ingest
path, CPU-bound in every run (idle 7%), with a peer that may be waiting. The rate ratio (best run
of each) is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_json, print_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "bench-experiences"


async def produce(bootstrap: str, messages: int, rows: int) -> int:
    from aiokafka import AIOKafkaProducer

    from schemas import AvroCodec
    from schemas.experiences import make_batch_record
    from streams.simulation.fleet import SineFleet

    codec = AvroCodec("ExperienceBatch")
    fleet = SineFleet(seed=0, points_per_task=40)
    batches = fleet.batches(rows)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, enable_idempotence=False, linger_ms=20,
                                max_batch_size=1 << 20)
    await producer.start()
    size = 0
    for i in range(messages):
        tids, x, y = next(batches)
        data = codec.encode(make_batch_record("sine", x, y, tids, event_ids=[f"{i}-{k}" for k in range(rows)]))
        size = len(data)
        await producer.send(TOPIC, data, key=b"sine")
    await producer.flush()
    await producer.stop()
    return size


async def consume_raw(bootstrap: str, messages: int, group: str = "bench-raw") -> dict:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    n, counted, start = 0, 0, None
    while n < messages:
        batch = await consumer.getmany(timeout_ms=1000, max_records=500)
        got = sum(len(m) for m in batch.values())
        n += got
        if start is None and got:
            start = time.perf_counter()  # the clock starts once the first fetch is in: count what follows
        elif start is not None:
            counted += got
    seconds = time.perf_counter() - start
    await consumer.stop()
    return {"messages": counted, "seconds": seconds}


def run_faust(bootstrap: str, messages: int, mode: str, group: str) -> None:
    """In a child process: a Faust worker whose agent does nothing (noop) or the real ingest path."""
    import faust  # noqa: F401
    from faust.worker import Worker

    from streams.worker.app import WorkerRuntime
    from streams.settings import Settings

    settings = Settings.of(kafka=bootstrap, metrics_port=0, web_port=0, experiences_topic=TOPIC, partitions=1,
                        new_tasks_trigger=10**12, app_id=group)
    runtime = WorkerRuntime(settings, bootstrap)
    for started in runtime.controller.warm_up():  # steady state: the update processes have imported torch before the clock
        started.result()
    app = runtime.app
    marks = {"n": 0, "start": None, "cpu": None}

    def done() -> None:
        seconds = time.perf_counter() - marks["start"]
        cpu = time.process_time() - marks["cpu"]  # every thread of the process: Faust's fetcher too
        print("RESULT " + json.dumps({"messages": marks["n"], "seconds": seconds, "cpu_seconds": cpu}), flush=True)
        os._exit(0)

    if mode == "noop":
        app.agents.pop(next(name for name in app.agents if name.endswith("ingest")))

        @app.agent(runtime.topics[TOPIC], name="noop")
        async def noop(stream):
            async for _event in stream.events():
                if marks["start"] is None:
                    marks["start"], marks["cpu"] = time.perf_counter(), time.process_time()
                marks["n"] += 1
                if marks["n"] >= messages:
                    done()
    else:
        original = runtime.ingestor.ingest

        def counting(*args, **kwargs):
            if marks["start"] is None:
                marks["start"], marks["cpu"] = time.perf_counter(), time.process_time()
            result = original(*args, **kwargs)
            marks["n"] += 1
            if marks["n"] >= messages:
                done()
            return result

        runtime.ingestor.ingest = counting
    Worker(app, loglevel=os.environ.get("BENCH_LOGLEVEL", "WARNING"), quiet=True, redirect_stdouts=False).execute_from_commandline()


def child(mode: str, bootstrap: str, messages: int, run: int = 0) -> dict:
    """One consumer reading the topic from the start, in a process of its own (a fresh consumer
    group for each run: each reads everything)."""
    import signal
    import tempfile

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # output goes to a file, not a pipe: the worker's update process would hold a pipe open
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([sys.executable, __file__, "--child", mode, "--bootstrap", bootstrap, "--messages", str(messages),
                                 "--group", f"bench-{mode}-{run}"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            proc.wait(600)
        finally:  # the child ends with os._exit: its update processes and resource tracker go with its group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        out.seek(0)
        text = out.read()
    for line in text.splitlines():
        if "RESULT " in line:  # Faust may leave terminal escape codes before it
            return json.loads(line.split("RESULT ", 1)[1])
    raise RuntimeError(f"{mode} run failed:\n{text[-3000:]}")


def count_torch_calls(messages: int, rows: int) -> dict:
    """The ingest path alone (no Kafka, no Faust), in this process: torch calls and microseconds
    per message over the same kind of messages, so that a machine's per-call cost cannot hide in
    the ratio. A torch call is one Python-level call into torch (a function or a tensor method, as
    ``__torch_function__`` sees it), inside ``torch.func`` transforms too."""
    import torch
    from prometheus_client import CollectorRegistry
    from torch.overrides import TorchFunctionMode

    from schemas import AvroCodec
    from schemas.experiences import make_batch_record
    from streams.simulation.fleet import SineFleet
    from streams.worker.ingest import Ingestor
    from streams.worker.metrics import WorkerMetrics
    from streams.settings import Settings
    from streams.worker.state import WorkerState

    class Counting(TorchFunctionMode):
        calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            Counting.calls += 1
            return func(*args, **(kwargs or {}))

    torch.set_num_threads(1)
    codec, fleet = AvroCodec("ExperienceBatch"), SineFleet(seed=0, points_per_task=40)
    batches = fleet.batches(rows)
    data = []
    for i in range(messages):
        tids, x, y = next(batches)
        data.append(codec.encode(make_batch_record("sine", x, y, tids, event_ids=[f"{i}-{k}" for k in range(rows)])))
    settings = Settings.of(new_tasks_trigger=10**12, partitions=1)
    state = WorkerState.from_settings(settings)
    state.ownership.assign({0}, 1, state.configs)
    ingestor = Ingestor(state, settings, WorkerMetrics(CollectorRegistry()))
    scored = 0
    start = time.perf_counter()
    with Counting():
        for offset, value in enumerate(data):
            scored += ingestor.ingest(value, b"sine", TOPIC, 0, offset).scored is not None
            scored += len(ingestor.score_due())
    seconds = time.perf_counter() - start
    return {"torch_calls_per_message": Counting.calls / messages, "us_per_message_counted": 1e6 * seconds / messages,
            "scorings": scored}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5, help="runs of each consumer; the table gives the best rate of each")
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--child", choices=["noop", "ingest", "raw"])
    ap.add_argument("--bootstrap")
    ap.add_argument("--group", default="bench")
    args = ap.parse_args()
    if args.child in ("noop", "ingest"):
        import torch

        torch.set_num_threads(1)
        run_faust(args.bootstrap, args.messages, args.child, args.group)
        return
    if args.child == "raw":
        print("RESULT " + json.dumps(asyncio.run(consume_raw(args.bootstrap, args.messages, args.group))), flush=True)
        return

    from streams.kafka.broker import EmbeddedBroker, ensure_topics

    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap, [TOPIC], 1))
        size = asyncio.run(produce(broker.bootstrap, args.messages, args.rows))
        runs: dict[str, list[float]] = {"raw": [], "noop": [], "ingest": []}
        cpu: dict[str, list[float]] = {"noop": [], "ingest": []}  # CPU µs a message, every thread of the consumer
        for run in range(args.repeats):  # interleaved, so that a slow spell of the machine hits every consumer alike
            for mode in runs:
                r = child(mode, broker.bootstrap, args.messages, run)
                runs[mode].append(r["messages"] / r["seconds"])
                if mode in cpu:
                    cpu[mode].append(1e6 * r["cpu_seconds"] / r["messages"])
    counted = count_torch_calls(min(args.messages, 3000), args.rows)
    rate = {m: float(np.max(r)) for m, r in runs.items()}
    cost = {m: float(np.median(c)) for m, c in cpu.items()}
    print("messages/s of each run: " + "; ".join(f"{m} " + ", ".join(f"{v:,.0f}" for v in r) for m, r in runs.items()))
    print("CPU µs a message of each run: " + "; ".join(f"{m} " + ", ".join(f"{v:,.0f}" for v in c) for m, c in cpu.items()))
    rows = [[name, f"{rate[m]:,.0f}", f"{rate[m] * args.rows:,.0f}", f"{1e6 / rate[m]:.0f}", f"{cost[m]:.0f}" if m in cost else "-"]
            for m, name in (("raw", "raw aiokafka consumer (the client's limit)"), ("noop", "Faust agent doing nothing"),
                            ("ingest", "Faust agent running the ingest path"))]
    for row, mode in zip(rows, ("raw", "noop", "ingest")):
        row.append(f"{counted['torch_calls_per_message']:.1f}" if mode == "ingest" else "0")
    print_table(f"{args.messages} messages of {args.rows} experiences ({size} bytes each), one partition, 1 torch thread; "
                f"rates: best of {args.repeats} runs; CPU: median",
                ["consumer", "messages/s", "experiences/s", "wall µs/message", "CPU µs/message", "torch calls/message"], rows)
    print(f"torch calls per message counted on the ingest path alone, without Kafka ({min(args.messages, 3000)} messages, "
          f"{counted['scorings']} batched scorings)")
    ratio_cpu, ratio_rate, ratio_raw = cost["noop"] / cost["ingest"], rate["ingest"] / rate["noop"], rate["ingest"] / rate["raw"]
    extra = cost["ingest"] - cost["noop"]
    print(f"\ningest path: {ratio_cpu:.2f} of the do-nothing Faust agent by CPU a message (learning work {extra:.0f} µs/message "
          f"= {extra / cost['noop']:.2f}x Faust's own cost); {ratio_rate:.2f} by best message rate; {ratio_raw:.3f} of raw aiokafka")
    print_json({"experiences_per_s": round(rate["ingest"] * args.rows), "ratio_vs_faust": round(ratio_cpu, 3),
                "ratio_vs_faust_rate": round(ratio_rate, 3), "ratio_vs_raw": round(ratio_raw, 4),
                "messages_per_s": {k: round(v) for k, v in rate.items()}, "cpu_us_per_message": {k: round(v) for k, v in cost.items()},
                "message_bytes": size, "rows": args.rows,
                "torch_calls_per_message": round(counted["torch_calls_per_message"], 2),
                "ratio_vs_faust_runs": [round(i / n, 3) for i, n in zip(runs["ingest"], runs["noop"])]})

if __name__ == "__main__":
    main()
