"""A tabular model as a consumer receives it: the fitted feature pipeline, the chosen learner's
arrays and what the columns and classes are called, in a folder of ``model.safetensors`` (pipeline
and weights; never a pickle) and ``config.json``. Whoever loads it applies the same pipeline, so
nobody re-implements preprocessing.

>>> import tempfile, numpy as np
>>> from learners.tabular.candidates import CandidateSpec, Family
>>> from learners.tabular.pipeline import FeaturePipeline
>>> X = np.array([[0.0, 10.0], [1.0, 20.0]] * 10, np.float32); y = np.array([0, 1] * 10)
>>> p = FeaturePipeline.fit(X)
>>> learner = CandidateSpec(Family.LINEAR, lr=0.5).build(p.width, 2, 0); learner.learn_many(p.transform(X), y)
>>> m = TabularModel(p, learner, ("a", "b"), "y", ("no", "yes"))
>>> folder = m.save(tempfile.mkdtemp())
>>> TabularModel.load(folder).predict_records([{"a": 1, "b": 20}, {"a": 0, "b": None}])
['yes', 'no']
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from ..errors import ConfigError
from .candidates import CandidateSpec, OnlineModel
from .data import to_number
from .pipeline import FeaturePipeline

KIND = "tabular"


@dataclass
class TabularModel:
    pipeline: FeaturePipeline
    learner: OnlineModel
    names: tuple[str, ...]  # input columns, in order (one-hot columns are named "column=value")
    target: str
    classes: tuple[Any, ...] = ()
    extra: dict = field(default_factory=dict)  # figures to keep beside it: holdout score, importance

    def features(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Rows of named values as the raw feature array; a missing or empty value is NaN."""
        rows = []
        for r in records:
            row = []
            for name in self.names:
                col, _, cat = name.partition("=")
                if cat and col in r:
                    row.append(np.nan if r[col] in (None, "") else float(str(r[col]) == cat))
                else:
                    v = to_number(r.get(name))
                    row.append(np.nan if v is None else v)
            rows.append(row)
        return np.asarray(rows, np.float32).reshape(len(rows), len(self.names))

    def predict_many(self, X: np.ndarray) -> np.ndarray:
        return self.learner.predict_many(self.pipeline.transform(X))

    def predict_records(self, records: list[dict[str, Any]]) -> list:
        pred = self.predict_many(self.features(records))
        return [self.classes[int(p)] for p in pred] if self.classes else [float(p) for p in pred]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"pipeline.{k}": v for k, v in self.pipeline.arrays().items()}
        tensors |= {f"learner.{k}": np.ascontiguousarray(v) for k, v in self.learner.arrays().items()}
        save_file(tensors, str(folder / "model.safetensors"))
        config = {"kind": KIND, "target": self.target, "names": list(self.names), "classes": list(self.classes),
                  "pipeline": self.pipeline.spec(), "outputs": self.pipeline.output_names(self.names),
                  "learner": self.learner.spec.to_json(), **self.extra}
        (folder / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "TabularModel":
        folder = Path(folder)
        if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
            raise ConfigError(f"{folder} is not a tabular model folder: make one with 'metastream automl DATA --target COL --out {folder}'")
        config = json.loads((folder / "config.json").read_text())
        if config.get("kind") != KIND:
            raise ConfigError(f"{folder} holds a {config.get('kind', 'meta-learning')} model, not a tabular one")
        tensors = load_file(str(folder / "model.safetensors"))
        pipeline = FeaturePipeline.from_arrays(config["pipeline"], {k[9:]: v for k, v in tensors.items() if k.startswith("pipeline.")})
        spec = CandidateSpec.from_json(config["learner"])
        learner = spec.build(pipeline.width, len(config["classes"]))
        learner.load_arrays({k[8:]: v for k, v in tensors.items() if k.startswith("learner.")})
        extra = {k: v for k, v in config.items() if k not in ("kind", "target", "names", "classes", "pipeline", "outputs", "learner")}
        return cls(pipeline, learner, tuple(config["names"]), config["target"], tuple(config["classes"]), extra)
