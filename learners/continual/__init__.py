"""Continual learning: composable pieces around a classifier's training step (EWC, replay and
DER buffers, distillation, weight aligning, progressive columns), the metrics of Lopez-Paz and Ranzato (2017), and
the MNIST benchmarks (permuted, split) that measure them."""

from .align import weight_align
from .benchmark import run_benchmark
from .distill import LwF, compress, distillation_loss
from .ewc import EWC
from .metrics import ContinualMetrics, accuracy_matrix_metrics
from .progressive import ProgressiveNet
from .replay import ReservoirBuffer
from .runner import METHODS, ContinualConfig, run_method

__all__ = ["EWC", "LwF", "METHODS", "ContinualConfig", "ContinualMetrics", "ProgressiveNet", "ReservoirBuffer",
           "accuracy_matrix_metrics", "compress", "distillation_loss", "run_benchmark", "run_method",
           "weight_align"]
