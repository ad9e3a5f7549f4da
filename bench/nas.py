"""Architecture search, measured where it was not chosen (default: Omniglot, about 40 minutes on 2
cores). Omniglot's alphabets fall in three disjoint sets: the candidates *train* on the rest, the
search *selects* on the meta-validation alphabets (Balinese, Early_Aramaic), and the comparison is
*reported* on alphabets neither saw (Korean, Sanskrit). Regularized evolution searches a backbone
genome at the hand-picked backbone's parameter count (Conv-4 with ProtoNet; the 40-40 MLP with MAML
for sine), random search gets the same number of candidates, and each ends in a final rung of
successive halving: its best 3 genomes train again for the final budget and the best there is its
answer. Then the hand-picked, the found and the random search's backbones are meta-trained for the
same wall-clock budget from 5 seeds and scored on the report set (sine: fresh tasks of a seed the
search never used), with the spread. Gains are error reductions as a fraction of the baseline's
error: positive = better.

    python bench/nas.py [--task omniglot|sine|both] [--search-minutes 5] [--final-minutes 1.25] [--seeds 5]
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
from learners.registry import merge  # noqa: E402
from learners.search.nas import base_config, handpicked, search_architecture, with_backbone  # noqa: E402

PLANS = {"sine": dict(search=1.5, final=0.5, fidelity=Fidelity(iterations=300, rungs=1, val_episodes=200)),
         "omniglot": dict(search=5.0, final=1.25, fidelity=Fidelity(iterations=100, rungs=1, val_episodes=100))}
REPORT_ALPHABETS = ["Korean", "Sanskrit"]  # neither trained on nor selected on


def base(task: str) -> dict:
    return base_config(task) if task == "sine" else merge(base_config(task), test_alphabets=REPORT_ALPHABETS)


def final_errors(task: str, spec: dict, minutes: float, seeds: int, episodes: int) -> list[float]:
    errors = []
    for seed in range(seeds):
        config = with_backbone(task, spec, seed, base(task))
        learner, _, _ = train_run(config, None, budget_s=minutes * 60, device="cpu", final_episodes=0, validate_every=10**9)
        errors.append(adapted_error(learner, protocol_tasks(config, "test", ways=5, shots=1), episodes, seed=4242))
    return errors


def run_task(task: str, args) -> dict:
    plan = PLANS[task]
    search_min = args.search_minutes or plan["search"]
    final_min = args.final_minutes or plan["final"]
    started = time.perf_counter()
    finals = dict(base=base(task), finalists=args.finalists, final_s=final_min * 60)
    if task != "sine":
        t = finals["base"]["task"]
        print(f"{task}: candidates train on every alphabet but {t['val_alphabets']} (the search selects on these) and "
              f"{t['test_alphabets']} (reported on these only)", flush=True)
    found = search_architecture(task, "evolution", budget_s=search_min * 60, fidelity=plan["fidelity"], seed=0, **finals)
    rand = search_architecture(task, "random", evaluations=found.evaluations, fidelity=plan["fidelity"], seed=1,
                               **finals)
    print(f"{task}: evolution scored {found.evaluations} genomes in {found.seconds:.0f}s, best {found.genome} "
          f"({found.best_error:.4g}); random search {rand.evaluations} genomes, best {rand.genome} ({rand.best_error:.4g})", flush=True)
    hand = handpicked(task)
    rows, means, errs_by = [], {}, {}
    for name, spec in (("hand-picked", hand), ("found (evolution)", found.spec), ("best random genome", rand.spec)):
        errs = errs_by[name] = final_errors(task, spec, final_min, args.seeds, args.episodes)
        means[name] = float(np.mean(errs))
        params = parameter_count(build_backbone(spec))
        rows.append([name, f"{params:,}", " ".join(f"{e:.4f}" for e in errs), f"{np.mean(errs):.4f} ± {np.std(errs):.4f}"])
    metric = "MSE after 10 steps" if task == "sine" else "5-way 1-shot error (within alphabet, report alphabets)"
    print_table(f"{task}: {metric} on {args.episodes} meta-test episodes after {final_min:g} min of meta-training, "
                f"{args.seeds} seeds [{machine()}; {time.perf_counter() - started:.0f}s]",
                ["backbone", "parameters", "per seed", "mean ± spread"], rows)
    gain = (means["hand-picked"] - means["found (evolution)"]) / means["hand-picked"]
    gain_random = (means["best random genome"] - means["found (evolution)"]) / means["best random genome"]
    ratio = parameter_count(build_backbone(found.spec)) / parameter_count(build_backbone(hand))
    print(f"found vs hand-picked: {100 * gain:+.1f}% error reduction (target >= 15%); vs random genomes: {100 * gain_random:+.1f}%; "
          f"parameters {ratio:.3f}x; found spec {found.spec}")
    spread = {name: float(np.std(e)) for name, e in errs_by.items()}
    return {"gain_vs_handpicked": gain, "gain_vs_random_arch": gain_random, "param_ratio": ratio, "errors": means, "spread": spread,
            "found": found.spec, "random": rand.spec, "evaluations": found.evaluations,
            "select_alphabets": finals["base"]["task"].get("val_alphabets"), "report_alphabets": finals["base"]["task"].get("test_alphabets")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["sine", "omniglot", "both"], default="omniglot")
    ap.add_argument("--search-minutes", type=float, default=None, help="evolution's budget (default 1.5 sine, 5 Omniglot)")
    ap.add_argument("--final-minutes", type=float, default=None,
                    help="meta-training per backbone and seed, and the final rung's (0.5 sine, 1.25 Omniglot)")
    ap.add_argument("--finalists", type=int, default=3, help="genomes each search trains again for the final budget")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--episodes", type=int, default=600)
    args = ap.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    tasks = ["sine", "omniglot"] if args.task == "both" else [args.task]
    results = {task: run_task(task, args) for task in tasks}
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    head = "omniglot" if "omniglot" in results else tasks[0]  # the top-level keys: the report alphabets' figures
    print_json({"gain_vs_handpicked": results[head]["gain_vs_handpicked"], "gain_vs_random_arch": results[head]["gain_vs_random_arch"],
                "param_ratio": results[head]["param_ratio"], "task_of_these": head,
                "select_alphabets": results[head]["select_alphabets"], "report_alphabets": results[head]["report_alphabets"],
                "by_task": results, "seconds": round(time.perf_counter() - started)})


if __name__ == "__main__":
    main()
