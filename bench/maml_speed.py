"""Second-order MAML meta-iteration time: metastream's torch.func version against a reference written
the way learn2learn does it (clone, autograd.grad with create_graph, substitute parameters, Python
loop over tasks), in the same run, on one thread.

    python bench/maml_speed.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the reference lives with the tests
from _table import machine, print_json, print_table  # noqa: E402

from learners import MAML, MLP, SineTasks  # noqa: E402
from learners.backbones import Conv4  # noqa: E402
from learners.tasks import Episodes, load_omniglot_background  # noqa: E402
from tests.maml_reference import reference_meta_gradient  # noqa: E402


def time_it(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def compare(model_fn, kind, batch, inner_lr, repeats):
    torch.manual_seed(0)
    fast = MAML(model_fn(), kind, inner_lr=inner_lr, inner_steps=1)
    torch.manual_seed(0)
    ref_model = model_fn()
    ref_opt = torch.optim.Adam(ref_model.parameters(), lr=1e-3)

    def reference_step():
        reference_meta_gradient(ref_model, kind, batch, inner_lr, 1)
        ref_opt.step()

    return time_it(lambda: fast.meta_update(batch), repeats), time_it(reference_step, repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)

    sine = SineTasks(shots=10, queries=10).sample(25, gen)
    s_fast, s_ref = compare(MLP, "regression", sine, 0.01, args.repeats)

    omni = Episodes(load_omniglot_background(), ways=5, shots=1, queries=5).sample(16, gen)
    o_fast, o_ref = compare(lambda: Conv4(out_features=5), "classification", omni, 0.4, max(5, args.repeats // 5))

    rows = [
        ["sine, 40-40 MLP, meta-batch 25, 10+10 pts, 1 step", f"{s_fast:.2f}", f"{s_ref:.2f}", f"{s_ref / s_fast:.1f}x"],
        ["omniglot 5-way 1-shot 5-query, Conv-4, meta-batch 16", f"{o_fast:.1f}", f"{o_ref:.1f}", f"{o_ref / o_fast:.1f}x"],
    ]
    print_table(f"second-order MAML, ms per meta-iteration (median; {machine()})",
                ["setting", "torch.func (ms)", "learn2learn-style loop (ms)", "speedup"], rows)
    print_json({"speedup_sine": round(s_ref / s_fast, 2), "speedup_omniglot": round(o_ref / o_fast, 2),
                "sine_ms": round(s_fast, 3), "sine_reference_ms": round(s_ref, 3),
                "omniglot_ms": round(o_fast, 2), "omniglot_reference_ms": round(o_ref, 2)})


if __name__ == "__main__":
    main()
