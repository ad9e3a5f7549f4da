"""The worker-side learning (pure PyTorch, no Kafka): a task replay buffer, the online
meta-learner that proposes candidates from it, and the forgetting guard that judges them."""

from .guard import EraScore, ProbeSet, check_forgetting, era_scores, score_points
from .guarded import GuardedProposal, GuardPlan, UpdatePlan, propose_guarded
from .learner import OnlineMetaLearner, Proposal
from .replay import TaskReplayBuffer

__all__ = ["EraScore", "GuardPlan", "GuardedProposal", "OnlineMetaLearner", "ProbeSet", "Proposal", "TaskReplayBuffer", "UpdatePlan",
           "check_forgetting", "era_scores", "propose_guarded", "score_points"]
