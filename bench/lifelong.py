"""A simulated year of regimes for one model id, measured (default run, one year: about 15 minutes on one core).

52 weekly regimes drawn from 4 sine families (frequency 0.5, 1, 1.5 and 2; amplitude 0.1-5 and
phase 0-pi as in the demo), a family staying a few weeks and most of them coming back. Each week 40
tasks arrive and one update runs as the worker runs it (a drift update when the family changed,
else a routine one; the forgetting guard with 16 probe tasks per era, eras opened at each change;
the gate). After every week the model is scored on 200 fresh tasks of every family seen so far
(MSE after 10-shot adaptation).

- ``retention`` per family: its best error in the year over the final model's error on it (1: all
  kept); ``min_retention`` the worst family.
- ``sample_efficiency``: the experiences a model meta-trained in batch needs to reach the stream
  model's final mean error over the families (the fewest of 1/16, 1/8, 1/4, 1/2 or all of the
  year's experiences, drawn at random, each trained from scratch for 1,000 meta-batches), over the
  experiences the stream learner saw. Above 1, the stream learner needed fewer; when even all of
  the year does not get the batch model there, the stream learner did better with the same data
  (reported as not reached, counted as 1).

Measured for one meta-initialisation with the guard (the workers' default; ``min_retention``,
``sample_efficiency``) and for the mixture of meta-models the workers serve for ``"mixture"``
(``learners/transfer/mixture.py``), through the very same guarded update, gate included: the
update of a new era spawns a component when the week's tasks fit none (``*_mixture``). Goal: >= 95%
retention for every family, efficiency >= 0.9.

    python bench/lifelong.py [--seeds 1] [--weeks 52]
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

from learners.online import GuardPlan, OnlineMetaLearner, ProbeSet, TaskReplayBuffer, UpdatePlan, propose_guarded  # noqa: E402
from streams.simulation.fleet import SineFleet  # noqa: E402
from streams.catalog.presets import sine_model  # noqa: E402
from streams.settings import Settings  # noqa: E402

FAMILIES = (1.0, 2.0, 0.5, 1.5)  # sine frequencies; the first is the demo's before its drift
MIXTURE = {**sine_model(), "mixture": True}  # what a worker serves for {"preset": "sine", "mixture": true}
PER_WEEK, PROBES = 40, 16


def year(weeks: int, seed: int) -> list[int]:
    """Family per week: stays 1-4 weeks, then moves to another; every family recurs."""
    rng = np.random.default_rng(seed)
    out, family = [], 0
    while len(out) < weeks:
        out += [family] * int(rng.integers(1, 5))
        family = int(rng.choice([f for f in range(len(FAMILIES)) if f != family]))
    return out[:weeks]


def fleets(seed: int) -> list[SineFleet]:
    return [SineFleet(seed=seed * 10 + i, frequency_after_drift=f) for i, f in enumerate(FAMILIES)]


def evaluation(seed: int) -> list[tuple[TaskReplayBuffer, list[str]]]:
    out = []
    for fleet in fleets(1000 + seed):
        buf, ids = TaskReplayBuffer(2**26, 40), []
        for _ in range(200):
            tid, x, y = fleet.sample_task(True)
            buf.add(tid, x, y)
            ids.append(tid)
        out.append((buf, ids))
    return out


def errors(learner: OnlineMetaLearner, evals, families) -> dict[int, float]:
    return {f: learner.score(learner.champion, learner.task_batch(*evals[f])) for f in families}


def stream_year(schedule: list[int], seed: int, evals, config: dict | None = None) -> tuple[OnlineMetaLearner, dict[int, list[float]], list, int]:
    """The year through the worker's guarded update (``config``: default the sine preset; with
    ``"mixture"``, the mixture the workers serve, spawning and merging inside that update)."""
    s = Settings()
    learner = OnlineMetaLearner(config or sine_model(), seed=seed)
    buffer, probes, sources = TaskReplayBuffer(int(s.ingest.buffer_mb * 2**20), 40, seed=seed), ProbeSet(PROBES), fleets(seed)
    best: dict[int, float] = {}
    era, task_era, history, seen, points = 0, {}, {}, [], 0
    terms = s.guard_for(learner.config)
    distill, ewc = terms.distill, terms.ewc
    for week, family in enumerate(schedule):
        changed = week > 0 and family != schedule[week - 1]
        era += int(changed)
        for _ in range(PER_WEEK):
            tid, x, y = sources[family].sample_task(True)
            seen.append((family, x, y))
            points += len(x)
            if not probes.offer(era, x, y, task_id=tid):
                buffer.add(tid, x, y)
                task_era[tid] = era
        if changed:
            plan = UpdatePlan(s.update.drift_iterations, s.update.meta_batch, s.update.heldout_tasks, s.update.drift_recent,
                              s.update.drift_share)
        else:
            plan = UpdatePlan(s.update.iterations, s.update.meta_batch, s.update.heldout_tasks, s.update.recent, s.update.share)
        old = [t for t in buffer.task_ids() if task_era.get(t, era) < era]
        guard = GuardPlan(probes, dict(best), s.guard.max_drop, distill, ewc, old, era)
        proposal = propose_guarded(learner, buffer, plan, guard)
        if proposal is not None and not proposal.forgetting and learner.better(proposal.candidate_score,
                                                                                proposal.champion_score, s.update.margin):
            learner.load_weights(proposal.weights)
            for e, p in proposal.era_scores.items():
                best[e] = max(best.get(e, -float("inf")), p)
        for f, err in errors(learner, evals, set(schedule[: week + 1])).items():
            history.setdefault(f, []).append(err)
    return learner, history, seen, points


def batch_experiences(seen: list, target: float, evals, seed: int, iterations: int = 1000) -> tuple[int | None, float]:
    """The fewest experiences, drawn at random from everything the year brought, on which a fresh
    model meta-trained in batch (``iterations`` meta-batches of 16 tasks, from scratch for each
    size: 1/16, 1/8, 1/4, 1/2 and all of it) reaches a mean error over the families of ``target``;
    ``None`` when even all of it does not (and the error it reached)."""
    families = sorted({f for f, _, _ in seen})
    order = np.random.default_rng(seed).permutation(len(seen))
    last = float("inf")
    for share in (16, 8, 4, 2, 1):
        chosen = [seen[i] for i in order[: max(len(seen) // share, 32)]]
        learner = OnlineMetaLearner(sine_model(), seed=seed)
        pool = TaskReplayBuffer(2**30, 40, seed=seed)
        for i, (_, x, y) in enumerate(chosen):
            pool.add(f"b{i}", x, y)
        ids, gen = pool.task_ids(), torch.Generator().manual_seed(seed)
        learner.champion.model.train()
        for _ in range(iterations):
            learner.champion.meta_update(learner.task_batch(pool, [ids[i] for i in torch.randint(len(ids), (16,), generator=gen).tolist()]))
        learner.champion.model.eval()
        last = float(np.mean(list(errors(learner, evals, families).values())))
        if last <= target:
            return sum(len(x) for _, x, _ in chosen), last
    return None, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=1, help="years (each about 15 minutes: the mixture's routed updates cost more)")
    ap.add_argument("--weeks", type=int, default=52)
    args = ap.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    rows, summary = [], {}
    for seed in range(args.seeds):
        schedule = year(args.weeks, seed)
        evals = evaluation(seed)
        for variant, config in (("one initialisation, guarded", sine_model()), ("mixture, guarded", MIXTURE)):
            model, history, seen, points = stream_year(schedule, seed, evals, config)
            final = {f: h[-1] for f, h in history.items()}
            retention = {f: min(h) / final[f] for f, h in history.items()}
            target = float(np.mean(list(final.values())))
            needed, reached = batch_experiences(seen, target, evals, seed)
            figures = summary.setdefault(variant, {"retention": [], "efficiency": []})
            figures["retention"].append(min(retention.values()))
            figures["efficiency"].append(needed / points if needed is not None else 1.0)
            visits = {f: sum(1 for w in range(len(schedule)) if schedule[w] == f and (w == 0 or schedule[w - 1] != f))
                      for f in history}
            extra = f", {len(model.champion.components)} components" if variant.startswith("mixture") else ""
            for f in sorted(history):
                rows.append([seed, variant + extra, f"freq {FAMILIES[f]:g}", visits[f], f"{min(history[f]):.3f}",
                             f"{final[f]:.3f}", f"{100 * retention[f]:.1f}%"])
            rows.append([seed, variant, "batch on everything", "", "", f"{target:.3f} (stream's mean)",
                         f"{needed} of {points} experiences ({reached:.3f})" if needed else f"not reached with all {points} ({reached:.3f})"])
            print(f"seed {seed} {variant} done ({time.time() - started:.0f}s): final mean error {target:.3f}, min retention "
                  f"{min(retention.values()):.3f}, batch needed {needed} of {points} ({reached:.3f})", flush=True)
    print_table(f"A year of 52 weekly sine regimes, MSE on 200 fresh tasks per family ({machine()}; {time.time() - started:.0f}s)",
                ["seed", "model", "family", "visits", "best in the year", "final", "retention"], rows)
    one, mix = summary["one initialisation, guarded"], summary["mixture, guarded"]
    print_json({"min_retention": float(min(one["retention"])), "sample_efficiency": float(np.mean(one["efficiency"])),
                "min_retention_mixture": float(min(mix["retention"])), "sample_efficiency_mixture": float(np.mean(mix["efficiency"])),
                "seeds": args.seeds, "weeks": args.weeks})


if __name__ == "__main__":
    main()
