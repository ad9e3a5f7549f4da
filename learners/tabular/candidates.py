"""The learners a tabular model id chooses among: softmax (or linear) regression and small MLPs
trained by SGD one row at a time, and Gaussian naive Bayes from running class statistics. Each is
described by a :class:`CandidateSpec` (data) and keeps all it knows in arrays, so a version ships
as safetensors plus JSON; never a pickled estimator.

>>> import numpy as np
>>> spec = CandidateSpec(Family.LINEAR, lr=0.5)
>>> model = spec.build(inputs=2, outputs=2, seed=0)
>>> X = np.array([[1.0, 0.0], [0.0, 1.0]] * 20, np.float32); y = np.array([0, 1] * 20)
>>> model.learn_many(X, y)
>>> model.predict_many(X[:2]).tolist()
[0, 1]
>>> spec.name
'linear(lr=0.5)'
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class Family(str, enum.Enum):
    LINEAR = "linear"
    MLP = "mlp"
    NAIVE_BAYES = "naive_bayes"


@dataclass(frozen=True)
class CandidateSpec:
    """One candidate: a family and its few hyperparameters."""

    family: Family
    lr: float = 0.05
    hidden: int = 0
    layers: int = 0

    @property
    def name(self) -> str:
        if self.family is Family.NAIVE_BAYES:
            return "naive_bayes"
        if self.family is Family.LINEAR:
            return f"linear(lr={self.lr:g})"
        return f"mlp({'x'.join([str(self.hidden)] * self.layers)}, lr={self.lr:g})"

    def to_json(self) -> dict:
        return {"family": self.family.value, "lr": self.lr, "hidden": self.hidden, "layers": self.layers}

    @classmethod
    def from_json(cls, data: dict) -> "CandidateSpec":
        return cls(Family(data["family"]), float(data["lr"]), int(data["hidden"]), int(data["layers"]))

    def build(self, inputs: int, outputs: int, seed: int = 0) -> "OnlineModel":
        """``outputs``: the number of classes, or 0 for regression."""
        if self.family is Family.NAIVE_BAYES:
            if outputs < 2:
                raise ValueError("naive Bayes needs classes; it cannot regress")
            return GaussianNaiveBayes(self, inputs, outputs)
        return SGDNet(self, inputs, outputs, seed)


def default_candidates(classification: bool = True) -> tuple[CandidateSpec, ...]:
    """The candidates ``metastream automl`` and the workers compare when none are given."""
    specs = [CandidateSpec(Family.LINEAR, lr=0.01), CandidateSpec(Family.LINEAR, lr=0.1),
             CandidateSpec(Family.MLP, lr=0.01, hidden=32, layers=1), CandidateSpec(Family.MLP, lr=0.05, hidden=32, layers=1),
             CandidateSpec(Family.MLP, lr=0.02, hidden=64, layers=2)]
    return tuple(specs + [CandidateSpec(Family.NAIVE_BAYES)] if classification else specs)


DEFAULT_LEARNER = CandidateSpec(Family.LINEAR, lr=0.01)  # the baseline: what a user gets with no selection


class OnlineModel(abc.ABC):
    """What every candidate does: learn rows, predict rows, and hand over its arrays."""

    spec: CandidateSpec
    outputs: int

    @abc.abstractmethod
    def learn_many(self, X: np.ndarray, y: np.ndarray) -> None: ...

    @abc.abstractmethod
    def scores(self, X: np.ndarray) -> np.ndarray:
        """Class scores ``[n, classes]`` (higher is likelier), or values ``[n]`` for regression."""

    def predict_many(self, X: np.ndarray) -> np.ndarray:
        s = self.scores(X)
        return s.argmax(1) if self.outputs else s

    @abc.abstractmethod
    def arrays(self) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None: ...


class SGDNet(OnlineModel):
    """A linear model (``layers`` 0) or ReLU MLP; one plain SGD step per row (cross-entropy or MSE)."""

    def __init__(self, spec: CandidateSpec, inputs: int, outputs: int, seed: int = 0) -> None:
        self.spec, self.outputs = spec, outputs
        gen = torch.Generator().manual_seed(seed)
        mods: list[nn.Module] = []
        width = inputs
        for _ in range(spec.layers if spec.family is Family.MLP else 0):
            mods += [nn.Linear(width, spec.hidden), nn.ReLU()]
            width = spec.hidden
        mods.append(nn.Linear(width, max(outputs, 1)))
        self.net = nn.Sequential(*mods)
        with torch.no_grad():
            for p in self.net.parameters():  # seeded init from our own generator: same seed, same weights
                bound = 1 / np.sqrt(p.shape[-1]) if p.dim() > 1 else 0.0
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=spec.lr)

    def learn_many(self, X: np.ndarray, y: np.ndarray, batch: int = 1) -> None:
        x = torch.as_tensor(np.asarray(X, np.float32))
        t = torch.as_tensor(np.asarray(y)).long() if self.outputs else torch.as_tensor(np.asarray(y, np.float32))
        for i in range(0, len(x), batch):
            out = self.net(x[i : i + batch])
            loss = (nn.functional.cross_entropy(out, t[i : i + batch]) if self.outputs
                    else nn.functional.mse_loss(out[:, 0], t[i : i + batch]))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()

    def scores(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self.net(torch.as_tensor(np.asarray(X, np.float32))).numpy()
        return out if self.outputs else out[:, 0]

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy().copy() for k, v in self.net.state_dict().items()}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.net.load_state_dict({k: torch.as_tensor(v) for k, v in arrays.items()})


class GaussianNaiveBayes(OnlineModel):
    """Per-class running means and variances (Welford) and class counts; log-likelihood scores."""

    def __init__(self, spec: CandidateSpec, inputs: int, outputs: int) -> None:
        self.spec, self.outputs = spec, outputs
        self.count = np.zeros(outputs)
        self.mean = np.zeros((outputs, inputs))
        self.m2 = np.zeros((outputs, inputs))

    def learn_many(self, X: np.ndarray, y: np.ndarray) -> None:
        for x, c in zip(np.asarray(X, np.float64), np.asarray(y, np.int64)):
            self.count[c] += 1
            delta = x - self.mean[c]
            self.mean[c] += delta / self.count[c]
            self.m2[c] += delta * (x - self.mean[c])

    def scores(self, X: np.ndarray) -> np.ndarray:
        var = self.m2 / np.maximum(self.count - 1, 1)[:, None] + 1e-3
        prior = np.log((self.count + 1) / (self.count.sum() + self.outputs))
        X = np.asarray(X, np.float64)[:, None, :]
        ll = -0.5 * (((X - self.mean) ** 2) / var + np.log(2 * np.pi * var)).sum(-1)
        return (ll + prior).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"count": self.count.copy(), "mean": self.mean.copy(), "m2": self.m2.copy()}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.count, self.mean, self.m2 = (np.asarray(arrays[k], np.float64).copy() for k in ("count", "mean", "m2"))
