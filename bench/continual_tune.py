"""Choose the replay methods' hyperparameters on validation splits of the *training* images (20%
of each task's training images held out; the benchmark's test images are never looked at), for
permuted MNIST and split MNIST class-il, and print the best per (benchmark, buffer, method).

    python bench/continual_tune.py [--only der++wa]

The chosen values are the defaults of ``learners/continual/benchmark.py`` (BENCHMARKS[...]["tuned"]).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_json, print_table  # noqa: E402

GRID = {"lr": [0.03, 0.1], "replay_batch": [10, 32], "der_alpha": [0.1, 0.3, 1.0], "der_beta": [0.5, 1.0]}


def main() -> None:
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None
    from learners.continual.benchmark import BENCHMARKS, validation_tasks
    from learners.continual.mnist import permuted_tasks, split_tasks
    from learners.continual.runner import ContinualConfig, run_method

    chosen = {}
    rows = []
    for benchmark, buffer in (("permuted", 1000), ("split", 200), ("split", 1000)):
        spec = BENCHMARKS[benchmark]
        tasks = validation_tasks(permuted_tasks(seed=0) if benchmark == "permuted" else split_tasks())
        for method in ("er", "der++") if benchmark == "permuted" else ("er", "der++", "der++wa"):
            if only and method not in only:
                continue
            keys = ["lr", "replay_batch"] + (["der_alpha", "der_beta"] if method.startswith("der++") else [])
            best = None
            for values in itertools.product(*(GRID[k] for k in keys)):
                params = dict(zip(keys, values))
                cfg = ContinualConfig(epochs=spec["epochs"], buffer=buffer, seed=0, **params)
                acc = run_method(method, tasks, spec["scenario"], cfg).metrics.acc
                if best is None or acc > best[0]:
                    best = (acc, params)
            chosen[f"{benchmark}/{buffer}/{method}"] = best[1]
            rows.append([benchmark, buffer, method, f"{best[0]:.3f}", ", ".join(f"{k}={v}" for k, v in best[1].items())])
            print(rows[-1], flush=True)
    print_table("best hyperparameters on validation splits of the training images", ["benchmark", "buffer", "method", "val ACC", "chosen"], rows)
    print_json(chosen)


if __name__ == "__main__":
    main()
