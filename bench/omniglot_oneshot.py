"""Omniglot one-shot, in three parts (one per flag, each within 45 minutes on 2 cores):

``--part folds`` (default): the leave-alphabets-out validation of recipes (``learners/folds.py``):
each of 4 folds meta-trains a recipe on 6 background alphabets for ``--fold-minutes`` and scores 20
within-alphabet 20-way one-shot runs in Lake's layout built from the 2 it held out.

``--part gradient``: the gradient-based learners (``--algos``, default Proto-MAML) meta-trained
with their default recipe for ``--budget-minutes`` each, then scored on 600 5-way 1-shot episodes of
the meta-validation alphabets (Balinese, Early_Aramaic; within-alphabet and mixed).

``--part lake``: one learner meta-trained (or ``--model`` loaded) and scored on Lake-layout runs
(``--runs``; default: development runs from the meta-validation alphabets) and on 5- and 20-way
meta-validation episodes.

    python bench/omniglot_oneshot.py --part folds --recipes defaults,px32-60way --fold-minutes 5
    python bench/omniglot_oneshot.py --part gradient --algos anil,protomaml --budget-minutes 25
    python bench/omniglot_oneshot.py --part lake --model runs/protonet20

The last line is one JSON object with ``fold_error`` (the first recipe's mean error over the folds),
``best_gradient_5way`` and ``best_gradient_algo`` (null for a part not run).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import machine, print_json, print_table  # noqa: E402

from learners.checkpoint import load_checkpoint  # noqa: E402
from learners.evaluation import evaluate_learner  # noqa: E402
from learners.folds import FOLDS, TTA_COPIES, validate_recipe  # noqa: E402
from learners.oneshot import make_dev_runs, read_runs, score_runs  # noqa: E402
from learners.registry import build_tasks, default_config, is_metric, merge  # noqa: E402
from learners.settings import resolve_device  # noqa: E402
from learners.run import train_run  # noqa: E402
from learners.tasks import load_omniglot_background, read_background  # noqa: E402

# recipes the fold validation can compare: overrides of `meta-train omniglot --algo protonet`'s defaults
RECIPES: dict[str, dict] = {
    "defaults": {},
    "px32-60way": {"image_size": 32, "ways": 60},  # Snell et al.'s training episodes, 32-pixel images
    "px32": {"image_size": 32},
    "60way": {"ways": 60},
}  # test-time augmentation needs no retraining: every fold's model is scored with and without it


def recipe_config(name: str) -> dict:
    if name not in RECIPES:
        raise SystemExit(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    return merge(default_config("omniglot", "protonet"), **RECIPES[name])


def part_folds(args) -> dict:
    rows, result = [], {}
    for i, name in enumerate(args.recipes.split(",")):
        def show(f, name=name):
            tta = "" if f.error_rate_tta is None else f", {100 * f.error_rate_tta:.2f}% with TTA"
            print(f"  {name} without {'+'.join(f.held)}: {100 * f.error_rate:.2f}% error{tta} ({f.iterations} it, {f.seconds}s)",
                  flush=True)
        summary = validate_recipe(recipe_config(name), args.fold_minutes * 60, FOLDS[: args.folds], runs=args.runs_per_fold,
                                  device=args.device, on_fold=show)
        tta = summary.mean_error_tta
        rows.append([name, f"{100 * summary.mean_error:.2f}%", f"± {100 * summary.spread:.2f}",
                     " / ".join(f"{100 * f.error_rate:.1f}" for f in summary.folds),
                     "-" if tta is None else f"{100 * tta:.2f}%", " / ".join(str(f.iterations) for f in summary.folds)])
        result.setdefault("fold_error", summary.mean_error)
        result[f"fold_error_{name}"] = summary.mean_error
        result[f"fold_spread_{name}"] = summary.spread
        result[f"fold_error_tta_{name}"] = tta
    print_table(f"Leave-alphabets-out 20-way one-shot error, {args.fold_minutes:g} min per fold ({machine()})",
                ["recipe", "mean error", "sd over folds", "per fold (%)", f"with TTA ({TTA_COPIES} copies)", "iterations"], rows)
    return result


def part_gradient(args) -> dict:
    rows, result, best = [], {}, (-1.0, None)
    for algo in args.algos.split(","):
        config = default_config("omniglot", algo)
        learner, trained, _ = train_run(config, Path(args.out) / algo, budget_s=args.budget_minutes * 60, validate_every=500,
                                        final_episodes=0, device=args.device)
        scores = {}
        for within in (True, False):
            tasks = build_tasks(config, "val", ways=5, shots=1, queries=1, within_alphabet=within)
            scores[within] = evaluate_learner(learner, tasks, episodes=args.episodes, device=resolve_device(args.device))
        acc = scores[True]["after"]
        rows.append([algo, f"{100 * acc:.2f}% ± {100 * scores[True]['ci95']:.2f}", f"{100 * scores[False]['after']:.2f}%",
                     trained.iterations])
        result[f"{algo}_5way_within"] = acc
        result[f"{algo}_5way_mixed"] = scores[False]["after"]
        result[f"{algo}_iterations"] = trained.iterations
        best = max(best, (acc, algo))
    print_table(f"Gradient-based learners, 5-way 1-shot meta-validation after {args.budget_minutes:g} min ({machine()})",
                ["algorithm", "within-alphabet", "mixed-alphabet", "meta-iterations"], rows)
    result.update(best_gradient_5way=best[0], best_gradient_algo=best[1])
    return result


def part_lake(args) -> dict:
    folder = args.model
    if folder is None:
        config = merge(default_config("omniglot", args.algo), ways=args.ways)
        train_run(config, args.out, budget_s=args.budget_minutes * 60, device=args.device, validate_every=500,
                  on_log=lambda r: print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
                  if "val_accuracy" in r else None)
        folder = args.out
    learner, saved = load_checkpoint(folder)
    config = saved["config"]
    size = config["task"]["image_size"]
    runs_dir = args.runs
    if runs_dir is None:
        names = config["task"]["val_alphabets"]
        runs_dir = Path(tempfile.mkdtemp(prefix="dev-oneshot-"))
        make_dev_runs(load_omniglot_background().subset_alphabets(names), read_background(), runs_dir, runs=20, seed=0)
    result = {"algo": config["algo"], "runs_dir": str(runs_dir), "iterations": saved["metrics"].get("iterations"),
              "train_seconds": saved["metrics"].get("seconds")}
    rows = []
    any_way = is_metric(config["algo"]) or "out_features" not in config["backbone"]
    if any_way or config["task"]["ways"] == 20:
        oneshot = score_runs(learner, read_runs(runs_dir), size)
        rows.append(["20-way within-alphabet one-shot runs", f"{100 * oneshot['error_rate']:.2f}% error", f"{oneshot['items']} items"])
        result["oneshot_error_rate"] = oneshot["error_rate"]
    for ways in ([5, 20] if any_way else [config["task"]["ways"]]):
        for within in (True, False):
            tasks = build_tasks(config, "val", ways=ways, shots=1, queries=1, within_alphabet=within)
            r = evaluate_learner(learner, tasks, episodes=args.episodes)
            where = "within-alphabet" if within else "mixed-alphabet"
            rows.append([f"{ways}-way 1-shot {where} meta-validation", f"{100 * r['after']:.2f}% acc", f"± {100 * r['ci95']:.2f}"])
            key = f"val_{ways}way_1shot_{'within' if within else 'mixed'}"
            result[f"{key}_accuracy"] = r["after"]
            result[f"{key}_ci95"] = r["ci95"]
    print_table(f"{config['algo']} on Omniglot ({result['iterations']} meta-iterations in {result['train_seconds']}s; {machine()})",
                ["evaluation", "score", "spread"], rows)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("folds", "gradient", "lake"), default="folds")
    ap.add_argument("--recipes", default="defaults", help=f"folds: comma-separated, from {', '.join(RECIPES)}")
    ap.add_argument("--fold-minutes", type=float, default=5.0, help="folds: meta-training per fold")
    ap.add_argument("--folds", type=int, default=len(FOLDS), help="folds: how many of the 4 to run")
    ap.add_argument("--runs-per-fold", type=int, default=20)
    ap.add_argument("--algos", default="protomaml", help="gradient: comma-separated gradient-based learners")
    ap.add_argument("--algo", default="protonet", help="lake: the learner to train")
    ap.add_argument("--ways", type=int, default=None, help="lake: training ways (default: the recipe's)")
    ap.add_argument("--budget-minutes", type=float, default=25.0, help="gradient and lake: meta-training per learner")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-omniglot"))
    ap.add_argument("--model", type=Path, default=None, help="lake: skip training; score this model")
    ap.add_argument("--runs", type=Path, default=None, help="lake: Lake-layout runs (default: dev runs)")
    ap.add_argument("--episodes", type=int, default=600)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when present)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"fold_error": None, "best_gradient_5way": None, "best_gradient_algo": None}
    result.update({"folds": part_folds, "gradient": part_gradient, "lake": part_lake}[args.part](args))
    print_json(result)


if __name__ == "__main__":
    main()
