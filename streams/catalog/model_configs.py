"""``METASTREAM_MODELS`` (and the new-models policy's templates): a model id's config from a learner
config, a preset's name, a preset with arguments or a model folder; errors say what to write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from learners.errors import ConfigError
from learners.transfer.mixture_options import mixture_options

from streams.catalog.presets import PARAMETRISED, model_presets, served


def model_folder(path: str) -> dict[str, Any] | None:
    """The config of a model folder (``meta-train``, ``tune`` or ``nas`` output), marked with the
    folder so the worker starts from its weights; ``None`` when ``path`` is not one."""
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        return None
    config = json.loads((folder / "config.json").read_text())["config"]
    return {**config, "checkpoint": str(folder.resolve())}


def parametrised_preset(mid: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """``{"preset": "tabular", "features": 18, "ways": 5}`` to that preset's config."""
    args = {k: v for k, v in cfg.items() if k != "preset"}
    make = PARAMETRISED.get(cfg["preset"])
    if make is None:
        raise ConfigError(f"model {mid!r}: no preset {cfg['preset']!r} takes arguments; choose from {', '.join(PARAMETRISED)}")
    try:
        return make(**args)
    except TypeError as exc:
        raise ConfigError(f"model {mid!r}: {exc} (e.g. {{\"preset\": \"tabular\", \"features\": 18}})") from None


def with_mixture(mid: str, cfg: dict[str, Any], presets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A preset named in an object, with its arguments and an optional ``"mixture"``: a preset
    serves a mixture of meta-models (``learners/transfer/mixture.py``) unless ``"mixture": false``;
    an object (``{"max_components": 2}``) sets its options."""
    args = {k: v for k, v in cfg.items() if k != "mixture"}
    made = presets[cfg["preset"]] if len(args) == 1 and cfg["preset"] in presets else parametrised_preset(mid, args)
    return served({**made, "mixture": cfg["mixture"]} if "mixture" in cfg else made)


def parse_models(text: str) -> dict[str, dict[str, Any]]:
    """``METASTREAM_MODELS``: a JSON object of model id -> learner config, a preset's name, or the
    path of a model folder (the worker then starts from its weights). A preset is served as a
    mixture of meta-models unless it says ``"mixture": false`` (:func:`served`); a full config or a
    model folder is served as written."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"METASTREAM_MODELS is not JSON ({exc}); e.g. '{{\"sine\": \"sine\", \"digits\": \"digits\"}}'") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("METASTREAM_MODELS must be a non-empty JSON object: model id -> config or preset name")
    presets = model_presets()
    models = {}
    for mid, cfg in raw.items():
        if isinstance(cfg, str):
            folder = model_folder(cfg) if cfg not in presets else None
            if cfg not in presets and folder is None:
                raise ConfigError(f"model {mid!r}: {cfg!r} is neither a preset ({', '.join(presets)}) nor a model folder "
                                  "(config.json and model.safetensors, as meta-train, tune and nas write)")
            cfg = served(presets[cfg]) if folder is None else folder
        elif isinstance(cfg, dict) and "preset" in cfg:
            cfg = with_mixture(mid, cfg, presets)
        if not isinstance(cfg, dict) or not {"algo", "task", "backbone"} <= set(cfg):
            raise ConfigError(f"model {mid!r}: a config needs algo, task and backbone (or name a preset: {', '.join(presets)})")
        try:
            mixture_options(cfg.get("mixture"))
        except ConfigError as exc:
            raise ConfigError(f"model {mid!r}: {exc}") from None
        shadows = cfg.get("shadows", [])
        if not isinstance(shadows, list) or not all(isinstance(s, dict) and s for s in shadows):
            raise ConfigError(f"model {mid!r}: 'shadows' is a list of config overrides, one per shadow candidate, e.g. "
                              '[{"algo": "matching"}, {"backbone": {"hidden": 128}}]')
        models[mid] = cfg
    return models
