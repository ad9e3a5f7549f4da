"""metastream's learning core: meta-learners, task distributions and backbones in plain PyTorch.

No Kafka and no asyncio here: a learner is usable in a notebook with no broker running.

>>> import torch
>>> from learners import MAML, MLP, SineTasks
>>> torch.manual_seed(0) and None
>>> learner = MAML(MLP(), "regression", inner_lr=0.01, inner_steps=1)
>>> batch = SineTasks().sample(4, torch.Generator().manual_seed(0))
>>> sorted(learner.meta_update(batch))
['loss']
"""

from .lazy import lazy_exports

# name -> the module that defines it, imported on first use
_EXPORTS = {
    "Conv4": "backbones", "MLP": "backbones", "build_backbone": "backbones", "MetaLearner": "base",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint", "MAML": "maml", "FirstOrderMAML": "maml",
    "MatchingNet": "matching", "ProtoNet": "protonet", "ALGORITHMS": "registry", "build_learner": "registry",
    "build_tasks": "registry", "default_config": "registry", "Reptile": "reptile", "Episodes": "tasks",
    "SineTasks": "tasks", "TaskBatch": "tasks",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
