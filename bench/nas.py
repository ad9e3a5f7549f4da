"""Architecture search, measured (default run about 40 minutes on 2 cores): for sine (the 40-40 MLP,
MAML) and Omniglot (Conv-4, ProtoNet), regularized evolution searches a backbone genome at the
hand-picked backbone's parameter count, and random search gets the same number of candidates
(each scored after the same short meta-training on meta-validation tasks). Then the hand-picked,
the found and the best random backbone are meta-trained for the same wall-clock budget from 3
seeds and scored on the same meta-validation episodes (a seed the search never used).

    python bench/nas.py [--task sine|omniglot|both] [--search-minutes 6] [--final-minutes 1.5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import machine, print_json, print_table  # noqa: E402

from learners.backbones import build_backbone  # noqa: E402
from learners.cells import parameter_count  # noqa: E402
from learners.run import train_run  # noqa: E402
from learners.search import Fidelity, adapted_error, protocol_tasks  # noqa: E402
from learners.search.nas import handpicked, search_architecture, with_backbone  # noqa: E402

PLANS = {"sine": dict(search=2.0, final=0.75, fidelity=Fidelity(iterations=300, rungs=1, val_episodes=200)),
         "omniglot": dict(search=6.0, final=1.5, fidelity=Fidelity(iterations=100, rungs=1, val_episodes=100))}


def final_errors(task: str, spec: dict, minutes: float, seeds: int, episodes: int) -> list[float]:
    errors = []
    for seed in range(seeds):
        config = with_backbone(task, spec, seed)
        learner, _, _ = train_run(config, None, budget_s=minutes * 60, device="cpu", final_episodes=0, validate_every=10**9)
        errors.append(adapted_error(learner, protocol_tasks(config, "val", ways=5, shots=1), episodes, seed=4242))
    return errors


def run_task(task: str, args) -> dict:
    plan = PLANS[task]
    search_min = args.search_minutes or plan["search"]
    final_min = args.final_minutes or plan["final"]
    started = time.perf_counter()
    found = search_architecture(task, "evolution", budget_s=search_min * 60, fidelity=plan["fidelity"], seed=0)
    rand = search_architecture(task, "random", evaluations=found.evaluations, fidelity=plan["fidelity"], seed=1)
    print(f"{task}: evolution scored {found.evaluations} genomes in {found.seconds:.0f}s, best {found.genome} "
          f"({found.best_error:.4g}); random search {rand.evaluations} genomes, best {rand.genome} ({rand.best_error:.4g})", flush=True)
    hand = handpicked(task)
    rows, means = [], {}
    for name, spec in (("hand-picked", hand), ("found (evolution)", found.spec), ("best random genome", rand.spec)):
        errs = final_errors(task, spec, final_min, args.seeds, args.episodes)
        means[name] = float(np.mean(errs))
        params = parameter_count(build_backbone(spec))
        rows.append([name, f"{params:,}", " ".join(f"{e:.4f}" for e in errs), f"{np.mean(errs):.4f} ± {np.std(errs):.4f}"])
    metric = "MSE after 10 steps" if task == "sine" else "5-way 1-shot error (within alphabet)"
    print_table(f"{task}: {metric} on {args.episodes} meta-validation episodes after {final_min:g} min of meta-training, "
                f"{args.seeds} seeds [{machine()}; {time.perf_counter() - started:.0f}s]",
                ["backbone", "parameters", "per seed", "mean ± spread"], rows)
    gain = (means["hand-picked"] - means["found (evolution)"]) / means["hand-picked"]
    gain_random = (means["best random genome"] - means["found (evolution)"]) / means["best random genome"]
    ratio = parameter_count(build_backbone(found.spec)) / parameter_count(build_backbone(hand))
    print(f"found vs hand-picked: {100 * gain:+.1f}% error (target >= 15%); vs random genomes: {100 * gain_random:+.1f}%; "
          f"parameters {ratio:.3f}x; found spec {found.spec}")
    return {"gain_vs_handpicked": gain, "gain_vs_random_arch": gain_random, "param_ratio": ratio, "errors": means,
            "found": found.spec, "random": rand.spec, "evaluations": found.evaluations}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["sine", "omniglot", "both"], default="both")
    ap.add_argument("--search-minutes", type=float, default=None, help="evolution's budget (default 2 sine, 6 Omniglot)")
    ap.add_argument("--final-minutes", type=float, default=None, help="meta-training per backbone and seed (0.75 sine, 1.5 Omniglot)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=600)
    args = ap.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    tasks = ["sine", "omniglot"] if args.task == "both" else [args.task]
    results = {task: run_task(task, args) for task in tasks}
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    worst = min(results, key=lambda t: results[t]["gain_vs_handpicked"])
    print_json({"gain_vs_handpicked": results[worst]["gain_vs_handpicked"], "gain_vs_random_arch": results[worst]["gain_vs_random_arch"],
                "param_ratio": results[worst]["param_ratio"], "task_of_these": worst, "by_task": results,
                "seconds": round(time.perf_counter() - started)})


if __name__ == "__main__":
    main()
