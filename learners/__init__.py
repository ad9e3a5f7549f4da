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

from .backbones import Conv4, MLP, build_backbone
from .base import MetaLearner
from .checkpoint import load_checkpoint, save_checkpoint
from .maml import MAML, FirstOrderMAML
from .matching import MatchingNet
from .protonet import ProtoNet
from .registry import ALGORITHMS, build_learner, build_tasks, default_config
from .reptile import Reptile
from .tasks import Episodes, SineTasks, TaskBatch

__all__ = [
    "ALGORITHMS", "Conv4", "Episodes", "FirstOrderMAML", "MAML", "MatchingNet", "MetaLearner", "ProtoNet",
    "Reptile", "MLP", "SineTasks", "TaskBatch", "build_backbone", "build_learner", "build_tasks",
    "default_config", "load_checkpoint", "save_checkpoint",
]
