"""Build a learner, its model and its task distribution from one JSON-able config.

The config is what a checkpoint stores, so a saved learner can be rebuilt anywhere.
"""

from __future__ import annotations

import copy
from typing import Any

from .backbones import IMAGE_BACKBONES, build_backbone
from .base import MetaLearner
from .anil import ANIL
from .maml import MAML, FirstOrderMAML
from .matching import MatchingNet
from .protomaml import ProtoMAML
from .protonet import ProtoNet
from .reptile import Reptile
from .tasks import Affine, Episodes, SineTasks, load_alphabet_folder, load_omniglot_background
from .recipes import (CLASSIFIERS, GRADIENT_BASED, HEAD_ONLY, INNER_LOOP_KEYS, TASKS, default_config, is_metric,
                      task_kind)
from .errors import ConfigError

__all__ = ["ALGORITHMS", "CLASSIFIERS", "GRADIENT_BASED", "HEAD_ONLY", "INNER_LOOP_KEYS", "TASKS", "build_learner",
           "build_tasks", "default_config", "is_metric", "merge", "task_kind"]

ALGORITHMS: dict[str, type[MetaLearner]] = {
    "maml": MAML,
    "fomaml": FirstOrderMAML,
    "reptile": Reptile,
    "anil": ANIL,
    "protomaml": ProtoMAML,
    "protonet": ProtoNet,
    "matching": MatchingNet,
}


def merge(config: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Apply CLI overrides (``None`` means keep) to the right section of a config."""
    cfg = copy.deepcopy(config)
    sections = {"task": ("ways", "shots", "queries", "image_size", "rotations", "augment", "within_alphabet", "root", "val_alphabets",
                         "test_alphabets"),
                "learner": ("meta_lr", "inner_lr", "inner_steps", "test_steps", "tta", "temperature", "chunk_size")}
    for key, value in overrides.items():
        if value is None:
            continue
        for section, keys in sections.items():
            if key in keys:
                cfg[section][key] = value
                break
        else:
            cfg[key] = value
    if cfg["backbone"]["name"] in IMAGE_BACKBONES:
        cfg["backbone"]["image_size"] = cfg["task"].get("image_size", 28)
        if "out_features" in cfg["backbone"]:
            cfg["backbone"]["out_features"] = cfg["task"]["ways"]
    return cfg


def build_learner(config: dict[str, Any]) -> MetaLearner:
    cls = ALGORITHMS[config["algo"]]
    kind = task_kind(config)
    model = build_backbone(config["backbone"])
    learner_cfg = dict(config["learner"])
    if is_metric(config["algo"]):
        for key in INNER_LOOP_KEYS:
            learner_cfg.pop(key, None)
    learner = cls(model, kind, **learner_cfg)
    if config.get("mixture"):  # several components of this config behind a router (learners/transfer/mixture.py)
        from .transfer.mixture import MetaMixture
        from .transfer.mixture_options import mixture_options

        return MetaMixture(learner, lambda net: cls(net, kind, **learner_cfg), **mixture_options(config["mixture"]))
    return learner


def build_tasks(config: dict[str, Any], split: str = "train", ways: int | None = None, shots: int | None = None,
                queries: int | None = None, within_alphabet: bool | None = None):
    """The task distribution of a config; ``split`` is ``train``, ``val`` (meta-validation
    alphabets, never augmented, rotated or mixed across alphabets unless asked) or ``test`` (the
    config's ``test_alphabets``, which neither training nor validation sees)."""
    t = config["task"]
    if t["name"] == "sine":
        return SineTasks(shots=shots or t["shots"], queries=queries or t["queries"])
    if t["name"] == "omniglot":
        charset = load_omniglot_background(t.get("root"), t["image_size"])
    else:
        if not t.get("root"):
            raise ConfigError("the folder task needs --root: a folder laid out alphabet/character/*.png")
        charset = load_alphabet_folder(t["root"], t["image_size"])
    held = tuple(t.get("test_alphabets") or ())  # a meta-test split: neither trained nor validated on
    if split == "test":
        if not held:
            raise ConfigError("this config holds out no meta-test alphabets (test_alphabets is empty)")
        return Episodes(charset.subset_alphabets(held), ways or t["ways"], shots or t["shots"], queries or t["queries"],
                        True if within_alphabet is None else within_alphabet, None)
    if held:
        charset = charset.without_alphabets(held)
    names = tuple(t.get("val_alphabets") or ())
    train, val = (charset.without_alphabets(names), charset.subset_alphabets(names)) if names else (charset, None)
    if split == "train":
        chars = train.with_rotations() if t.get("rotations") else train
        return Episodes(chars, ways or t["ways"], shots or t["shots"], queries or t["queries"],
                        t.get("within_alphabet", False) if within_alphabet is None else within_alphabet,
                        Affine() if t.get("augment") else None)
    if val is None:
        raise ConfigError("this model learned every background alphabet, so none is left to evaluate on: meta-train it "
                          "with --val-alphabets Balinese,Early_Aramaic to hold two out, or score it with eval-oneshot on Lake's runs")
    return Episodes(val, ways or t["ways"], shots or t["shots"], queries or t["queries"],
                    True if within_alphabet is None else within_alphabet, None)
