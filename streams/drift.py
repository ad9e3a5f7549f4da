"""Drift detection on the stream of prequential losses, with River's detectors.

Each message contributes its mean prequential loss as one observation: a batch of 64 is one
sample of the current loss level, and one detector update per message keeps the ingest path cheap.
"""

from __future__ import annotations

from collections import deque

from river import drift


def make_detector(name: str = "adwin"):
    if name == "adwin":
        return drift.ADWIN(delta=0.002, clock=4)  # check every 4 observations: alarms come sooner
    if name == "pagehinkley":
        return drift.PageHinkley(min_instances=30, delta=0.05, threshold=5.0, mode="up")  # rises only
    raise ValueError(f"unknown drift detector {name!r}; choose 'adwin' or 'pagehinkley'")


class DriftMonitor:
    """Feeds one detector and says when it fires. Only a rise of the loss is a drift: a detector
    also fires when the loss falls (a better version was published), which needs no update."""

    def __init__(self, name: str = "adwin") -> None:
        self.name = name
        self.detector = make_detector(name)
        self.observations = 0
        self._recent: deque[float] = deque(maxlen=20)

    def update(self, value: float) -> bool:
        self.observations += 1
        self._recent.append(value)
        before = self._estimate()
        self.detector.update(value)
        return bool(self.detector.drift_detected) and (before is None or self._estimate() > before)

    def _estimate(self) -> float | None:
        """The detector's current mean of the loss (ADWIN: of the window it kept)."""
        value = getattr(self.detector, "estimation", None)
        return None if value is None else float(value)

    def level(self) -> float:
        return sum(self._recent) / max(len(self._recent), 1)
