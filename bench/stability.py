"""The stability-plasticity trade-off of one meta-initialisation, measured over the updates that
follow the demo's sine drift (default run, 5 seeds: about 14 minutes on one core).

Per seed, the worker's own pieces without Kafka: the sine preset (first-order MAML on a 40-40 MLP)
is meta-trained on 300 buffered pre-drift tasks; the forgetting guard keeps 64 of them as era-0
probes. Then drifted tasks arrive (frequency 1 -> 2), 40 between updates: one drift update and
``--updates`` - 1 routine ones, each judged as the worker judges it (gate margin 5% on the newest
held-out tasks; with the guard, a candidate that loses more than 2 points on era 0 is redone with
more replay, distillation and EWC, and rejected if it still does). Scored on 300 fresh tasks of
each kind (MSE after 10-shot adaptation): ``old_ratio`` is the latest version's old-task error
over the champion's at the drift, ``drifted_mse`` the latest version's drifted-task error.

The goal: drifted MSE <= 2.8 with old tasks within 5% (``old_ratio`` <= 1.05), over 5 seeds. Measured
for one initialisation with the guard (the worker's default; the JSON's ``old_ratio`` and
``drifted_mse``) and without, and for a mixture of meta-models (``"mixture": true``;
``learners/transfer/mixture.py``) updated by the same guarded update job (``*_mixture``).

    python bench/stability.py [--seeds 5] [--updates 12]
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
from online_guard import fresh_tasks  # noqa: E402

from learners.online import GuardPlan, OnlineMetaLearner, ProbeSet, TaskReplayBuffer, UpdatePlan, era_scores, propose_guarded  # noqa: E402
from learners.online.guard import raise_best  # noqa: E402
from learners.online.heldout import era_heldout  # noqa: E402
from learners.transfer.mixture import MetaMixture  # noqa: E402
from learners.transfer.mixture_options import mixture_options  # noqa: E402
from streams.simulation.fleet import SineFleet  # noqa: E402
from streams.catalog.presets import sine_model  # noqa: E402
from streams.settings import Settings  # noqa: E402

PER_UPDATE = 40


def run(seed: int, updates: int, guarded: bool, base: OnlineMetaLearner, pre: TaskReplayBuffer, probes: ProbeSet,
        fleet_seed: int, mixture: bool = False) -> OnlineMetaLearner:
    """``mixture``: the champion at the drift becomes the first component of a mixture of
    meta-models (``"mixture": true`` in a worker's model config), updated the way a worker updates it."""
    s = Settings()
    learner = copy.deepcopy(base)
    if mixture:
        learner.champion = MetaMixture(learner.champion, **mixture_options(True))
        learner.config = {**learner.config, "mixture": True}
    learner._gen = torch.Generator().manual_seed(seed)
    buffer = pre.snapshot()
    old_ids = buffer.task_ids()
    fleet = SineFleet(seed=fleet_seed)
    best = era_scores(learner.champion, learner.probe_batches(probes))
    terms = s.guard_for(learner.config)
    distill, ewc = terms.distill, terms.ewc
    for k in range(updates):
        for _ in range(PER_UPDATE):
            buffer.add(*fleet.sample_task(True))
        heldout = era_heldout(s.update.heldout_tasks, buffer.num_tasks - len(set(old_ids) & set(buffer.task_ids())))  # as a worker
        if k == 0:
            plan = UpdatePlan(s.update.drift_iterations, s.update.meta_batch, heldout, s.update.drift_recent,
                              s.update.drift_share)
        else:
            plan = UpdatePlan(s.update.iterations, s.update.meta_batch, heldout, s.update.recent, s.update.share)
        guard = None
        if guarded:
            alive = set(buffer.task_ids())
            guard = GuardPlan(probes, dict(best), s.guard.max_drop, distill, ewc, [t for t in old_ids if t in alive], 1,
                              alpha=s.guard.alpha)
        proposal = propose_guarded(learner, buffer, plan, guard)
        if proposal is None or proposal.forgetting:
            continue
        if learner.passes_gate(proposal, s.update.margin):
            learner.load_weights(proposal.weights)
            best = raise_best(best, proposal.era_scores)
    return learner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--updates", type=int, default=12, help="updates after the drift (the first is the drift update)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    old_eval, new_eval = fresh_tasks("sine", False, seed=99), fresh_tasks("sine", True, seed=98)

    def mse(learner: OnlineMetaLearner, tasks) -> float:
        return learner.score(learner.champion, learner.task_batch(*tasks))

    results = {name: {"old": [], "new": []} for name in ("champion at the drift", "guarded (default)", "unguarded",
                                                         "mixture of meta-models")}
    components = []
    for seed in range(args.seeds):
        config = sine_model()
        base = OnlineMetaLearner(config, seed=seed)
        pre, fleet, probes = TaskReplayBuffer(2**26, 40), SineFleet(seed=seed + 10), ProbeSet(64)
        while len(probes.tasks.get(0, [])) < 64 or pre.num_tasks < 300:
            tid, x, y = fleet.sample_task(False)
            if not probes.offer(0, x, y, task_id=tid):
                pre.add(tid, x, y)
        for _ in range(6):
            base.promote(base.propose(pre, 200, 16, heldout=16))
        results["champion at the drift"]["old"].append(mse(base, old_eval))
        results["champion at the drift"]["new"].append(mse(base, new_eval))
        for name, guarded, mixture in (("guarded (default)", True, False), ("unguarded", False, False),
                                       ("mixture of meta-models", True, True)):
            latest = run(seed, args.updates, guarded, base, pre, probes, seed + 20, mixture)
            results[name]["old"].append(mse(latest, old_eval))
            results[name]["new"].append(mse(latest, new_eval))
            if mixture:
                components.append(len(latest.champion.model.components))
        print(f"seed {seed} done ({time.time() - started:.0f}s)", flush=True)
    at_drift = np.array(results["champion at the drift"]["old"])
    rows, figures = [], {}
    for name, r in results.items():
        old, new = np.array(r["old"]), np.array(r["new"])
        ratio = old / at_drift
        rows.append([name, f"{old.mean():.3f} ± {old.std():.3f}", f"{ratio.mean():.3f}", f"{new.mean():.3f} ± {new.std():.3f}"])
        figures[name] = (float(ratio.mean()), float(new.mean()))
    print_table(f"Sine drift: MSE on 300 fresh tasks after {args.updates} updates, mean ± spread over {args.seeds} seeds "
                f"({machine()}; {time.time() - started:.0f}s)",
                ["model", "old tasks", "old / at the drift", "drifted tasks"], rows)
    print_json({"old_ratio": figures["guarded (default)"][0], "drifted_mse": figures["guarded (default)"][1],
                "old_ratio_unguarded": figures["unguarded"][0], "drifted_mse_unguarded": figures["unguarded"][1],
                "drifted_mse_at_drift": figures["champion at the drift"][1], "seeds": args.seeds, "updates": args.updates,
                "old_ratio_mixture": figures["mixture of meta-models"][0], "drifted_mse_mixture": figures["mixture of meta-models"][1],
                "mixture_components": float(np.mean(components))})


if __name__ == "__main__":
    main()
