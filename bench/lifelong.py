"""A simulated year of regimes for one model id, measured (default run, one year: about 15 minutes on one core).

52 weekly regimes drawn from 4 sine families (frequency 0.5, 1, 1.5 and 2; amplitude 0.1-5 and
phase 0-pi as in the demo), a family staying a few weeks and most of them coming back. Each week 40
tasks arrive and one update runs as the worker runs it (a drift update when the family changed,
else a routine one; the forgetting guard with 16 probe tasks per era, eras opened at each change;
the gate). After every week the model is scored on 200 fresh tasks of every family seen so far
(MSE after 10-shot adaptation).

- ``retention`` per family: its best error in the year over the final model's error on it (1: all
  kept); ``min_retention`` the worst family.
- ``sample_efficiency``: the share of the year's experiences a model meta-trained in batch needs to
  reach the stream model's final mean error over the families (the smallest of 1/16, 1/8, 1/4,
  1/2, 3/4, 0.9 and all of them, drawn at random, each trained from scratch for as many
  meta-batches of 16 tasks as the stream's updates ran in the year). 1: batch training needs all
  of the data the stream saw to do as well; when even all of it does not get there, the share is
  not measured (``null`` in the JSON) and ``batch_gap`` says by how much batch training misses
  (its error over the stream's, minus 1). The single model is compared with a single model
  trained in batch, the mixture with a mixture trained in batch (one component per family, each
  started on its own family's tasks: the families are given to it, which the stream never has,
  then trained with every task routed to the component that fits it).
- spawns, recurrences: how many components each family's eras spawned, and how many times a
  family coming back was judged a known regime and routed to the component that first served it
  (home) or to another one.

Measured for one meta-initialisation with the guard (the workers' default; ``min_retention``,
``sample_efficiency``) and for the mixture of meta-models the workers serve for ``"mixture"``
(``learners/transfer/mixture.py``), through the very same guarded update, gate included: the
update of a new era judges its tasks against every earlier era, routes a known regime home and
spawns a component for a new one (``*_mixture``). Goal: >= 95% retention for every family,
efficiency >= 0.9.

    python bench/lifelong.py [--seeds 1] [--weeks 52]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _table import machine, print_json, print_table  # noqa: E402

from learners.online import GuardPlan, OnlineMetaLearner, ProbeSet, TaskReplayBuffer, UpdatePlan, propose_guarded  # noqa: E402
from learners.online.guard import raise_best  # noqa: E402
from learners.online.heldout import era_heldout  # noqa: E402
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


def stream_year(schedule: list[int], seed: int, evals, config: dict | None = None) -> dict:
    """The year through the worker's guarded update (``config``: default the sine preset; with
    ``"mixture"``, the mixture the workers serve, judging, spawning and merging inside that
    update). Returns the final learner, the error history per family, the experiences seen, the
    points, the meta-iterations the updates ran and, for a mixture, its verdicts per family."""
    s = Settings()
    learner = OnlineMetaLearner(config or sine_model(), seed=seed)
    buffer, probes, sources = TaskReplayBuffer(int(s.ingest.buffer_mb * 2**20), 40, seed=seed), ProbeSet(PROBES), fleets(seed)
    best: dict = {}  # each era's best version's scores
    era, task_era, history, seen, points, iterations = 0, {}, {}, [], 0, 0
    verdicts: dict[int, dict[str, int]] = {}
    home: dict[int, int] = {}  # family -> the component that first served it
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
        old = [t for t in buffer.task_ids() if task_era.get(t, era) < era]
        heldout = era_heldout(s.update.heldout_tasks, buffer.num_tasks - len(old))  # as a worker holds out
        if changed:
            plan = UpdatePlan(s.update.drift_iterations, s.update.meta_batch, heldout, s.update.drift_recent,
                              s.update.drift_share)
        else:
            plan = UpdatePlan(s.update.iterations, s.update.meta_batch, heldout, s.update.recent, s.update.share)
        guard = GuardPlan(probes, dict(best), s.guard.max_drop, distill, ewc, old, era, alpha=s.guard.alpha)
        proposal = propose_guarded(learner, buffer, plan, guard)
        if proposal is not None:
            iterations += plan.iterations * (2 if proposal.first_forgetting else 1)
        if proposal is not None and not proposal.forgetting and learner.passes_gate(proposal, s.update.margin):
            learner.load_weights(proposal.weights)
            best = raise_best(best, proposal.era_scores)
            note_verdict(proposal.mixture, family, home, verdicts)
        for f, err in errors(learner, evals, set(schedule[: week + 1])).items():
            history.setdefault(f, []).append(err)
    if not home and config is not None and config.get("mixture"):
        home[schedule[0]] = 0
    return {"learner": learner, "history": history, "seen": seen, "points": points, "iterations": iterations,
            "verdicts": verdicts}


def note_verdict(change: dict | None, family: int, home: dict[int, int], verdicts: dict[int, dict[str, int]]) -> None:
    """Count a published mixture version's verdict on its era against the week's family."""
    if not change or "recognised" not in change:
        return
    counts = verdicts.setdefault(family, {"spawns": 0, "home": 0, "elsewhere": 0})
    component = int(change["component"])
    if change["spawned"]:
        counts["spawns"] += 1
        home.setdefault(family, component)
    elif home.setdefault(family, component) == component:
        counts["home"] += 1
    else:
        counts["elsewhere"] += 1


SHARES = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 3 / 4, 0.9, 1.0)


def batch_share(seen: list, target: float, evals, seed: int, iterations: int, mixture: bool = False) -> tuple[float | None, float]:
    """The smallest share of the experiences, drawn at random from everything the year brought, on
    which a fresh model meta-trained in batch (``iterations`` meta-batches of 16 tasks, from scratch
    for each share) reaches a mean error over the families of ``target``; ``None`` when even all of
    it does not (and the error it reached with all of it). ``mixture``: a mixture, one component
    per family, each started on its family's tasks for a tenth of the iterations."""
    families = sorted({f for f, _, _ in seen})
    order = np.random.default_rng(seed).permutation(len(seen))
    last = float("inf")
    for share in SHARES:
        chosen = [seen[i] for i in order[: max(round(len(seen) * share), 32)]]
        learner = OnlineMetaLearner(MIXTURE if mixture else sine_model(), seed=seed)
        pool = TaskReplayBuffer(2**30, 40, seed=seed)
        for i, (_, x, y) in enumerate(chosen):
            pool.add(f"b{i}", x, y)
        ids, gen = pool.task_ids(), torch.Generator().manual_seed(seed)

        def draw(from_ids: list[str]):
            return learner.task_batch(pool, [from_ids[i] for i in torch.randint(len(from_ids), (16,), generator=gen).tolist()])

        model = learner.champion
        model.model.train()
        left = iterations
        if mixture:
            by_family = {f: [f"b{i}" for i, (g, _, _) in enumerate(chosen) if g == f] for f in families}
            by_family = {f: t for f, t in by_family.items() if t}
            per = iterations // (10 * len(by_family))
            for k, tasks in enumerate(by_family.values()):
                if k:
                    model.model.components.append(copy.deepcopy(model.model.components[0]))
                    model.model.resize(k + 1, 0)
                    component = model.components[k]
                    component.optimizer = type(component.optimizer)(component.model.parameters(), **component.optimizer.defaults)
                for _ in range(per):
                    model.components[k].meta_update(draw(tasks))
                left -= per
        for _ in range(left):
            model.meta_update(draw(ids))
        model.model.eval()
        last = float(np.mean(list(errors(learner, evals, families).values())))
        if last <= target:
            return share, last
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
            run = stream_year(schedule, seed, evals, config)
            history = run["history"]
            final = {f: h[-1] for f, h in history.items()}
            retention = {f: min(h) / final[f] for f, h in history.items()}
            target = float(np.mean(list(final.values())))
            mixture = variant.startswith("mixture")
            share, reached = batch_share(run["seen"], target, evals, seed, run["iterations"], mixture)
            figures = summary.setdefault(variant, {"retention": [], "efficiency": [], "gap": [], "verdicts": []})
            figures["retention"].append(min(retention.values()))
            figures["efficiency"].append(share)
            figures["gap"].append(reached / target - 1 if share is None else 0.0)
            figures["verdicts"].append(run["verdicts"])
            visits = {f: sum(1 for w in range(len(schedule)) if schedule[w] == f and (w == 0 or schedule[w - 1] != f))
                      for f in history}
            extra = f", {len(run['learner'].champion.components)} components" if mixture else ""
            for f in sorted(history):
                v = run["verdicts"].get(f, {})
                routed = f"{v.get('spawns', 0)} / {v.get('home', 0)} / {v.get('elsewhere', 0)}" if mixture else ""
                rows.append([seed, variant + extra, f"freq {FAMILIES[f]:g}", visits[f], routed, f"{min(history[f]):.3f}",
                             f"{final[f]:.3f}", f"{100 * retention[f]:.1f}%"])
            kind = "a mixture" if mixture else "one model"
            found = (f"{share:g} of the year ({reached:.3f})" if share is not None
                     else f"not reached with all of it ({reached:.3f}: {100 * (reached / target - 1):.1f}% worse)")
            rows.append([seed, variant, f"{kind} in batch, {run['iterations']} meta-batches", "", "", "",
                         f"{target:.3f} (stream's mean)", found])
            print(f"seed {seed} {variant} done ({time.time() - started:.0f}s): final mean error {target:.3f}, min retention "
                  f"{min(retention.values()):.3f}, batch: {found}", flush=True)
    print_table(f"A year of 52 weekly sine regimes, MSE on 200 fresh tasks per family ({machine()}; {time.time() - started:.0f}s)",
                ["seed", "model", "family", "visits", "spawns / routed home / elsewhere", "best in the year", "final", "retention"],
                rows)
    one, mix = summary["one initialisation, guarded"], summary["mixture, guarded"]

    def efficiency(figures: dict) -> float | None:
        shares = figures["efficiency"]
        return None if any(v is None for v in shares) else float(np.mean(shares))

    spawned = [f for v in mix["verdicts"] for f, c in v.items() if c["spawns"]]
    print_json({"min_retention": float(min(one["retention"])), "sample_efficiency": efficiency(one),
                "batch_gap": float(max(one["gap"])),
                "min_retention_mixture": float(min(mix["retention"])), "sample_efficiency_mixture": efficiency(mix),
                "batch_gap_mixture": float(max(mix["gap"])),
                "families_spawned": len(set(spawned)),
                "recurrences_home": sum(c["home"] for v in mix["verdicts"] for c in v.values()),
                "recurrences_elsewhere": sum(c["elsewhere"] for v in mix["verdicts"] for c in v.values()),
                "seeds": args.seeds, "weeks": args.weeks})


if __name__ == "__main__":
    main()
