"""The cold-start part of ``transfer.py``: a new agent type starting from an existing model against
starting from scratch, with the worker's own update loop (see that bench's docstring)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _table import machine, print_table  # noqa: E402
from learners.registry import build_learner, default_config  # noqa: E402
from learners.tasks.base import TaskBatch  # noqa: E402
from learners.training import meta_train  # noqa: E402
from streams.catalog.presets import digits_model  # noqa: E402
from streams.simulation.fleet import DigitFleet  # noqa: E402


def stream_updates(config: dict, weights: bytes | None, sample_task, evaluate, updates: int, seed: int,
                   per_update: int = 30, iterations: int = 40) -> tuple[list[float], bytes]:
    """The worker's loop on a new model: accuracy before and after each update, and the weights."""
    from learners.online import OnlineMetaLearner, TaskReplayBuffer

    learner = OnlineMetaLearner(config, seed=seed)
    if weights is not None:
        learner.load_weights(weights)
    buffer = TaskReplayBuffer(64 * 2**20, 64, seed=seed)
    accs = [evaluate(learner.champion)]
    for k in range(updates):
        for _ in range(per_update):
            tid, x, y = sample_task()
            buffer.add(tid, x, y)
        proposal = learner.propose(buffer, iterations, 16, heldout=8, recent=64, recent_share=0.5)
        if proposal is not None and learner.passes_gate(proposal, 0.05):
            learner.promote(proposal)
        accs.append(evaluate(learner.champion))
    return accs, learner.weights_bytes()


def _task_points(batch: TaskBatch) -> tuple[np.ndarray, np.ndarray]:
    x = torch.cat([batch.support_x[0].flatten(1), batch.query_x[0].flatten(1)]).numpy()
    y = torch.cat([batch.support_y[0], batch.query_y[0]]).numpy().astype("f4")[:, None]
    return x, y


def _accuracy(batch: TaskBatch):
    def evaluate(learner) -> float:
        from learners.online import score_points

        return score_points(learner, batch) / 100
    return evaluate


def _score_with(config: dict, weights: bytes, batch: TaskBatch) -> float:
    """Accuracy (a fraction) of a model of ``config`` with ``weights`` on ``batch``."""
    from learners.online import OnlineMetaLearner, score_points

    learner = OnlineMetaLearner(config)
    learner.load_weights(weights)
    return score_points(learner.champion, batch) / 100


def _omniglot_case(minutes: float, updates: int, seed: int) -> tuple[list[str], float, float, float]:
    """Omniglot: a source meta-trained on 6 alphabets, the 2 held out as the new agent type: the
    table row, warm minus scratch (points), warm / source accuracy, the source tasks kept."""
    from learners.online import score_points
    from learners.registry import build_tasks
    from safetensors.torch import save as save_safetensors

    source_cfg = default_config("omniglot", "protonet")
    torch.manual_seed(seed)
    source = build_learner(source_cfg)
    train = build_tasks(source_cfg, "train")
    it = meta_train(source, lambda g: train.sample(source_cfg["meta_batch"], g), torch.Generator().manual_seed(seed),
                    budget_s=minutes * 60, cosine=False).iterations
    target_cfg = {**source_cfg, "task": {**source_cfg["task"], "ways": 5, "queries": 1}, "meta_batch": 16}
    new_type = build_tasks(target_cfg, "val", ways=5, shots=1, queries=1)
    stream_gen, eval_gen = torch.Generator().manual_seed(seed + 1), torch.Generator().manual_seed(seed + 2)
    counter = iter(range(10**9))

    def omniglot_task():
        x, y = _task_points(new_type.sample(1, stream_gen))
        return f"o{next(counter)}", x, y
    held = new_type.sample(300, eval_gen)
    own = build_tasks(target_cfg, "train", ways=5, shots=1, queries=1).sample(300, torch.Generator().manual_seed(seed + 3))
    source_acc = score_points(source, own) / 100
    weights = save_safetensors({k: v.contiguous() for k, v in source.model.state_dict().items()})
    warm, warm_weights = stream_updates(target_cfg, weights, omniglot_task, _accuracy(held), updates, seed)
    scratch, _ = stream_updates(target_cfg, None, omniglot_task, _accuracy(held), updates, seed)
    row = ["Omniglot: 6 alphabets -> Balinese, Early_Aramaic", f"{100 * source_acc:.1f} ({it} it)",
           " / ".join(f"{100 * a:.1f}" for a in warm), " / ".join(f"{100 * a:.1f}" for a in scratch)]
    return row, 100 * (warm[-1] - scratch[-1]), warm[-1] / source_acc, _score_with(target_cfg, warm_weights, own) / source_acc


def _digits_case(updates: int, seed: int) -> tuple[list[str], float, float, float]:
    """Digits: a source streamed on upright digits, rotated a quarter turn as the new agent type."""
    from learners.online import OnlineMetaLearner, score_points

    digits_cfg = digits_model(5, 1)
    upright, rotated_fleet = DigitFleet(seed=seed, per_class=2), DigitFleet(seed=seed + 1, per_class=2)
    test = DigitFleet(seed=seed + 7, per_class=2, split="test")

    def episodes(drifted: bool) -> TaskBatch:
        eps = [test.episode(drifted) for _ in range(300)]
        return TaskBatch(*(torch.from_numpy(np.stack(p)) for p in zip(*eps)))
    upright_test, rotated_test = episodes(False), episodes(True)
    _, digits_weights = stream_updates(digits_cfg, None, lambda: upright.sample_task(False), lambda m: 0.0, 20, seed)
    src = OnlineMetaLearner(digits_cfg)
    src.load_weights(digits_weights)
    source_acc = score_points(src.champion, upright_test) / 100
    warm, warm_weights = stream_updates(digits_cfg, digits_weights, lambda: rotated_fleet.sample_task(True), _accuracy(rotated_test),
                                        updates, seed)
    kept = _score_with(digits_cfg, warm_weights, upright_test) / source_acc
    scratch, _ = stream_updates(digits_cfg, None, lambda: rotated_fleet.sample_task(True), _accuracy(rotated_test), updates, seed)
    row = ["digits: upright -> rotated a quarter turn", f"{100 * source_acc:.1f} (20 updates)",
           " / ".join(f"{100 * a:.1f}" for a in warm), " / ".join(f"{100 * a:.1f}" for a in scratch)]
    return row, 100 * (warm[-1] - scratch[-1]), warm[-1] / source_acc, kept


def coldstart(minutes: float, updates: int, seed: int) -> dict:
    cases = [_omniglot_case(minutes, updates, seed), _digits_case(updates, seed)]
    rows, gains, ratios, retained = (list(column) for column in zip(*cases))
    for row, kept in zip(rows, retained):
        row.append(f"{100 * kept:.1f}")
    print_table(f"New agent types: 5-way 1-shot accuracy (%) before and after each of the first {updates} updates ({machine()})",
                ["new agent type", "source on its own tasks", "warm start", "from scratch", "source tasks kept (%)"], rows)
    return {"warm_minus_scratch": float(np.mean(gains)), "transfer_ratio": float(np.mean(ratios)), "retention": float(min(retained)),
            "warm_minus_scratch_omniglot": gains[0], "warm_minus_scratch_digits": gains[1], "coldstart_updates": updates}
