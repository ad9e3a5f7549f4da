"""Continual learning: composable pieces around a classifier's training step (EWC, replay) and the
metrics of Lopez-Paz and Ranzato (2017). Work in progress: see the README for what is there."""

from .ewc import EWC
from .metrics import ContinualMetrics, accuracy_matrix_metrics
from .replay import ReservoirBuffer

__all__ = ["EWC", "ContinualMetrics", "ReservoirBuffer", "accuracy_matrix_metrics"]
