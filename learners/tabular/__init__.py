"""Tabular experience: features of any scale with gaps, a class or a number. The pieces: reading a
:class:`~learners.tabular.data.Table`, a feature pipeline that is data, online candidate learners
that are arrays, and the selection between them offline (successive halving) and online (bandit).
"""

from .candidates import DEFAULT_LEARNER, CandidateSpec, Family, default_candidates
from .data import Table, read_table
from .pipeline import FeaturePipeline, Step

__all__ = ["DEFAULT_LEARNER", "CandidateSpec", "Family", "FeaturePipeline", "Step", "Table", "default_candidates", "read_table"]
