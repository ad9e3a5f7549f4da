"""N-way K-shot episodes drawn from a :class:`CharacterSet`.

With ``within_alphabet`` every class of an episode comes from one alphabet, as in Lake et al.'s
one-shot test, which is harder than mixing alphabets: the distractors look alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .augment import Affine
from .base import TaskBatch
from .images import CharacterSet, to_float
from ..errors import ConfigError


@dataclass
class Episodes:
    charset: CharacterSet
    ways: int = 5
    shots: int = 1
    queries: int = 15
    within_alphabet: bool = False
    augment: Affine | None = None

    kind = "classification"

    def __post_init__(self) -> None:
        per_char = int(self.charset.counts.min()) if self.charset.num_characters else 0
        if self.shots + self.queries > per_char:
            raise ConfigError(f"{self.shots} shots + {self.queries} queries need that many images per character; the set has {per_char}")
        if self.ways > self.charset.num_characters:
            raise ConfigError(f"{self.ways}-way episodes need {self.ways} characters; the set has {self.charset.num_characters}")
        sizes = torch.bincount(self.charset.char_alphabet, minlength=len(self.charset.alphabets))
        self._alphabets = [a for a in range(len(sizes)) if sizes[a] >= self.ways]
        if self.within_alphabet and not self._alphabets:
            raise ConfigError(f"no alphabet has {self.ways} characters for within-alphabet episodes (largest: {int(sizes.max())})")
        self._chars_of = {a: self.charset.characters_of(a) for a in self._alphabets}

    def _classes(self, gen: torch.Generator) -> torch.Tensor:
        if self.within_alphabet:
            alpha = self._alphabets[int(torch.randint(len(self._alphabets), (1,), generator=gen))]
            chars = self._chars_of[alpha]
            return chars[torch.randperm(len(chars), generator=gen)[: self.ways]]
        return torch.randperm(self.charset.num_characters, generator=gen)[: self.ways]

    def sample(self, n: int, gen: torch.Generator) -> TaskBatch:
        per = self.shots + self.queries
        idx = torch.empty(n, self.ways, per, dtype=torch.long)
        for t in range(n):
            for w, c in enumerate(self._classes(gen)):
                count = int(self.charset.counts[c])
                idx[t, w] = self.charset.starts[c] + torch.randperm(count, generator=gen)[:per]
        images = to_float(self.charset.images[idx.flatten()])  # [n*ways*per, 1, H, W]
        if self.augment is not None:
            images = self.augment(images, gen)
        images = images.view(n, self.ways, per, *images.shape[1:])
        labels = torch.arange(self.ways).view(1, self.ways, 1).expand(n, self.ways, per)
        s, q = images[:, :, : self.shots], images[:, :, self.shots :]
        ls, lq = labels[:, :, : self.shots], labels[:, :, self.shots :]
        flat = lambda t: t.reshape(n, -1, *t.shape[3:])
        return TaskBatch(flat(s), flat(ls).contiguous(), flat(q), flat(lq).contiguous())
