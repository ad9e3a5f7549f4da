"""Transfer between tasks, models and domains: a task's fixed-length encoding under a meta-model,
similarity and retrieval between encodings, and an incremental clustering of tasks that can run in
the stream."""

from .clustering import OnlineTaskClusters
from .encoder import encode_inputs, encode_tasks
from .similarity import cosine_matrix, precision_at_k, spearman

__all__ = ["OnlineTaskClusters", "cosine_matrix", "encode_inputs", "encode_tasks", "precision_at_k", "spearman"]
