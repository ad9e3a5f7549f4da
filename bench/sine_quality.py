"""Sine regression (Finn et al., 2017): meta-train for at most --budget-minutes CPU minutes, then
adapt with 10 gradient steps on K=10 points of 600 unseen tasks and report the query MSE with its
95% interval, beside a non-meta-learned baseline (one network pre-trained on all tasks jointly,
then fine-tuned with the same 10 steps and step size).

    python bench/sine_quality.py --budget-minutes 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import machine, print_json, print_table  # noqa: E402

from learners import MLP, SineTasks  # noqa: E402
from learners.base import task_loss  # noqa: E402
from learners.evaluation import evaluate_learner  # noqa: E402
from learners.maml import FirstOrderMAML  # noqa: E402
from learners.registry import default_config, merge  # noqa: E402
from learners.run import train_run  # noqa: E402


def pretrained_baseline(iterations: int, inner_lr: float, test_steps: int, seed: int = 0) -> FirstOrderMAML:
    """A plain regressor trained on points of random tasks (it learns the average task), wrapped in
    a gradient learner only so it is fine-tuned and scored exactly like the meta-learned model."""
    torch.manual_seed(seed)
    model = MLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tasks = SineTasks(shots=10, queries=10)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(iterations):
        b = tasks.sample(25, gen)
        loss = task_loss("regression", model(b.support_x), b.support_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return FirstOrderMAML(model, "regression", inner_lr=inner_lr, inner_steps=1, test_steps=test_steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algo", default="maml")
    ap.add_argument("--budget-minutes", type=float, default=10.0)
    ap.add_argument("--inner-steps", type=int, default=None)
    ap.add_argument("--inner-lr", type=float, default=None)
    ap.add_argument("--meta-lr", type=float, default=None)
    ap.add_argument("--meta-batch", type=int, default=None)
    ap.add_argument("--episodes", type=int, default=600)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-sine"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    config = merge(default_config("sine", args.algo), inner_steps=args.inner_steps, inner_lr=args.inner_lr,
                   meta_lr=args.meta_lr, meta_batch=args.meta_batch, test_steps=args.steps)
    start = time.process_time()
    learner, result, _ = train_run(config, args.out, budget_s=args.budget_minutes * 60, device="cpu",
                                   validate_every=10**9, final_episodes=0)
    cpu_minutes = (time.process_time() - start) / 60
    meta = evaluate_learner(learner, SineTasks(10, 10), episodes=args.episodes, steps=args.steps, seed=2024)
    base = pretrained_baseline(20000, config["learner"]["inner_lr"], args.steps)
    baseline = evaluate_learner(base, SineTasks(10, 10), episodes=args.episodes, steps=args.steps, seed=2024)

    rows = [
        [f"{args.algo} (meta-learned, {result.iterations} it)", f"{meta['before']:.3f}", f"{meta['after']:.4f} ± {meta['ci95']:.4f}"],
        ["pre-trained on all tasks, fine-tuned", f"{baseline['before']:.3f}", f"{baseline['after']:.4f} ± {baseline['ci95']:.4f}"],
    ]
    print_table(f"sine, K=10, {args.steps} steps of lr {config['learner']['inner_lr']}, {args.episodes} unseen tasks; "
                f"{cpu_minutes:.1f} CPU min of meta-training ({machine()})",
                ["model", "MSE before", "MSE after (95% CI)"], rows)
    print_json({"mse_after": meta["after"], "mse_ci95": meta["ci95"], "mse_before": meta["before"],
                "baseline_mse_after": baseline["after"], "baseline_ci95": baseline["ci95"],
                "iterations": result.iterations, "cpu_minutes": round(cpu_minutes, 2), "config": config["learner"]})


if __name__ == "__main__":
    main()
