"""How far one permuted-MNIST task can be learned at all: the benchmark's MLP (784-100-100-10, SGD
0.1, batch 10) trained from scratch on one task's 1,000 training images for 1 to 50 epochs,
scored on that task's 2,000 test images. A diagnostic of the protocol's ceiling (what ACC >= 0.88
would ask of every task after a single pass), not a method and not used to choose anything.

    python bench/continual_ceiling.py [--tasks 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import machine, print_json, print_table  # noqa: E402

EPOCHS = (1, 5, 20, 50)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from learners.continual.mnist import permuted_tasks
    from learners.continual.runner import mlp

    tasks = permuted_tasks(seed=0)[: args.tasks]
    acc = {e: [] for e in EPOCHS}
    for t in tasks:
        torch.manual_seed(0)
        model, gen = mlp(), torch.Generator().manual_seed(0)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(1, max(EPOCHS) + 1):
            order = torch.randperm(len(t.train_y), generator=gen)
            for k in range(0, len(order), 10):
                idx = order[k : k + 10]
                loss = F.cross_entropy(model(t.train_x[idx]), t.train_y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            if epoch in acc:
                with torch.no_grad():
                    acc[epoch].append(float((model(t.test_x).argmax(-1) == t.test_y).float().mean()))
    rows = [[e, *(f"{a:.3f}" for a in acc[e]), f"{sum(acc[e]) / len(acc[e]):.3f}"] for e in EPOCHS]
    print_table(f"one permuted-MNIST task learned alone, test accuracy by epochs ({machine()})",
                ["epochs", *(f"task {i}" for i in range(len(tasks))), "mean"], rows)
    print_json({"epochs": list(EPOCHS), "mean_accuracy": [round(sum(acc[e]) / len(acc[e]), 4) for e in EPOCHS]})


if __name__ == "__main__":
    main()
