"""Weight aligning (Zhao et al., 2020, "Maintaining discrimination and fairness in class
incremental learning"): a single-head classifier trained on one task at a time gives the classes
it has just learned larger output weights than the old ones, so it predicts new classes too often.
After each task, scale the new classes' rows of the last layer so that their mean norm equals the
old classes' mean norm. It costs nothing at training time and needs no stored data.

>>> import torch
>>> head = torch.nn.Linear(3, 4)
>>> with torch.no_grad():
...     head.weight[:] = torch.tensor([[1., 0, 0], [0, 1, 0], [3, 0, 0], [0, 0, 3]])
>>> round(weight_align(head, old=[0, 1], new=[2, 3]), 4)
0.3333
>>> head.weight.norm(dim=1).tolist()
[1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def weight_align(head: nn.Linear, old: Sequence[int], new: Sequence[int], bias: bool = True) -> float:
    """Scale ``head``'s rows (and, with ``bias``, biases) of the ``new`` classes by
    mean-norm(old) / mean-norm(new), in place; returns the factor (1.0 when there is nothing old)."""
    old, new = list(old), list(new)
    if not old or not new:
        return 1.0
    if set(old) & set(new):
        raise ValueError(f"old and new classes overlap: {sorted(set(old) & set(new))}")
    with torch.no_grad():
        norms = head.weight.norm(dim=1)
        gamma = float(norms[old].mean() / norms[new].mean().clamp_min(1e-12))
        head.weight[new] *= gamma
        if bias and head.bias is not None:
            head.bias[new] *= gamma
    return gamma
