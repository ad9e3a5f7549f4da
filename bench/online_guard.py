"""What the stream workers' drift update keeps and learns, by its continual-learning terms: replay
alone, + distillation to the parent, + online EWC (the default), and stronger settings.

Per seed: a champion is meta-trained on 300 buffered pre-drift tasks with the worker's model and
settings (``sine``: 40-40 MLP, first-order MAML, 10 test steps; ``digits``: ProtoNet on a small MLP,
5-way 1-shot), then 40 drifted tasks arrive (sine frequency 1 -> 2; digits rotated a quarter turn)
and one drift update runs as the worker runs it (50 iterations, meta-batch 16, 3/4 of each batch
from the 16 newest tasks). Each candidate is scored on 300 *fresh* tasks of each kind (sine: MSE
after 10-shot adaptation, lower is better; digits: accuracy in %, from test images the training
tasks never used); nothing here is used to train.

    python bench/online_guard.py [--task sine|digits] [--seeds 6]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import machine, print_json, print_table  # noqa: E402

VARIANTS = [  # name, distill, ewc
    ("replay only", 0.0, 0.0),
    ("replay + distill", 1.0, 0.0),
    ("replay + distill + EWC 1", 1.0, 1.0),
    ("replay + EWC 1", 0.0, 1.0),
    ("replay + distill + EWC 10", 1.0, 10.0),
]


def make_fleet(task: str, seed: int, evaluation: bool = False):
    from streams.simulation.fleet import DigitFleet, SineFleet

    return SineFleet(seed=seed) if task == "sine" else DigitFleet(seed=seed, split="test" if evaluation else "train")


def fresh_tasks(task: str, drifted: bool, n: int = 300, seed: int = 99):
    from learners.online import TaskReplayBuffer

    fleet, buf, ids = make_fleet(task, seed, evaluation=True), TaskReplayBuffer(2**26, 40), []
    for _ in range(n):
        tid, x, y = fleet.sample_task(drifted)
        buf.add(tid, x, y)
        ids.append(tid)
    return buf, ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--task", choices=["sine", "digits"], default="sine")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from learners.online import OnlineMetaLearner, TaskReplayBuffer
    from streams.catalog.presets import model_presets
    from streams.settings import Settings

    s = Settings()
    config = model_presets()[args.task]
    old_eval, new_eval = fresh_tasks(args.task, False, seed=99), fresh_tasks(args.task, True, seed=98)
    scale = 1.0 if args.task == "sine" else 100.0  # MSE, or accuracy in %
    terms = s.guard_for(config)
    default = (terms.distill, terms.ewc)
    variants = [(name + (" (default)" if (d, e) == default else ""), d, e) for name, d, e in VARIANTS]

    def mse(learner: OnlineMetaLearner, tasks) -> float:
        return scale * learner.score(learner.champion, learner.task_batch(*tasks))

    results: dict[str, dict[str, list[float]]] = {name: {"old": [], "new": []} for name in ["champion at the drift", *[v[0] for v in variants]]}
    for seed in range(args.seeds):
        base = OnlineMetaLearner(config, seed=seed)
        buf, fleet = TaskReplayBuffer(2**26, 40), make_fleet(args.task, seed + 10)
        for _ in range(300):
            buf.add(*fleet.sample_task(False))
        for _ in range(6):
            base.promote(base.propose(buf, 200, s.update.meta_batch, heldout=16))
        old_ids = buf.task_ids()
        for _ in range(40):
            buf.add(*fleet.sample_task(True))
        results["champion at the drift"]["old"].append(mse(base, old_eval))
        results["champion at the drift"]["new"].append(mse(base, new_eval))
        for name, distill, ewc in variants:
            learner = copy.deepcopy(base)
            learner._gen = torch.Generator().manual_seed(seed)
            learner.promote(learner.propose(buf, s.update.drift_iterations, s.update.meta_batch, heldout=s.update.heldout_tasks,
                                            recent=s.update.drift_recent, recent_share=s.update.drift_share,
                                            distill=distill, distill_tasks=old_ids, ewc=ewc))
            results[name]["old"].append(mse(learner, old_eval))
            results[name]["new"].append(mse(learner, new_eval))
        print(f"seed {seed} done", flush=True)

    rows, figures = [], {}
    for name, r in results.items():
        old, new = np.array(r["old"]), np.array(r["new"])
        digits = 3 if args.task == "sine" else 1
        rows.append([name, f"{old.mean():.{digits}f} ± {old.std():.{digits}f}", f"{new.mean():.{digits}f} ± {new.std():.{digits}f}"])
        figures[name] = {"old": round(float(old.mean()), 4), "new": round(float(new.mean()), 4)}
    what = "MSE after 10-shot adaptation" if args.task == "sine" else "5-way 1-shot accuracy (%)"
    print_table(f"{args.task}: one drift update, {what} on 300 fresh tasks, mean ± spread over {args.seeds} seeds ({machine()})",
                ["update", "tasks as before the drift", "drifted tasks"], rows)
    print_json({"task": args.task, "metric": "mse" if args.task == "sine" else "accuracy_percent", "seeds": args.seeds,
                "variants": figures})


if __name__ == "__main__":
    main()
