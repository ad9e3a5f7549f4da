"""Omniglot 20-way within-alphabet one-shot: meta-train with the CLI's default recipe for a time
budget, then score Lake-layout runs. By default the runs are development runs built from the
held-out background alphabets (Balinese, Early_Aramaic); pass --runs to score other runs.

    python bench/omniglot_oneshot.py --algo protonet --budget-minutes 25 --out runs/protonet20
    python bench/omniglot_oneshot.py --model runs/protonet20        # score an existing model only
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
from learners.oneshot import make_dev_runs, read_runs, score_runs  # noqa: E402
from learners.registry import build_tasks, default_config, is_metric, merge  # noqa: E402
from learners.run import train_run  # noqa: E402
from learners.tasks import load_omniglot_background, read_background  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algo", default="protonet")
    ap.add_argument("--ways", type=int, default=None, help="training ways (default: the recipe's)")
    ap.add_argument("--budget-minutes", type=float, default=25.0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-omniglot"))
    ap.add_argument("--model", type=Path, default=None, help="skip training; score this model")
    ap.add_argument("--runs", type=Path, default=None, help="Lake-layout runs (default: dev runs)")
    ap.add_argument("--episodes", type=int, default=600)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    folder = args.model
    if folder is None:
        config = merge(default_config("omniglot", args.algo), ways=args.ways)
        train_run(config, args.out, budget_s=args.budget_minutes * 60, device="auto", validate_every=500,
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
    metric_based = is_metric(config["algo"])
    if metric_based or config["task"]["ways"] == 20:
        oneshot = score_runs(learner, read_runs(runs_dir), size)
        rows.append(["20-way within-alphabet one-shot runs", f"{100 * oneshot['error_rate']:.2f}% error", f"{oneshot['items']} items"])
        result["oneshot_error_rate"] = oneshot["error_rate"]
    ways_list = [5, 20] if metric_based else [config["task"]["ways"]]
    for ways in ways_list:
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
    print_json(result)


if __name__ == "__main__":
    main()
