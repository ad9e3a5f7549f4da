"""Experience replay for classifiers: a reservoir of (input, label) items with a fixed number of
items and a byte bound; every item of the stream has the same chance to be kept (Vitter's
algorithm R). Optionally class-balanced: when full, a new item replaces one of the largest class.
Items may carry the logits the model gave them when they were stored: that is what DER and
DER++ (Buzzega et al., 2020) replay."""

from __future__ import annotations

import torch


class ReservoirBuffer:
    def __init__(self, capacity: int, max_bytes: int | None = None, class_balanced: bool = False, seed: int = 0) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.class_balanced = class_balanced
        self._gen = torch.Generator().manual_seed(seed)
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.z: torch.Tensor | None = None  # stored logits (DER), when given
        self.size = 0
        self.seen = 0

    def _allocate(self, x: torch.Tensor, logits: torch.Tensor | None) -> None:
        item_bytes = x[0].numel() * x.element_size() + 8 + (0 if logits is None else logits[0].numel() * 4)
        if self.max_bytes is not None:
            self.capacity = min(self.capacity, max(self.max_bytes // item_bytes, 1))
        self.x = torch.empty((self.capacity, *x.shape[1:]), dtype=x.dtype)
        self.y = torch.empty(self.capacity, dtype=torch.long)
        if logits is not None:
            self.z = torch.empty((self.capacity, *logits.shape[1:]), dtype=torch.float32)

    @property
    def bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.x, self.y, self.z) if t is not None)

    def add(self, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor | None = None) -> None:
        if self.x is None:
            self._allocate(x, logits)
        if (logits is None) != (self.z is None):
            raise ValueError("store logits with every item or with none")
        for i in range(len(x)):
            self.seen += 1
            if self.size < self.capacity:
                slot = self.size
                self.size += 1
            elif self.class_balanced:
                counts = torch.bincount(self.y[: self.size])
                largest = int(counts.argmax())
                if int(y[i]) == largest and counts[largest] <= counts.max():
                    j = int(torch.randint(self.seen, (1,), generator=self._gen))
                    if j >= self.capacity:
                        continue
                members = torch.nonzero(self.y[: self.size] == largest).flatten()
                slot = int(members[torch.randint(len(members), (1,), generator=self._gen)])
            else:
                j = int(torch.randint(self.seen, (1,), generator=self._gen))
                if j >= self.capacity:
                    continue
                slot = j
            self.x[slot], self.y[slot] = x[i], y[i]
            if logits is not None:
                self.z[slot] = logits[i].detach()

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` items drawn uniformly with replacement: ``(x, y)``."""
        idx = torch.randint(self.size, (min(n, self.size),), generator=self._gen)
        return self.x[idx], self.y[idx]

    def sample_with_logits(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x, y, stored logits)`` of ``n`` items drawn uniformly with replacement."""
        if self.z is None:
            raise ValueError("this buffer stores no logits: add items with logits=...")
        idx = torch.randint(self.size, (min(n, self.size),), generator=self._gen)
        return self.x[idx], self.y[idx], self.z[idx]

    def items(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Everything held: ``(x, y)``."""
        return self.x[: self.size], self.y[: self.size]

    def __len__(self) -> int:
        return self.size
