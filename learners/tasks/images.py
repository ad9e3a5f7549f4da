"""Character images grouped by alphabet: loading from ``alphabet/character/*.png`` folders.

Images are kept as ``uint8`` with ink = 255 on a 0 background (Omniglot draws black strokes on
white, so pixels are inverted on load) and resized once, so sampling an episode is only indexing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from PIL import Image
from ..errors import ConfigError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


def load_image(source: bytes | str | Path, size: int) -> torch.Tensor:
    """One character image as ``uint8 [size, size]``, ink high, resized with an anti-aliasing filter."""
    try:
        img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        img = img.convert("L")
    except Exception as exc:  # PIL raises many kinds; say which file and why
        raise ConfigError(f"cannot read image {source if not isinstance(source, bytes) else '<bytes>'}: {exc}") from exc
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BOX)
    arr = 255 - np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy())


def to_float(images: torch.Tensor) -> torch.Tensor:
    """``uint8 [..., H, W]`` to ``float32 [..., 1, H, W]`` in [0, 1]."""
    return images.unsqueeze(-3).float().div_(255.0)


@dataclass
class CharacterSet:
    """All images of a set of characters, flat, with each character's slice and alphabet."""

    images: torch.Tensor  # uint8 [M, H, W]
    starts: torch.Tensor  # int64 [C]: first image of each character
    counts: torch.Tensor  # int64 [C]: images per character
    char_alphabet: torch.Tensor  # int64 [C]: index into ``alphabets``
    alphabets: list[str]
    char_names: list[str]

    @property
    def num_characters(self) -> int:
        return len(self.char_names)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def characters_of(self, alphabet: int) -> torch.Tensor:
        return torch.nonzero(self.char_alphabet == alphabet).flatten()

    def alphabet_sizes(self) -> dict[str, int]:
        sizes = torch.bincount(self.char_alphabet, minlength=len(self.alphabets))
        return {name: int(n) for name, n in zip(self.alphabets, sizes)}

    def subset_alphabets(self, names: Iterable[str]) -> "CharacterSet":
        """The characters of the named alphabets (rotated copies ``name@90`` follow their base name)."""
        wanted = set(names)
        keep_alpha = [i for i, a in enumerate(self.alphabets) if a.split("@")[0] in wanted]
        unknown = wanted - {self.alphabets[i].split("@")[0] for i in keep_alpha}
        if unknown:
            raise ConfigError(f"unknown alphabets {sorted(unknown)}; known: {sorted({a.split('@')[0] for a in self.alphabets})}")
        chars = [c for c in range(self.num_characters) if int(self.char_alphabet[c]) in keep_alpha]
        return self._take(chars, keep_alpha)

    def without_alphabets(self, names: Iterable[str]) -> "CharacterSet":
        drop = set(names)
        return self.subset_alphabets([a for a in {x.split("@")[0] for x in self.alphabets} if a not in drop])

    def _take(self, chars: list[int], alphabets: list[int]) -> "CharacterSet":
        remap = {old: new for new, old in enumerate(alphabets)}
        pieces, starts, pos = [], [], 0
        for c in chars:
            s, n = int(self.starts[c]), int(self.counts[c])
            pieces.append(self.images[s : s + n])
            starts.append(pos)
            pos += n
        return CharacterSet(
            images=torch.cat(pieces) if pieces else self.images[:0],
            starts=torch.tensor(starts, dtype=torch.long),
            counts=self.counts[chars].clone(),
            char_alphabet=torch.tensor([remap[int(self.char_alphabet[c])] for c in chars], dtype=torch.long),
            alphabets=[self.alphabets[a] for a in alphabets],
            char_names=[self.char_names[c] for c in chars],
        )

    def with_rotations(self, angles: tuple[int, ...] = (90, 180, 270)) -> "CharacterSet":
        """Add each character rotated by the given multiples of 90 degrees as new classes.

        A rotated copy of an alphabet becomes its own alphabet ``name@angle`` so that a
        within-alphabet episode never mixes a character with its own rotation.
        """
        images, starts, counts, alpha, names = [self.images], [self.starts], [self.counts], [self.char_alphabet], list(self.char_names)
        alphabets = list(self.alphabets)
        offset = self.images.shape[0]
        for k, angle in enumerate(angles, start=1):
            if angle % 90:
                raise ConfigError(f"rotation {angle} is not a multiple of 90 degrees")
            images.append(torch.rot90(self.images, angle // 90, dims=(-2, -1)))
            starts.append(self.starts + offset * k)
            counts.append(self.counts)
            alpha.append(self.char_alphabet + len(self.alphabets) * k)
            alphabets += [f"{a}@{angle}" for a in self.alphabets]
            names += [f"{n}@{angle}" for n in self.char_names]
        return CharacterSet(torch.cat(images), torch.cat(starts), torch.cat(counts), torch.cat(alpha), alphabets, names)


def build_character_set(entries: Iterable[tuple[str, str, bytes | Path]], size: int) -> CharacterSet:
    """From ``(alphabet, character, image source)`` entries, in a sorted, reproducible order."""
    grouped: dict[tuple[str, str], list[bytes | Path]] = {}
    for alphabet, character, source in entries:
        grouped.setdefault((alphabet, character), []).append(source)
    if not grouped:
        raise ConfigError("no character images found")
    keys = sorted(grouped)
    alphabets = sorted({a for a, _ in keys})
    a_index = {a: i for i, a in enumerate(alphabets)}
    images, starts, counts, char_alpha, names, pos = [], [], [], [], [], 0
    for alphabet, character in keys:
        sources = grouped[(alphabet, character)]
        images.extend(load_image(s, size) for s in sources)
        starts.append(pos)
        counts.append(len(sources))
        pos += len(sources)
        char_alpha.append(a_index[alphabet])
        names.append(f"{alphabet}/{character}")
    return CharacterSet(
        images=torch.stack(images),
        starts=torch.tensor(starts, dtype=torch.long),
        counts=torch.tensor(counts, dtype=torch.long),
        char_alphabet=torch.tensor(char_alpha, dtype=torch.long),
        alphabets=alphabets,
        char_names=names,
    )


def load_alphabet_folder(root: str | Path, size: int = 28) -> CharacterSet:
    """Read any folder laid out ``alphabet/character/*.png``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; expected the layout alphabet/character/*.png")
    entries = [
        (p.parent.parent.name, p.parent.name, p)
        for p in sorted(root.glob("*/*/*"))
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    ]
    if not entries:
        raise ConfigError(f"no images under {root}; expected the layout alphabet/character/*.png")
    return build_character_set(entries, size)
