"""Continual learning on MNIST: permuted MNIST (GEM protocol, 20 tasks) and split MNIST (5 tasks,
class- and task-incremental), every method against finetune (lower bound) and joint (upper
bound), over --seeds seeds; then teacher-to-student compression of the best class-incremental
model (size against accuracy). Protocols: ``learners/continual/benchmark.py``.

    python bench/continual.py [--seeds 3] [--out runs/continual]

Anchors from the literature: permuted (GEM) ACC 0.83, A-GEM 0.81; split class-il DER++ (200
items) about 0.86, ER about 0.80, online replay (1,000 items) 0.92, LwF 0.23.
Targets: permuted ACC >= 0.88 with BWT >= -0.03; split class-il >= 0.88 (200 items), >= 0.94 (1,000).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_json, print_table  # noqa: E402

# (benchmark, scenario, buffer, SGD steps per incoming batch, methods: None = all that apply)
CONFIGS = [
    ("permuted", "domain-il", 1000, 1, None),
    ("permuted", "domain-il", 5120, 1, None),  # GEM's memory: 256 items per task
    ("permuted", "domain-il", 5120, 3, ["der++"]),  # outside the GEM protocol: 3 steps per batch, as MER
    ("split", "class-il", 200, 1, None),
    ("split", "class-il", 1000, 1, None),
    ("split", "task-il", 200, 1, None),
]
TARGETS = {("permuted", 1000): 0.88, ("permuted", 5120): 0.88, ("split", 200): 0.88, ("split", 1000): 0.94}


def compression_rows(run, tasks) -> list[list]:
    """Distil the final model of a run into smaller MLPs on what it still holds (its replay buffer
    and the last task's inputs: no old data comes back) and score every task's test set."""
    import torch

    from learners.continual.distill import compress, parameter_count
    from learners.continual.runner import mlp

    x = torch.cat([run.buffer.items()[0], tasks[-1].train_x]) if run.buffer is not None else tasks[-1].train_x
    test_x = torch.cat([t.test_x for t in tasks])
    test_y = torch.cat([t.test_y for t in tasks])

    def acc(model) -> float:
        with torch.no_grad():
            return float((model(test_x).argmax(-1) == test_y).float().mean())

    teacher_acc = acc(run.model)
    rows = [[f"teacher ({run.method}) 100-100", parameter_count(run.model), f"{teacher_acc:.3f}", "-"]]
    for hidden in (50, 25, 10):
        torch.manual_seed(0)
        student = compress(run.model, mlp(hidden), x, epochs=30)
        a = acc(student)
        rows.append([f"student {hidden}-{hidden}", parameter_count(student), f"{a:.3f}", f"{a - teacher_acc:+.3f}"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("runs/continual"))
    args = ap.parse_args()

    from learners.continual.benchmark import run_benchmark
    from learners.continual.mnist import split_tasks
    from streams.cli.plots import plot_continual

    figures: dict = {"seeds": args.seeds, "results": [], "compression": []}
    best_split = None
    for benchmark, scenario, buffer, iterations, methods in CONFIGS:
        started = time.perf_counter()
        result = run_benchmark(benchmark, scenario, methods, buffer, args.seeds, iterations=iterations)
        plot_continual(result, args.out)
        summary = result.summary()
        best = result.best_method()
        target = TARGETS.get((benchmark, buffer)) if scenario != "task-il" and iterations == 1 else None
        best_acc = summary["methods"][best]["acc"]
        steps = f", {iterations} SGD steps per batch" if iterations > 1 else ""
        print_table(f"{benchmark} MNIST, {scenario}, buffer {buffer}, {result.epochs} epoch(s){steps}, {args.seeds} seed(s) "
                    f"[{time.perf_counter() - started:.0f}s]", list(result.COLUMNS), result.rows())
        verdict = "" if target is None else f"; target ACC >= {target}: {'met' if best_acc >= target else 'NOT met'}"
        print(f"best: {best} ACC {best_acc:.3f} BWT {summary['methods'][best]['bwt']:+.3f}{verdict}\n")
        figures["results"].append(summary)
        if benchmark == "split" and scenario == "class-il" and buffer == 1000:
            best_split = result.methods[best].runs[0]
    if best_split is not None:
        rows = compression_rows(best_split, split_tasks())
        print_table("compression of the best split class-il model (buffer 1000, seed 0), distilled on its buffer + last task",
                    ["model", "parameters", "ACC", "vs teacher"], rows)
        figures["compression"] = [{"model": r[0], "parameters": r[1], "acc": float(r[2])} for r in rows]
    print(f"plots in {args.out}/")
    print_json(figures)


if __name__ == "__main__":
    main()
