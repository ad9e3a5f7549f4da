"""The search spaces of each learner family and task, as data beside the registry's default
recipes (``registry.default_config``), and how a point of a space becomes a config.

Classification spaces vary the *training* episodes (ways, shots); the objective always scores the
same evaluation protocol, so a config that trains on 20-way 5-shot episodes is still judged on
5-way 1-shot ones. Gradient-based learners keep their ways (the head's width) and take no dropout
(their inner loop runs under ``vmap``, where dropout's randomness is not defined per task).
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import ConfigError
from ..registry import is_metric, merge
from .space import SearchSpace


def _f(low: float, high: float, log: bool = False) -> dict:
    return {"type": "float", "low": low, "high": high, **({"log": True} if log else {})}


def _i(low: int, high: int) -> dict:
    return {"type": "int", "low": low, "high": high}


def _c(*choices) -> dict:
    return {"type": "categorical", "choices": list(choices)}


SPACES: dict[tuple[str, str], dict[str, dict]] = {
    ("sine", "maml"): {"inner_lr": _f(1e-3, 0.3, True), "inner_steps": _i(1, 5), "meta_lr": _f(1e-4, 1e-2, True),
                       "meta_batch": _c(5, 10, 25, 50), "hidden": _c(20, 40, 80), "layers": _i(1, 3),
                       "optimizer": _c("adam", "sgd")},
    ("sine", "reptile"): {"inner_lr": _f(1e-3, 0.1, True), "inner_steps": _i(1, 10), "meta_lr": _f(0.01, 1.0, True),
                          "meta_batch": _c(5, 10, 25), "hidden": _c(20, 40, 80), "layers": _i(1, 3)},
    ("omniglot", "metric"): {"meta_lr": _f(1e-4, 1e-2, True), "ways": _c(5, 10, 20, 30, 60), "shots": _c(1, 2, 5),
                             "meta_batch": _c(1, 2, 4), "hidden": _c(32, 64), "dropout": _f(0.0, 0.3),
                             "optimizer": _c("adam", "sgd")},
    ("omniglot", "maml"): {"inner_lr": _f(0.05, 1.0, True), "inner_steps": _i(1, 5), "test_steps": _c(3, 5, 10),
                           "meta_lr": _f(1e-4, 1e-2, True), "meta_batch": _c(4, 8, 16, 32), "hidden": _c(32, 64)},
    ("omniglot", "reptile"): {"inner_lr": _f(0.01, 0.5, True), "inner_steps": _i(1, 8), "test_steps": _c(5, 10),
                              "meta_lr": _f(0.05, 1.0, True), "meta_batch": _c(4, 8, 16), "hidden": _c(32, 64)},
    # what a stream worker tunes on its buffered tasks: the learner's rates and the continual terms
    ("stream", "gradient"): {"inner_lr": _f(1e-3, 0.1, True), "meta_lr": _f(1e-4, 1e-2, True),
                             "ewc": _f(1e-2, 10.0, True), "distill": _f(0.1, 4.0, True), "recent_share": _f(0.25, 1.0)},
    ("stream", "metric"): {"meta_lr": _f(1e-4, 1e-2, True), "distill": _f(0.1, 4.0, True), "recent_share": _f(0.25, 1.0)},
}

SECTIONS = {  # where a parameter lives in a config; others sit at the top level
    "task": ("ways", "shots", "queries"),
    "learner": ("meta_lr", "inner_lr", "inner_steps", "test_steps", "optimizer"),
    "backbone": ("hidden", "layers", "dropout"),
    "continual": ("ewc", "distill", "recent_share"),
}


def _family(algo: str) -> str:
    if is_metric(algo):
        return "metric"
    return "reptile" if algo == "reptile" else "maml"


def search_space(task: str, algo: str) -> SearchSpace:
    """The space for ``task`` (``sine``, ``omniglot``, ``folder``, or ``stream`` for a worker's
    model) and ``algo``."""
    family = _family(algo)
    task = "omniglot" if task == "folder" else task
    key = (task, "gradient" if task == "stream" and family != "metric" else family)
    if key not in SPACES:
        raise ConfigError(f"no search space for {algo} on {task}; spaces: {', '.join(f'{t}/{a}' for t, a in SPACES)}")
    return SearchSpace.from_dict(SPACES[key])


def apply_params(config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with ``params`` written where they belong (a gradient learner's head
    follows its ways; an MLP's ``layers`` and a Conv-4's ``hidden`` are backbone fields)."""
    cfg = copy.deepcopy(config)
    for name, value in params.items():
        section = next((s for s, names in SECTIONS.items() if name in names), None)
        if section is None:
            cfg[name] = value
        else:
            cfg.setdefault(section, {})[name] = value
    if cfg["backbone"].get("name") != "mlp":
        cfg["backbone"].pop("layers", None)  # a Conv-4 has four blocks
    if is_metric(cfg["algo"]):
        for key in ("inner_lr", "inner_steps", "test_steps"):
            cfg["learner"].pop(key, None)
    return merge(cfg)
