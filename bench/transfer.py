"""Transfer, measured (default: every part, about 30 minutes on 2 cores). ``--part encoding``
(about 6 minutes): does a task's encoding under the meta-model (``learners/transfer/``) mean
something?

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
  the share of rotated tasks outside the upright tasks' cluster; once with the meta-model's
  encoding (task-to-task threshold) and once with the support inputs' statistics alone
  (``encode_inputs``, threshold calibrated as similarity to a centre: ``digits_inputs_*``).

``--part adaptation`` (about 15 minutes; 25 with another benchmark on the second core): domain
adaptation of an MNIST classifier (an MLP with batch normalisation on 8x8 images pooled the way
UCI's were made, ``learners/transfer/``) to UCI's optical digits (a real shift: other writers,
capture and preprocessing), to rotated and to inverted MNIST, with 5 labelled target images per class (``--seeds`` draws) and the rest of the
target split into unlabelled inputs (which AdaBN, CORAL and MMD may use) and a test half. Each
method's test accuracy, and the method chosen by 2-fold cross-validation on the 50 labels alone;
``da_gain_vs_finetune`` is the chosen method's accuracy minus plain fine-tuning's on UCI (points).
Then source selection: models trained on upright, rotated and inverted MNIST; the domain
similarity (MMD between the target's unlabelled inputs and each source's) predicts which to
transfer from; the truth is the source whose fine-tuned model scores best.

``--part coldstart`` (about 7 minutes): a new agent type starting from an existing model (what the
new-models policy does) against starting from scratch, with the worker's own update loop (30 new
tasks, then an update of 40 meta-iterations judged by the gate), 5-way 1-shot accuracy on 300
fresh tasks of the new type after each of the first ``--updates`` updates:
- Omniglot: the source is a ProtoNet meta-trained for ``--minutes`` on 6 background alphabets;
  the new agent type's tasks come from the two held out (Balinese, Early_Aramaic).
- Digits: the source is the digits stream's ProtoNet after 20 updates on upright MNIST tasks; the
  new agent type sees the digits rotated a quarter turn.
``warm_minus_scratch`` is the accuracy difference after ``--updates`` updates (points, mean of the
two); ``transfer_ratio`` the warm-started model's accuracy on the new type after them over the
source's accuracy on its own tasks (mean of the two; the seed asks > 0.7); ``retention`` the
warm-started model after those updates scored back on the source's own tasks, over the source's
score there (the lower of the two): what a new agent type keeps of what it started from.

The adaptation part then does Omniglot alphabet to alphabet (``learners/transfer/new_labels.py``):
a small convolutional classifier (two blocks with batch normalisation, 14x14 images) of the
characters of six background alphabets adapted to a held-out alphabet (Balinese, then
Early_Aramaic: new characters, so a fresh head) with 5 labelled drawings per character, half of the
other drawings unlabelled and half for the test. ``prototypes`` (class means of the source
embedding, no training) is the accuracy before adaptation; ``alphabet_da_gain_vs_finetune`` is the
method chosen by cross-validation on the labels against plain fine-tuning (points, mean of the two
alphabets). It is most of the part's time (4 minutes for 2 draws alone).

    python bench/transfer.py [--part encoding|adaptation|coldstart|all] [--minutes 3] [--episodes 25] [--seeds 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _coldstart import coldstart  # noqa: E402
from _table import machine, print_json, print_table  # noqa: E402
from learners.registry import build_learner, default_config  # noqa: E402
from learners.tasks import load_omniglot_background  # noqa: E402
from learners.tasks.base import TaskBatch  # noqa: E402
from learners.tasks.episodes import Episodes  # noqa: E402
from learners.tasks.sine import SineTasks  # noqa: E402
from learners.transfer import OnlineTaskClusters, cosine_matrix, encode_inputs, encode_tasks, precision_at_k, spearman  # noqa: E402
from learners.training import meta_train  # noqa: E402
from learners.transfer.clustering import calibrated_centre_threshold, calibrated_threshold  # noqa: E402
from streams.simulation.fleet import DigitFleet  # noqa: E402
from streams.catalog.presets import digits_model  # noqa: E402

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

TARGET_ALPHABETS = ("Balinese", "Early_Aramaic")


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
    rng = np.random.default_rng(seed)
    kinds = rng.permutation(np.array([False] * 150 + [True] * 150))
    tasks = [test.episode(bool(rotated)) for rotated in kinds]
    out = {"digits_iterations": it}
    # the meta-model's encoding with the task-to-task threshold; the inputs' statistics with the
    # threshold calibrated as similarity to a centre (how a task joins a cluster)
    for name, encode, calibrate in (("", lambda sx, sy: encode_tasks(learner, sx, sy), calibrated_threshold),
                                    ("_inputs", lambda sx, sy: encode_inputs(sx), calibrated_centre_threshold)):
        threshold = calibrate(encode(torch.from_numpy(np.stack([c[0] for c in calib])), torch.from_numpy(np.stack([c[1] for c in calib]))))
        clusters = OnlineTaskClusters(threshold)
        assigned = np.array([clusters.learn_one(encode(torch.from_numpy(sx)[None], torch.from_numpy(sy)[None])[0])
                             for sx, sy, _, _ in tasks])
        purity = sum(max((kinds[assigned == c]).sum(), (~kinds[assigned == c]).sum()) for c in np.unique(assigned)) / len(kinds)
        upright_home = np.bincount(assigned[~kinds]).argmax()
        out |= {f"digits{name}_clusters": int(len(np.unique(assigned))), f"digits{name}_purity": float(purity),
                f"digits{name}_rotated_apart": float((assigned[kinds] != upright_home).mean()),
                f"digits{name}_upright_home": float((assigned[~kinds] == upright_home).mean()), f"digits{name}_threshold": threshold}
    return out


def adaptation_draws(model, source_x, source_y, x, y, adapt: dict, seeds: int, seed: int,
                     source_only: bool = False) -> tuple[dict[str, float], list[str], str]:
    """Mean test accuracy (%) of each method of ``adapt`` (and of the source model as it is, with
    ``source_only``) and of the one 2-fold cross-validation on the labels picks ("auto"), over
    ``seeds`` draws of 5 labels per class, the rest of the target split into unlabelled inputs and
    a test half; the picks, and the best method in hindsight."""
    from learners.transfer.adaptation import Domains, accuracy, choose_method
    from learners.transfer.digit_domains import split_by_class

    scores = {m: [] for m in (("source only",) if source_only else ()) + (*adapt, "auto")}
    chosen = []
    for s in range(seeds):
        labelled, rest = split_by_class(y, 5, seed + s)
        rest = rest[torch.randperm(len(rest), generator=torch.Generator().manual_seed(seed + s))]
        unlabelled, test = rest[: len(rest) // 2], rest[len(rest) // 2 :]
        d = Domains(model, source_x, source_y, x[unlabelled])
        for m, method in adapt.items():
            scores[m].append(accuracy(method(d, x[labelled], y[labelled], seed + s), x[test], y[test]))
        if source_only:
            scores["source only"].append(accuracy(d.model, x[test], y[test]))
        pick, _ = choose_method(d, x[labelled], y[labelled], tuple(adapt), seed=seed + s, adapt=adapt)
        chosen.append(pick)
        scores["auto"].append(scores[pick][-1])
    mean = {m: 100 * float(np.mean(v)) for m, v in scores.items()}
    return mean, chosen, max(adapt, key=lambda m: mean[m])


def adaptation(seeds: int, seed: int) -> dict:
    from learners.continual.mnist import load_mnist_split
    from learners.transfer.adaptation import ADAPT, METHODS, Domains, accuracy, mmd, train_source
    from learners.transfer.digit_domains import inverted, load_uci_digits, mnist_to_grid, rotated, split_by_class

    torch.set_num_threads(1)
    train_x, train_y, test_x, test_y = load_mnist_split()
    source_x, mnist_test = mnist_to_grid(train_x), mnist_to_grid(test_x)
    uci_x, uci_y = load_uci_digits()
    shifts = {"upright": lambda x: x, "rotated": rotated, "inverted": inverted}
    sources = {name: train_source(f(source_x), train_y, seed=seed) for name, f in shifts.items()}
    targets = {"UCI digits": (uci_x, uci_y), "rotated MNIST": (rotated(mnist_test), test_y),
               "inverted MNIST": (inverted(mnist_test), test_y)}
    rows, out, picks = [], {}, []
    for target, (x, y) in targets.items():
        mean, chosen, best = adaptation_draws(sources["upright"], source_x, train_y, x, y, ADAPT, seeds, seed, source_only=True)
        rows.append([target, *(f"{mean[m]:.1f}" for m in mean), ", ".join(f"{m} x{chosen.count(m)}" for m in sorted(set(chosen))),
                     f"{mean['auto'] - mean['finetune']:+.1f} (best {best} {mean[best] - mean['finetune']:+.1f})"])
        if target == "UCI digits":
            out.update(da_gain_vs_finetune=mean["auto"] - mean["finetune"], da_best_gain_vs_finetune=mean[best] - mean["finetune"],
                       uci_finetune_accuracy=mean["finetune"], uci_source_only_accuracy=mean["source only"])
        # which source to transfer from: the domain similarity's guess against the best fine-tuned source
        labelled, rest = split_by_class(y, 5, seed)
        similarity = {n: mmd(x[rest], shifts[n](source_x)) for n in sources}
        transfer = {n: accuracy(ADAPT["finetune"](Domains(m, shifts[n](source_x), train_y, x[rest]), x[labelled], y[labelled], seed),
                                x[rest], y[rest]) for n, m in sources.items()}
        guess, truth = min(similarity, key=similarity.get), max(transfer, key=transfer.get)
        picks.append([target, ", ".join(f"{n} {v:.3f}" for n, v in similarity.items()), guess,
                      ", ".join(f"{n} {100 * v:.1f}" for n, v in transfer.items()), truth])
        out.setdefault("source_choice_correct", 0)
        out["source_choice_correct"] += int(guess == truth)
    print_table(f"Domain adaptation with 5 labels per class, test accuracy (%), mean of {seeds} draws ({machine()})",
                ["target", "source only", *METHODS, "auto (chosen by CV)", "chosen", "auto - finetune"], rows)
    print_table("Which source to transfer from: MMD to each source (lower is closer) against the best fine-tuned source",
                ["target", "MMD to source", "closest", "fine-tuned accuracy (%) from each source", "best"], picks)
    out["source_choice_targets"] = len(targets)
    return out


def alphabets(seeds: int, seed: int) -> dict:
    """Omniglot alphabet to alphabet: a classifier of the other six background alphabets' characters
    adapted to a held-out alphabet's characters (new classes) with 5 labels each."""
    from learners.transfer.adaptation import train_source
    from learners.transfer.new_labels import NEW_LABEL_ADAPT, NEW_LABEL_METHODS, GlyphNet

    torch.set_num_threads(1)
    charset = load_omniglot_background()

    def images(alphabets: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        part = charset.subset_alphabets(alphabets)
        x = torch.nn.functional.avg_pool2d(part.images.float()[:, None] / 255.0, 2).flatten(1)  # 14x14
        y = torch.repeat_interleave(torch.arange(part.num_characters), part.counts)
        return x, y

    names = sorted({a.split("@")[0] for a in charset.alphabets})
    rows, gains, best_gains, before = [], [], [], []
    for target in TARGET_ALPHABETS:
        source_x, source_y = images([a for a in names if a != target])
        model = train_source(source_x, source_y, seed=seed, network=GlyphNet)
        x, y = images([target])
        mean, chosen, best = adaptation_draws(model, source_x, source_y, x, y, NEW_LABEL_ADAPT, seeds, seed)
        gains.append(mean["auto"] - mean["finetune"])
        best_gains.append(mean[best] - mean["finetune"])
        before.append(mean["prototypes"])
        rows.append([f"{target} ({int(y.max()) + 1} characters)", *(f"{mean[m]:.1f}" for m in mean),
                     ", ".join(f"{m} x{chosen.count(m)}" for m in sorted(set(chosen))),
                     f"{gains[-1]:+.1f} (best {best} {best_gains[-1]:+.1f})"])
    print_table(f"Omniglot alphabet to alphabet: the other six alphabets' classifier adapted to a held-out alphabet's characters, "
                f"5 labels each, test accuracy (%), mean of {seeds} draws ({machine()})",
                ["target", *NEW_LABEL_METHODS, "auto (chosen by CV)", "chosen", "auto - finetune"], rows)
    return {"alphabet_da_gain_vs_finetune": float(np.mean(gains)), "alphabet_da_best_gain_vs_finetune": float(np.mean(best_gains)),
            "alphabet_before_adaptation_accuracy": float(np.mean(before))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("encoding", "adaptation", "coldstart", "all"), default="all")
    ap.add_argument("--updates", type=int, default=3, help="updates of a new agent type (cold-start part)")
    ap.add_argument("--seeds", type=int, default=5, help="label draws of the adaptation part")
    ap.add_argument("--minutes", type=float, default=3.0, help="Omniglot meta-training; sine and digits get a third each")
    ap.add_argument("--episodes", type=int, default=25, help="Omniglot episodes per alphabet")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = {}
    if args.part in ("adaptation", "all"):
        out |= adaptation(args.seeds, args.seed)
        out |= alphabets(args.seeds, args.seed)
    if args.part in ("coldstart", "all"):
        out |= coldstart(args.minutes, args.updates, args.seed)
    if args.part in ("adaptation", "coldstart"):
        print_json(out)
        return
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
        ["digits by input statistics: clusters / purity", f"{out['digits_inputs_clusters']} / {out['digits_inputs_purity']:.3f}",
         "2 / 1.000 ideal"],
        ["digits by input statistics: rotated apart / upright at home", f"{out['digits_inputs_rotated_apart']:.3f}",
         f"{out['digits_inputs_upright_home']:.3f}"],
    ])
    print_json(out)


if __name__ == "__main__":
    main()
