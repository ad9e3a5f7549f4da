"""AutoML for tabular experience streams, measured (default run about 10 minutes on 2 cores;
``--part`` runs one part):

(a) ``selection``: real datasets shipped in River's wheel (Phishing, ImageSegments, Shuttle,
    Bananas) and River's drifting generators (Agrawal and SEA with abrupt drifts, a rotating
    Hyperplane), each run as a stream, test-then-train. The first ``--warmup`` rows (at most a fifth)
    choose the feature pipeline and are learned by everyone; the rest are scored. Compared: the
    auto-selected pipeline (our online selector over the candidates), the default learner
    (softmax regression with standardisation), every single candidate (the best in hindsight is
    the target), and River's own selectors over the same candidates with the same features:
    ``BanditClassifier`` with UCB and ``SuccessiveHalvingClassifier`` (River's greedy selector
    is for regression only). The selector's margin and window were chosen on the development
    streams (``--streams dev-rbf,...``), never on these.
(b) ``fe``: the same streams with 5 distractor columns (noise at random scales) added and every
    column rescaled by a random power of ten: the default learner with no engineering, with
    standardisation (the default pipeline), with each step added to it, and with the gated
    pipeline; the cost of engineering is the default pipeline's accuracy minus the gated one's.
(c) ``fewshot``: 5-way 5-shot episodes over held-out rows of ImageSegments (every class seen in
    meta-training, new rows at test) and 3-way 5-shot over held-out classes, for each
    meta-learner family on an MLP and for softmax regression trained on the same 5 examples.

    python bench/automl.py [--part selection|fe|fewshot] [--streams phishing,segment,...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _table import machine, print_json, print_table  # noqa: E402
from _tabular import river_selectors, selection_rows  # noqa: E402

from learners.tabular.candidates import DEFAULT_LEARNER, default_candidates  # noqa: E402
from learners.tabular.fewshot import FAMILIES, TabularEpisodes, accuracy, baseline_accuracy, build_fewshot_learner  # noqa: E402
from learners.tabular.gate import choose_pipeline  # noqa: E402
from learners.training import meta_train  # noqa: E402
from learners.tabular.pipeline import FeaturePipeline, Step  # noqa: E402
from learners.tabular.prequential import prequential, streamed_features  # noqa: E402
from learners.tabular.river_streams import STREAMS, load_stream  # noqa: E402

FE_VARIANTS = ("none", "standardise", "+log", "+products", "+select", "gated")


def warmup_rows(n: int, warmup: int) -> int:
    return min(warmup, n // 5)


def part_selection(names: list[str], warmup: int, seed: int) -> dict:
    rows, gaps, vs_default, vs_river = [], [], [], []
    for name in names:
        t0 = time.time()
        table = load_stream(name, seed=seed)
        W, k = warmup_rows(len(table), warmup), len(table.classes)
        gate = choose_pipeline(table.X[:W], table.y[:W], k, seed)
        Z = streamed_features(gate.pipeline, table.X)
        Zd = streamed_features(FeaturePipeline.fit(table.X[:W], (Step.STANDARDISE,)), table.X)
        scores = {"default": prequential(DEFAULT_LEARNER.build(Zd.shape[1], k, seed), Zd, table.y, W)}
        for spec in default_candidates():
            scores[spec.name] = prequential(spec.build(Z.shape[1], k, seed), Z, table.y, W)
        auto, switches, update_share = selection_rows(Z, table.y, k, W, seed)
        scores["auto"] = auto
        scores |= river_selectors(Z, table.y, k, W, seed)
        best_name = max((n for n in scores if n not in ("default", "auto") and not n.startswith("river")), key=scores.get)
        best = scores[best_name]
        river_mean = np.mean([v for n, v in scores.items() if n.startswith("river")])
        gaps.append(100 * (best - auto))
        vs_default.append(100 * (auto - scores["default"]))
        vs_river.append(100 * (auto - river_mean))
        rows.append([name, len(table), "+".join(s.value for s in gate.pipeline.steps) or "none",
                     f"{100 * auto:.2f}", f"{100 * scores['default']:.2f}", f"{100 * best:.2f} ({best_name})",
                     f"{100 * scores['river-bandit-ucb']:.2f}", f"{100 * scores['river-halving']:.2f}",
                     f"{gaps[-1]:+.2f}", len(switches), f"{100 * update_share:.0f}%", f"{time.time() - t0:.0f}s"])
        print(f"  {name}: auto {100 * auto:.2f}%, best single {100 * best:.2f}% ({best_name})", flush=True)
    print_table(f"Progressive accuracy (%) after the warm-up rows ({machine()})",
                ["stream", "rows", "pipeline", "auto", "default", "best single (hindsight)", "river bandit UCB",
                 "river halving", "gap to best", "switches", "updates spent", "time"], rows)
    return {"min_gap_to_best_single": -max(gaps), "worst_gap_stream": names[int(np.argmax(gaps))],
            "mean_gain_vs_default": float(np.mean(vs_default)), "mean_gain_vs_river_selector": float(np.mean(vs_river))}


def with_distractors(X: np.ndarray, seed: int) -> np.ndarray:
    gen = np.random.default_rng(seed)
    noise = gen.normal(size=(len(X), 5)) * 10.0 ** gen.uniform(-2, 3, size=5)
    scaled = X * 10.0 ** gen.uniform(-2, 3, size=X.shape[1])
    return np.concatenate([scaled, noise], 1).astype(np.float32)


def fe_pipeline(variant: str, X: np.ndarray, y: np.ndarray, k: int, seed: int) -> FeaturePipeline:
    if variant == "gated":
        return choose_pipeline(X, y, k, seed).pipeline
    if variant == "none":
        return FeaturePipeline.fit(X, ())
    if variant in ("standardise", "+log"):
        return FeaturePipeline.fit(X, (Step.STANDARDISE,) + ((Step.LOG,) if variant == "+log" else ()))
    from learners.tabular.gate import step_arguments
    from learners.tabular.importance import permutation_importance

    base = FeaturePipeline.fit(X, (Step.STANDARDISE,))
    cut = int(len(X) * 0.7)
    probe = DEFAULT_LEARNER.build(base.width, k, seed)
    probe.learn_many(base.transform(X[:cut]), y[:cut])
    imp = permutation_importance(probe, base.transform(X[cut:]), y[cut:], seed=seed)
    if variant == "+products":
        return FeaturePipeline.fit(X, (Step.STANDARDISE, Step.PRODUCTS), step_arguments(Step.PRODUCTS, imp))
    return FeaturePipeline.fit(X, (Step.STANDARDISE, Step.SELECT), keep=step_arguments(Step.SELECT, imp))


def part_fe(names: list[str], warmup: int, seed: int) -> dict:
    rows, costs = [], []
    for name in names:
        table = load_stream(name, seed=seed)
        X = with_distractors(table.X, seed)
        W, k = warmup_rows(len(table), warmup), len(table.classes)
        acc = {}
        for variant in FE_VARIANTS:
            pipe = fe_pipeline(variant, X[:W], table.y[:W], k, seed)
            Z = streamed_features(pipe, X)
            acc[variant] = 100 * prequential(DEFAULT_LEARNER.build(Z.shape[1], k, seed), Z, table.y, W)
        costs.append(acc["standardise"] - acc["gated"])
        rows.append([name] + [f"{acc[v]:.2f}" for v in FE_VARIANTS] + [f"{costs[-1]:+.2f}"])
        print(f"  {name}: " + ", ".join(f"{v} {acc[v]:.2f}" for v in FE_VARIANTS), flush=True)
    print_table("Feature engineering ablation: default learner, progressive accuracy (%), distractors and rescaled columns",
                ["stream"] + list(FE_VARIANTS) + ["cost (standardise - gated)"], rows)
    return {"worst_fe_cost": max(costs), "worst_fe_stream": names[int(np.argmax(costs))]}


def part_fewshot(iterations: int, episodes: int, seed: int) -> dict:
    table = load_stream("segment")
    gen = np.random.default_rng(seed)
    perm = gen.permutation(len(table))
    train_rows, test_rows = perm[: len(perm) // 2], perm[len(perm) // 2 :]
    mu, sd = table.X[train_rows].mean(0), table.X[train_rows].std(0)
    X = (table.X - mu) / np.where(sd > 0, sd, 1)
    seen, unseen = np.isin(table.y, [0, 1, 2, 3]), np.isin(table.y, [4, 5, 6])
    splits = {"held-out rows, 5-way 5-shot": (X[train_rows], table.y[train_rows], X[test_rows], table.y[test_rows], 5),
              "held-out classes, 3-way 5-shot": (X[seen], table.y[seen], X[unseen], table.y[unseen], 3)}
    rows, results = [], {}
    for split, (Xtr, ytr, Xte, yte, ways) in splits.items():
        train, test = TabularEpisodes(Xtr, ytr, ways, 5, 5), TabularEpisodes(Xte, yte, ways, 5, 5)
        mean, ci = baseline_accuracy(test, episodes)
        rows.append([split, "softmax regression on the 5 shots (no meta-learning)", f"{100 * mean:.1f} ± {100 * ci:.1f}", "-"])
        for family in FAMILIES:
            t0 = time.time()
            learner = build_fewshot_learner(family, X.shape[1], ways)
            torch.manual_seed(seed)
            meta_train(learner, lambda g: train.sample(8, g), torch.Generator().manual_seed(seed), iterations=iterations, cosine=False)
            mean, ci = accuracy(learner, test, episodes)
            results[(split, family)] = mean
            rows.append([split, family, f"{100 * mean:.1f} ± {100 * ci:.1f}", f"{time.time() - t0:.0f}s"])
            print(f"  {split}, {family}: {100 * mean:.1f}%", flush=True)
    print_table(f"Few-shot tabular tasks from ImageSegments ({episodes} test episodes, {iterations} meta-iterations)",
                ["split", "learner", "accuracy (%)", "time"], rows)
    first = list(splits)[0]
    best = max(FAMILIES, key=lambda f: results[(first, f)])
    return {"fewshot_5shot_accuracy": results[(first, best)], "fewshot_best_family": best,
            "fewshot_5shot_by_family": {f: results[(first, f)] for f in FAMILIES}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("all", "selection", "fe", "fewshot"), default="all")
    ap.add_argument("--streams", default=",".join(STREAMS), help="comma-separated; dev-* streams for choosing settings")
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--fewshot-iterations", type=int, default=1000)
    ap.add_argument("--episodes", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (tiny models: one is fastest)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = [n for n in args.streams.split(",") if n]
    out: dict = {}
    if args.part in ("all", "selection"):
        out |= part_selection(names, args.warmup, args.seed)
    if args.part in ("all", "fe"):
        out |= part_fe(names, args.warmup, args.seed)
    if args.part in ("all", "fewshot"):
        out |= part_fewshot(args.fewshot_iterations, args.episodes, args.seed)
    print_json(out)


if __name__ == "__main__":
    main()
