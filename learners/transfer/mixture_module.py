"""The network of a mixture of meta-models (``mixture.py``): every component's network, the router's
statistics, and the weights' layout (one component saves as a plain model does)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class MixtureModule(nn.Module):
    """Every component's network, plus the router's running input statistics per component. Its
    ``load_state_dict`` grows or shrinks the components to what the weights hold, so a version with
    more (or fewer) components than the model it is loaded into loads as it is. With one component
    its weights are that component's own, key for key (a one-component mixture's version holds the
    very bytes a plain model's would: a mixture costs nothing until a regime spawns a second), and
    they load as they are into either."""

    def __init__(self, first: nn.Module) -> None:
        super().__init__()
        self.components = nn.ModuleList([first])
        self.register_buffer("input_mean", torch.zeros(1, 0))
        self.register_buffer("input_var", torch.zeros(1, 0))
        self.register_buffer("checked_era", torch.tensor(-1))  # the last era judged (a spawn, or a regime known)
        self.register_buffer("uses", torch.zeros(1))  # decayed count of the training tasks routed to each component

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every component's output side by side (what a function-space comparison of two whole
        mixtures with the same components looks at)."""
        return torch.cat([c(x) for c in self.components], -1)

    def resize(self, count: int, width: int) -> None:
        while len(self.components) < count:
            self.components.append(copy.deepcopy(self.components[0]))
        while len(self.components) > count:
            del self.components[len(self.components) - 1]
        if len(self.uses) != count:
            fresh = torch.zeros(count)
            fresh[: min(count, len(self.uses))] = self.uses[:count]
            self.uses = fresh
        for name in ("input_mean", "input_var"):
            old = getattr(self, name)
            if tuple(old.shape) != (count, width):
                fresh = torch.zeros(count, width)
                if old.shape[1] == width:  # keep the rows of the components that stay
                    fresh[: min(count, len(old))] = old[:count]
                setattr(self, name, fresh)

    def keep(self, indices: list[int]) -> None:
        """Keep only these components (in this order), with their router statistics."""
        self.components = nn.ModuleList([self.components[k] for k in indices])
        for name in ("input_mean", "input_var", "uses"):
            setattr(self, name, getattr(self, name)[indices].clone())

    def state_dict(self, *args, **kwargs):  # noqa: D102
        if len(self.components) == 1 and not args and not kwargs:
            return self.components[0].state_dict()
        return super().state_dict(*args, **kwargs)

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):  # noqa: D102
        if not any(k.startswith("components.") for k in state):  # one component's own weights
            self.resize(1, self.input_mean.shape[1])
            self.uses, self.checked_era = torch.zeros(1), torch.tensor(-1)
            return self.components[0].load_state_dict(state, strict, assign)
        count = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("components.")), default=0)
        if "uses" not in state:  # a version from before use counts: none known
            state = {**state, "uses": torch.zeros(count)}
        self.resize(count, int(state["input_mean"].shape[1]) if "input_mean" in state else 0)
        for name in ("input_mean", "input_var", "uses"):
            if name in state:  # as saved, whatever its rows
                setattr(self, name, torch.zeros_like(state[name]))
        return super().load_state_dict(state, strict, assign)
