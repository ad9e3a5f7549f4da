"""Search spaces as data: a parameter is a name, a kind and its range, so a space can be written in
JSON, kept with the registry's recipes, suggested through Optuna or sampled with a plain generator.

>>> space = SearchSpace.from_dict({"meta_lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
...                                "ways": {"type": "categorical", "choices": [5, 20]}})
>>> params = space.sample(np.random.default_rng(0))
>>> sorted(params), 1e-4 <= params["meta_lr"] <= 1e-2, params["ways"] in (5, 20)
(['meta_lr', 'ways'], True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError

KINDS = ("float", "int", "categorical")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: int | None = None
    choices: tuple = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"parameter {self.name!r}: type must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind == "categorical" and not self.choices:
            raise ConfigError(f"parameter {self.name!r}: a categorical parameter needs choices")
        if self.kind != "categorical" and (self.low is None or self.high is None or self.low > self.high):
            raise ConfigError(f"parameter {self.name!r}: needs low <= high")

    def suggest(self, trial) -> Any:
        """Ask an Optuna trial for a value."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log, step=self.step or 1)
        return trial.suggest_categorical(self.name, list(self.choices))

    def sample(self, rng: np.random.Generator) -> Any:
        """A value drawn uniformly (log-uniformly with ``log``) without Optuna."""
        if self.kind == "categorical":
            return self.choices[int(rng.integers(len(self.choices)))]
        lo, hi = (np.log(self.low), np.log(self.high)) if self.log else (self.low, self.high)
        value = float(rng.uniform(lo, hi))
        value = float(np.exp(value)) if self.log else value
        if self.kind == "int":
            step = self.step or 1
            return int(min(self.high, max(self.low, self.low + round((value - self.low) / step) * step)))
        return value

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out = {"type": self.kind, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, spec: dict[str, dict[str, Any]]) -> "SearchSpace":
        """``{name: {"type": "float"|"int"|"categorical", "low", "high", "log", "step", "choices"}}``."""
        params = []
        for name, p in spec.items():
            if not isinstance(p, dict) or "type" not in p:
                raise ConfigError(f"search space entry {name!r} must be an object with a 'type'")
            params.append(Param(name, p["type"], p.get("low"), p.get("high"), bool(p.get("log", False)), p.get("step"),
                                tuple(p.get("choices", ()))))
        return cls(tuple(params))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {p.name: p.to_dict() for p in self.params}

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def suggest(self, trial) -> dict[str, Any]:
        return {p.name: p.suggest(trial) for p in self.params}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {p.name: p.sample(rng) for p in self.params}

    def without(self, *names: str) -> "SearchSpace":
        return SearchSpace(tuple(p for p in self.params if p.name not in names))
