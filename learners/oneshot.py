"""Lake et al.'s 20-way within-alphabet one-shot classification runs.

Layout: ``runNN/class_labels.txt`` with lines ``runNN/test/itemMM.png runNN/training/classKK.png``
(a test item and its true class), images ``runNN/training/classKK.png`` and ``runNN/test/itemMM.png``,
black strokes on white. :func:`make_dev_runs` builds runs in this layout from alphabets a model
did not train on, for development; the real runs are the held-out test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .base import MetaLearner
from .tasks.images import CharacterSet, load_image, to_float
from .errors import ConfigError


@dataclass
class OneShotRun:
    name: str
    training: list[Path]  # one image per class
    test: list[Path]
    labels: list[int]  # index into ``training`` for each test item


def _resolve(root: Path, run_dir: Path, rel: str) -> Path:
    for base in (root, run_dir, run_dir.parent):
        p = base / rel
        if p.is_file():
            return p
    raise FileNotFoundError(f"{rel} (named in {run_dir.name}/class_labels.txt) not found under {root}")


def read_runs(root: str | Path) -> list[OneShotRun]:
    root = Path(root)
    run_dirs = sorted(p for p in root.glob("run*") if p.is_dir() and (p / "class_labels.txt").is_file())
    if not run_dirs:
        raise FileNotFoundError(f"no runNN/class_labels.txt under {root}: expected Lake et al.'s all_runs layout")
    runs = []
    for rd in run_dirs:
        pairs = []
        for n, line in enumerate((rd / "class_labels.txt").read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ConfigError(f"{rd.name}/class_labels.txt line {n}: expected 'test_item training_class', got {line!r}")
            pairs.append(parts)
        training = sorted({c for _, c in pairs}, key=lambda s: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)])
        # classes without a test item still count as distractors
        for p in sorted((rd / "training").glob("*.png")):
            rel = f"{rd.name}/training/{p.name}"
            if rel not in training and not any(c.endswith(f"training/{p.name}") for c in training):
                training.append(rel)
        index = {c: i for i, c in enumerate(training)}
        runs.append(OneShotRun(
            name=rd.name,
            training=[_resolve(root, rd, c) for c in training],
            test=[_resolve(root, rd, t) for t, _ in pairs],
            labels=[index[c] for _, c in pairs],
        ))
    return runs


def score_runs(learner: MetaLearner, runs: list[OneShotRun], image_size: int, steps: int | None = None,
               device: torch.device | str = "cpu") -> dict:
    """Error rate over all test items and per run."""
    per_run, wrong, total = {}, 0, 0
    learner.model.eval()
    for run in runs:
        sx = to_float(torch.stack([load_image(p, image_size) for p in run.training])).to(device)
        qx = to_float(torch.stack([load_image(p, image_size) for p in run.test])).to(device)
        sy = torch.arange(len(run.training), device=device)
        y = torch.tensor(run.labels, device=device)
        if hasattr(learner.model, "head") and learner.model.head is not None and learner.model.head.out_features != len(run.training):
            raise ConfigError(f"this model's head is {learner.model.head.out_features}-way but {run.name} is "
                             f"{len(run.training)}-way: meta-train with --ways {len(run.training)}, or use protonet, matching or protomaml")
        pred = learner.predict(learner.adapt(sx, sy, steps), qx).argmax(-1)
        errors = int((pred != y).sum())
        per_run[run.name] = errors / len(run.test)
        wrong += errors
        total += len(run.test)
    learner.model.train()
    return {"error_rate": wrong / total, "runs": per_run, "items": total}


def make_dev_runs(charset_sources: CharacterSet, raw_images: dict[str, list[bytes]], out: str | Path,
                  runs: int = 20, ways: int = 20, seed: int = 0) -> Path:
    """Write ``runs`` within-alphabet runs in Lake's layout from ``raw_images`` (character name ->
    original PNG bytes per drawer): each run picks an alphabet with >= ``ways`` characters, ``ways``
    characters, and two different drawers, one for the training image and one for the test item."""
    out = Path(out)
    gen = torch.Generator().manual_seed(seed)
    sizes = charset_sources.alphabet_sizes()
    alphabets = [a for a, n in sizes.items() if n >= ways]
    if not alphabets:
        raise ConfigError(f"no alphabet has {ways} characters to build {ways}-way runs")
    for r in range(1, runs + 1):
        alpha = alphabets[int(torch.randint(len(alphabets), (1,), generator=gen))]
        a_idx = charset_sources.alphabets.index(alpha)
        chars = charset_sources.characters_of(a_idx)
        chosen = chars[torch.randperm(len(chars), generator=gen)[:ways]].tolist()
        rd = out / f"run{r:02d}"
        (rd / "training").mkdir(parents=True, exist_ok=True)
        (rd / "test").mkdir(parents=True, exist_ok=True)
        order = torch.randperm(ways, generator=gen).tolist()
        lines = []
        for k, c in enumerate(chosen, start=1):
            drawers = raw_images[charset_sources.char_names[c]]
            pick = torch.randperm(len(drawers), generator=gen)[:2].tolist()
            (rd / "training" / f"class{k:02d}.png").write_bytes(drawers[pick[0]])
            m = order[k - 1] + 1
            (rd / "test" / f"item{m:02d}.png").write_bytes(drawers[pick[1]])
            lines.append((m, f"{rd.name}/test/item{m:02d}.png {rd.name}/training/class{k:02d}.png"))
        (rd / "class_labels.txt").write_text("\n".join(l for _, l in sorted(lines)) + "\n")
    (out / "alphabets.txt").write_text("\n".join(sorted(set(alphabets))) + "\n")  # eval-oneshot checks they were held out
    return out
