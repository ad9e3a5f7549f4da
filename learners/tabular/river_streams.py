"""The benchmark streams: real datasets shipped inside River's wheel (no download) and River's
synthetic generators with concept drift, each as a :class:`~learners.tabular.data.Table` in
stream order.

>>> t = load_stream("phishing")
>>> len(t), len(t.names), t.classes
(1250, 9, (False, True))
"""

from __future__ import annotations

from itertools import islice
from typing import Callable

from ..errors import ConfigError
from .data import Table, from_stream


def _real(name: str) -> Callable[[int | None, int], Table]:
    def load(rows: int | None, seed: int) -> Table:
        from river import datasets

        return from_stream(islice(getattr(datasets, name)(), rows))
    return load


def _drifting(kind: str) -> Callable[[int | None, int], Table]:
    """Abrupt drifts (over 200 rows; River overflows on narrower) every 5,000 rows (Agrawal: classification functions 0 -> 2 -> 4; SEA: variants
    0 -> 1 -> 2 -> 3); the rotating hyperplane drifts gradually all along."""
    def load(rows: int | None, seed: int) -> Table:
        from river.datasets import synth

        if kind == "hyperplane":
            stream, n = synth.Hyperplane(seed=seed, n_features=10, n_drift_features=2, mag_change=0.001), 20_000
        elif kind == "agrawal":
            a0, a2, a4 = (synth.Agrawal(classification_function=f, seed=seed + i) for i, f in enumerate((0, 2, 4)))
            inner = synth.ConceptDriftStream(a0, a2, position=5000, width=200, seed=seed)
            stream, n = synth.ConceptDriftStream(inner, a4, position=10_000, width=200, seed=seed), 15_000
        else:
            s0, s1, s2, s3 = (synth.SEA(variant=v, noise=0.1, seed=seed + v) for v in range(4))
            inner = synth.ConceptDriftStream(synth.ConceptDriftStream(s0, s1, position=5000, width=200, seed=seed),
                                             s2, position=10_000, width=200, seed=seed)
            stream, n = synth.ConceptDriftStream(inner, s3, position=15_000, width=200, seed=seed), 20_000
        return from_stream(islice(stream, rows or n))
    return load


def _dev(kind: str) -> Callable[[int | None, int], Table]:
    """Development streams, never reported as results: the selector's and the gate's settings are
    chosen on these, so the benchmark streams stay a test."""
    def load(rows: int | None, seed: int) -> Table:
        from river.datasets import synth

        seed += 100
        make = {
            "rbf": lambda: synth.RandomRBFDrift(seed_model=seed, seed_sample=seed, n_classes=3, change_speed=0.001),
            "led": lambda: synth.LEDDrift(seed=seed, noise_percentage=0.1, irrelevant_features=True, n_drift_features=3),
            "waveform": lambda: synth.Waveform(seed=seed),
            "sine": lambda: synth.ConceptDriftStream(synth.Sine(classification_function=0, seed=seed),
                                                     synth.Sine(classification_function=2, seed=seed), position=4000, width=200, seed=seed),
            "agrawal": lambda: synth.ConceptDriftStream(synth.Agrawal(classification_function=1, seed=seed),
                                                        synth.Agrawal(classification_function=3, seed=seed), position=4000, width=200, seed=seed),
            "hyperplane": lambda: synth.Hyperplane(seed=seed, n_features=6, mag_change=0.005, noise_percentage=0.1),
        }[kind]
        return from_stream(islice(make(), rows or 8000))
    return load


DEV_STREAMS: dict[str, Callable[[int | None, int], Table]] = {
    f"dev-{k}": _dev(k) for k in ("rbf", "led", "waveform", "sine", "agrawal", "hyperplane")}

STREAMS: dict[str, Callable[[int | None, int], Table]] = {
    "phishing": _real("Phishing"), "segment": _real("ImageSegments"), "shuttle": _real("Shuttle"),
    "bananas": _real("Bananas"), "agrawal": _drifting("agrawal"), "sea": _drifting("sea"),
    "hyperplane": _drifting("hyperplane"),
}


def load_stream(name: str, rows: int | None = None, seed: int = 0) -> Table:
    every = {**STREAMS, **DEV_STREAMS}
    if name not in every:
        raise ConfigError(f"no stream {name!r}; choose from {', '.join(every)}")
    return every[name](rows, seed)
