"""Online model selection inside a worker, measured: shadow candidates against every single one of
them in hindsight (default run about 6 minutes on one core).

Agents send 5-way few-shot tasks of rows (River's ImageSegments, 10 rows a class, 5% of the
values missing; on ``segment-drift`` every column changes scale half-way; ``dev-led``: River's
LED generator with 17 irrelevant columns of 24, 10 classes. River's Shuttle loads with two
classes here, too few for 5-way tasks). The worker's
own pieces run without Kafka, as the worker calls them: the replay buffer, the champion's
prequential score of each group of 4 incoming tasks before anyone learns from them, an update
every 30 new tasks judged by the gate (candidate not worse than the champion by more than 5
points on the newest held-out tasks). Compared, on the same task stream:

- each candidate alone as the champion, every update its own (the best of them in hindsight is
  the target): the tabular preset's ProtoNet and its five shadows (Matching networks, a wider MLP,
  the log, products and selection feature steps);
- ``shadows``: the preset's ProtoNet as champion with the five shadows, each update of the
  champion followed by one of the shadow the UCB bandit picks, a challenge when one leads by 2
  points with a paired lower bound above zero, published only through the gate.

The score is the *served* model's prequential accuracy: what agents got, task by task, from the
champion of the moment. ``gap_to_best_single`` is the shadows run minus the best single candidate
(points; the worst stream); ``vs_preset_alone`` the shadows run minus the preset's ProtoNet alone
(what keeping shadows costs or gains the agents); ``shadow_update_share`` the share of updates the
shadows got.

    python bench/shadows.py [--streams segment,segment-drift,dev-led] [--tasks 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _table import machine, print_json, print_table  # noqa: E402

from learners.online import OnlineMetaLearner, TaskReplayBuffer  # noqa: E402
from learners.online.shadows import ShadowPool, propose_challenger, train_shadow, variant, variant_name  # noqa: E402
from learners.online.guarded import UpdatePlan  # noqa: E402
from learners.tabular.river_streams import load_stream  # noqa: E402
from streams.catalog.presets import TABULAR_SHADOWS, tabular_model  # noqa: E402
from streams.simulation.tabular_fleet import TabularFleet  # noqa: E402

GROUP, EVERY, MARGIN = 4, 30, 0.05  # the worker's defaults: tasks scored together, new tasks per update, gate margin
PLAN = UpdatePlan(iterations=60, meta_batch=16, heldout=16, recent=64, recent_share=0.5)


def fleet_for(stream: str, seed: int) -> tuple[TabularFleet, bool]:
    name, drifting = (stream[: -len("-drift")], True) if stream.endswith("-drift") else (stream, False)
    return TabularFleet(load_stream(name, seed=seed), 5, 10, missing=0.05, seed=seed), drifting


def run(stream: str, tasks: int, seed: int, single: dict | None) -> dict:
    """One pass over the task stream; ``single``: that candidate's overrides alone, else the pool."""
    fleet, drifting = fleet_for(stream, seed)
    features = fleet.table.X.shape[1]
    base = tabular_model(features)
    torch.manual_seed(seed)
    champion = OnlineMetaLearner(variant(base, single) if single is not None else base, seed=seed)
    pool = ShadowPool.from_config(base, TABULAR_SHADOWS, seed=seed) if single is None else None
    buffer = TaskReplayBuffer(64 * 2**20, 50, seed=seed)
    served, pending, new, job = [], [], 0, 0
    updates = {"champion": 0, "shadow": 0, "challenges": 0, "switches": 0}
    for t in range(tasks):
        fleet.drift(drifting and t >= tasks // 2)
        tid, x, y = fleet.sample_task()
        buffer.add(tid, x, y)
        pending.append(tid)
        new += 1
        if len(pending) == GROUP:
            batch = champion.task_batch(buffer, pending)
            pending = []
            if batch is not None:
                served.extend(champion.task_rewards(batch, 3).tolist())
                if pool is not None:
                    pool.observe(champion, batch, 3)
                    challenge = pool.challenger()
                    if challenge is not None:
                        job += 1
                        updates["challenges"] += 1
                        shadow = pool.shadows[challenge.name]
                        proposal = propose_challenger(champion.config, champion.weights_bytes(), shadow.learner.config,
                                                      shadow.learner.weights_bytes(), buffer, PLAN, None, seed + job)
                        if proposal is not None and champion.passes_gate(proposal, MARGIN):
                            winner = OnlineMetaLearner(shadow.learner.config, seed=seed)
                            winner.load_weights(proposal.weights)
                            pool.swap(challenge.name, champion)
                            champion = winner
                            updates["switches"] += 1
                        else:
                            pool.reset(challenge.name)
        if new >= EVERY:
            new, job = 0, job + 1
            proposal = champion.propose(buffer, PLAN.iterations, PLAN.meta_batch, PLAN.heldout, PLAN.recent, PLAN.recent_share)
            updates["champion"] += 1
            if proposal is not None and champion.passes_gate(proposal, MARGIN):
                champion.promote(proposal)
            if pool is not None:  # the worker follows each routine update with one shadow's
                job += 1
                shadow = pool.pick()
                trained = train_shadow(shadow.learner.config, shadow.learner.weights_bytes(), buffer, PLAN, seed + job)
                if trained is not None:
                    shadow.learner.load_weights(trained[0])
                    shadow.updates += 1
                    updates["shadow"] += 1
    final = pool.champion_name if pool is not None else variant_name(single or {})
    return {"accuracy": float(np.mean(served)), "updates": updates, "final": final}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", default="segment,segment-drift,dev-led")
    ap.add_argument("--tasks", type=int, default=2000, help="tasks per stream")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    candidates = [{}] + TABULAR_SHADOWS
    rows, gaps, shares, vs_preset = [], [], [], []
    for stream in args.streams.split(","):
        t0 = time.time()
        singles = {variant_name(c) if c else "protonet (preset)": run(stream, args.tasks, args.seed, c) for c in candidates}
        auto = run(stream, args.tasks, args.seed, None)
        best_name = max(singles, key=lambda n: singles[n]["accuracy"])
        best = singles[best_name]["accuracy"]
        gaps.append(100 * (auto["accuracy"] - best))
        vs_preset.append(100 * (auto["accuracy"] - singles["protonet (preset)"]["accuracy"]))
        u = auto["updates"]
        shares.append(u["shadow"] / max(u["shadow"] + u["champion"], 1))
        rows.append([stream, f"{100 * auto['accuracy']:.2f}", f"{100 * singles['protonet (preset)']['accuracy']:.2f}",
                     f"{100 * best:.2f} ({best_name})", f"{gaps[-1]:+.2f}", f"{u['challenges']} / {u['switches']}",
                     auto["final"], f"{time.time() - t0:.0f}s"])
        print(f"  {stream}: " + ", ".join(f"{n} {100 * r['accuracy']:.2f}" for n, r in singles.items())
              + f"; shadows {100 * auto['accuracy']:.2f} (final champion {auto['final']})", flush=True)
    print_table(f"Served prequential accuracy (%), 5-way 5-shot tasks ({machine()})",
                ["stream", "shadows", "preset alone", "best single (hindsight)", "gap", "challenges / switches",
                 "final champion", "time"], rows)
    print_json({"gap_to_best_single": min(gaps), "mean_gap_to_best_single": float(np.mean(gaps)),
                "vs_preset_alone": float(np.mean(vs_preset)), "shadow_update_share": float(np.mean(shares)), "streams": args.streams, "tasks": args.tasks})


if __name__ == "__main__":
    main()
