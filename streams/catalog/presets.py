"""Stream model presets: the learner configs a worker serves when ``METASTREAM_MODELS`` names
them (``{"sine": "sine", "digits": "digits"}``), and the feature shape each model takes."""

from __future__ import annotations

from typing import Any

from learners.errors import ConfigError
from learners.recipes import default_config

DIGIT_IMAGE_SIZE = 14  # the digits stream's MNIST images, 2x2-pooled


def sine_model() -> dict[str, Any]:
    """First-order MAML on Finn et al.'s 40-40 MLP, 10-shot sine regression, 10 adaptation steps."""
    cfg = default_config("sine", "fomaml")
    cfg["learner"].update(inner_lr=0.01, inner_steps=1, test_steps=10, meta_lr=1e-3)
    return cfg


def digits_model(ways: int = 5, shots: int = 1) -> dict[str, Any]:
    """A Prototypical network on a 196-64-64-64 MLP embedding (small enough for a CPU worker),
    ``ways``-way ``shots``-shot, for the digits stream's tasks. (First-order MAML on the same MLP
    reached 45-55% on 5-way 1-shot where this reaches ~90%.) Its drift updates distil toward the
    parent but take no EWC penalty: on its 64-d embeddings EWC at the sine model's strength stopped
    the learning of rotated digits and kept no more of the upright ones
    (``python bench/online_guard.py --task digits``)."""
    return {"algo": "protonet", "task": {"name": "digits", "ways": ways, "shots": shots, "queries": shots,
                                         "image_size": DIGIT_IMAGE_SIZE},
            "backbone": {"name": "mlp", "hidden": 64, "layers": 2, "inputs": DIGIT_IMAGE_SIZE**2, "outputs": 64},
            "learner": {"meta_lr": 1e-3}, "meta_batch": 16, "seed": 0, "continual": {"ewc": 0.0}}


TABULAR_SHADOWS = [{"algo": "matching"}, {"backbone": {"hidden": 128}}, {"backbone": {"log": True}},
                   {"backbone": {"products": 4}}, {"backbone": {"select": True}}]  # learners and feature steps


def tabular_model(features: int, ways: int = 5, shots: int = 5, missing: bool = True,
                  names: list[str] | None = None, shadows: bool | list[dict[str, Any]] = False) -> dict[str, Any]:
    """A Prototypical network for few-shot tasks over rows of ``features`` numbers (an agent's or
    project's own small labelled set): an MLP behind a standardiser that imputes gaps (NaN) and
    flags them, whose statistics the worker refits on its buffer and ships with every version
    (``learners/tabular/standardiser.py``). On ImageSegments, 5-way 5-shot over held-out rows, this
    learner reached 97% where softmax regression on the same 5 shots reached 84%
    (``python bench/automl.py --part fewshot``). ``shadows=True`` keeps shadow candidates beside it
    (:data:`TABULAR_SHADOWS`: Matching networks, a wider MLP, and the log, products and selection
    feature steps), scored on the same incoming tasks; one that does better takes over through the
    gate and the rollout (``learners/online/shadows.py``). A list gives your own overrides."""
    if not isinstance(features, int) or features <= 0:
        raise ConfigError(f"a tabular model needs its number of features (a positive integer), got {features!r}")
    if names is not None and len(names) != features:
        raise ConfigError(f"a tabular model with {features} features needs {features} names, got {len(names)}")
    task = {"name": "tabular", "features": features, "ways": ways, "shots": shots, "queries": shots}
    if names is not None:
        task["names"] = [str(n) for n in names]  # for 'metastream models show'
    config = {"algo": "protonet", "task": task,
              "backbone": {"name": "tabular", "inputs": features, "hidden": 64, "layers": 2, "outputs": 64, "missing": missing},
              "learner": {"meta_lr": 1e-3}, "meta_batch": 16, "seed": 0, "continual": {"ewc": 0.0}}
    if shadows:
        config["shadows"] = TABULAR_SHADOWS if shadows is True else list(shadows)
    return config


PRESETS = {"sine": sine_model, "digits": digits_model}
PARAMETRISED = {"tabular": tabular_model}  # presets that need arguments: {"preset": "tabular", "features": 18}


def served(config: dict[str, Any]) -> dict[str, Any]:
    """A preset's config as a worker serves it: a mixture of meta-models (a component per regime,
    ``learners/transfer/mixture.py``) unless it says ``"mixture": false``. While a stream stays in
    one regime the mixture has one component, which trains, guards and publishes exactly as one
    model does (the same bytes); a drift to a new regime spawns a component, and a regime that
    comes back is routed to the component that learned it.

    >>> served(sine_model())["mixture"], served({**sine_model(), "mixture": False})["mixture"]
    (True, False)
    """
    return {**config, "mixture": config.get("mixture", True)}


def missing_ok(config: dict[str, Any]) -> bool:
    """Whether a model takes missing feature values (NaN): its backbone imputes them."""
    return config.get("backbone", {}).get("name") == "tabular"


def model_presets() -> dict[str, dict[str, Any]]:
    """Stream model configs by preset name."""
    return {name: make() for name, make in PRESETS.items()}


def model_dims(config: dict[str, Any]) -> tuple[int, int]:
    """(feature_dim, target_dim) of the experiences a model learns from."""
    if config["task"]["name"] == "sine":
        return 1, 1
    if config["task"]["name"] == "tabular":
        return int(config["task"]["features"]), 1
    size = config["task"].get("image_size", 28)
    return size * size, 1
