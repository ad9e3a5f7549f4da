"""Transfer, measured. Built so far: ``--part encoding`` (about 6 minutes on 2 cores): does a task's
encoding under the meta-model (``learners/transfer/``) mean something?

- Omniglot: a ProtoNet meta-trained for ``--minutes`` (Balinese and Early_Aramaic held out);
  within-alphabet 5-way 1-shot episodes, ``--episodes`` per alphabet of all 8 background
  alphabets, encoded from their support images; precision@5 of retrieving episodes of the same
  alphabet (chance 1/8), against the same network untrained.
- Sine: MAML meta-trained for ``--minutes``/3; 300 tasks encoded from 10 support points (the
  gradient code); Spearman correlation of pairwise similarity with minus the true distance (the
  L2 distance between the two curves over [-5, 5], which amplitude and phase determine), against
  the same code at a random initialisation.
- Digits: the digits stream's ProtoNet meta-trained on upright tasks for ``--minutes``/3; 150
  upright and 150 rotated tasks (from the held-out digit images), shuffled, clustered one at a
  time (the threshold is calibrated on 100 other upright tasks only, as a worker knows only the
  regime it serves): clusters made, purity, and
  the share of rotated tasks outside the upright tasks' cluster.

Not built yet: cold start (``warm_minus_scratch``), retention of a mixture, domain adaptation
(``da_gain_vs_finetune``).

    python bench/transfer.py [--minutes 3] [--episodes 25]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _table import machine, print_json, print_table  # noqa: E402

from learners.registry import build_learner, default_config  # noqa: E402
from learners.tasks import load_omniglot_background  # noqa: E402
from learners.tasks.base import TaskBatch  # noqa: E402
from learners.tasks.episodes import Episodes  # noqa: E402
from learners.tasks.sine import SineTasks  # noqa: E402
from learners.transfer import OnlineTaskClusters, cosine_matrix, encode_tasks, precision_at_k, spearman  # noqa: E402
from learners.training import meta_train  # noqa: E402
from learners.transfer.clustering import calibrated_threshold  # noqa: E402
from streams.fleet import DigitFleet  # noqa: E402
from streams.presets import digits_model  # noqa: E402

def omniglot(minutes: float, episodes: int, seed: int) -> dict:
    config = default_config("omniglot", "protonet")
    torch.manual_seed(seed)
    learner, untrained = build_learner(config), build_learner(config)
    from learners.registry import build_tasks

    tasks, gen = build_tasks(config, "train"), torch.Generator().manual_seed(seed)
    it = meta_train(learner, lambda g: tasks.sample(config["meta_batch"], g), gen, budget_s=minutes * 60, cosine=False).iterations
    charset = load_omniglot_background()
    present = sorted({a.split("@")[0] for a in charset.alphabets})
    support, labels = [], []
    eval_gen = torch.Generator().manual_seed(1234)
    for alphabet in present:
        batch = Episodes(charset.subset_alphabets([alphabet]), 5, 1, 1, True, None).sample(episodes, eval_gen)
        support.append(batch.support_x)
        labels += [alphabet] * episodes
    x = torch.cat(support)
    y = torch.zeros(x.shape[:2], dtype=torch.long)
    trained = precision_at_k(encode_tasks(learner, x, y), labels)
    random = precision_at_k(encode_tasks(untrained, x, y), labels)
    return {"alphabet_precision_at_5": trained, "alphabet_precision_untrained": random, "omniglot_iterations": it,
            "chance": 1 / len(present)}


def sine(minutes: float, seed: int) -> dict:
    config = default_config("sine", "maml")
    torch.manual_seed(seed)
    learner, untrained = build_learner(config), build_learner(config)
    tasks, gen = SineTasks(), torch.Generator().manual_seed(seed)
    it = meta_train(learner, lambda g: tasks.sample(config["meta_batch"], g), gen, budget_s=minutes * 60, cosine=False).iterations
    eval_gen = torch.Generator().manual_seed(99)
    amp, phase = tasks.sample_params(300, eval_gen)
    x = tasks.sample_x(300, 10, eval_gen)
    y = SineTasks.curve(x, amp, phase)
    grid = torch.linspace(-5, 5, 200).view(1, -1, 1)
    curves = SineTasks.curve(grid.expand(300, -1, -1), amp, phase)[..., 0]
    dist = torch.cdist(curves, curves).numpy() / np.sqrt(200)
    upper = np.triu_indices(300, 1)
    out = {}
    for name, model in (("trained", learner), ("untrained", untrained)):
        sim = cosine_matrix(encode_tasks(model, x, y))
        out[name] = spearman(sim[upper], -dist[upper])
    return {"sine_spearman": out["trained"], "sine_spearman_untrained": out["untrained"], "sine_iterations": it}


def digits(minutes: float, seed: int) -> dict:
    config = digits_model(5, 1)
    torch.manual_seed(seed)
    learner = build_learner(config)
    fleet = DigitFleet(seed=seed, per_class=2)

    def sample(drifted: bool = False, n: int = 16) -> TaskBatch:
        eps = [fleet.episode(drifted) for _ in range(n)]
        return TaskBatch(*(torch.from_numpy(np.stack(p)) for p in zip(*eps)))
    it = meta_train(learner, lambda g: sample(), torch.Generator(), budget_s=minutes * 60, cosine=False).iterations
    test = DigitFleet(seed=seed + 7, per_class=2, split="test")
    regime = DigitFleet(seed=seed + 3, per_class=2, split="test")
    calib = [regime.episode(False) for _ in range(100)]  # the regime it serves now
    threshold = calibrated_threshold(encode_tasks(learner, torch.from_numpy(np.stack([c[0] for c in calib])),
                                                  torch.from_numpy(np.stack([c[1] for c in calib]))))
    rng = np.random.default_rng(seed)
    kinds = rng.permutation(np.array([False] * 150 + [True] * 150))
    clusters = OnlineTaskClusters(threshold)
    assigned = []
    for rotated in kinds:
        sx, sy, _, _ = test.episode(bool(rotated))
        assigned.append(clusters.learn_one(encode_tasks(learner, torch.from_numpy(sx)[None], torch.from_numpy(sy)[None])[0]))
    assigned = np.array(assigned)
    purity = sum(max((kinds[assigned == c]).sum(), (~kinds[assigned == c]).sum()) for c in np.unique(assigned)) / len(kinds)
    upright_home = np.bincount(assigned[~kinds]).argmax()
    return {"digits_clusters": int(len(np.unique(assigned))), "digits_purity": float(purity),
            "digits_rotated_apart": float((assigned[kinds] != upright_home).mean()),
            "digits_upright_home": float((assigned[~kinds] == upright_home).mean()), "digits_iterations": it,
            "digits_threshold": threshold}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("encoding",), default="encoding")
    ap.add_argument("--minutes", type=float, default=3.0, help="Omniglot meta-training; sine and digits get a third each")
    ap.add_argument("--episodes", type=int, default=25, help="Omniglot episodes per alphabet")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = {}
    out |= omniglot(args.minutes, args.episodes, args.seed)
    out |= sine(args.minutes / 3, args.seed)
    out |= digits(args.minutes / 3, args.seed)
    print_table(f"Task encodings ({machine()})", ["check", "meta-trained", "untrained / reference"], [
        ["Omniglot: same-alphabet precision@5 (8 alphabets)", f"{out['alphabet_precision_at_5']:.3f}",
         f"{out['alphabet_precision_untrained']:.3f} (chance {out['chance']:.3f})"],
        ["sine: Spearman(similarity, -curve distance)", f"{out['sine_spearman']:.3f}", f"{out['sine_spearman_untrained']:.3f}"],
        ["digits: clusters / purity", f"{out['digits_clusters']} / {out['digits_purity']:.3f}", "2 / 1.000 ideal"],
        ["digits: rotated tasks outside the upright cluster", f"{out['digits_rotated_apart']:.3f}",
         f"upright at home {out['digits_upright_home']:.3f}"],
    ])
    print_json(out)


if __name__ == "__main__":
    main()
