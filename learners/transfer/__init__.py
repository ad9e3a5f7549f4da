"""Transfer between tasks, models and domains: a task's fixed-length encoding under a meta-model,
similarity and retrieval between encodings, and an incremental clustering of tasks that can run in
the stream (imported on first use: the mixture's options need no torch)."""

from ..lazy import lazy_exports

_EXPORTS = {"OnlineTaskClusters": "clustering", "encode_inputs": "encoder", "encode_tasks": "encoder",
            "cosine_matrix": "similarity", "precision_at_k": "similarity", "spearman": "similarity"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
