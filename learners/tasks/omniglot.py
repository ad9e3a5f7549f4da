"""Omniglot background sets from the shared data folder, de-duplicated, with a fixed alphabet split.

The two small background sets both hold Greek and Latin, byte for byte; an image is identified by
``alphabet/character/file`` so each is read once. The default meta-validation alphabets are fixed by
name (one hard, one easy script, both with >= 20 characters so 20-way within-alphabet episodes can be
drawn); everything else is meta-training.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..settings import data_dir
from .images import CharacterSet, build_character_set

BACKGROUND_ZIPS = ("images_background_small1.zip", "images_background_small2.zip")
DEFAULT_VAL_ALPHABETS = ("Balinese", "Early_Aramaic")

_CACHE: dict[tuple[str, int], CharacterSet] = {}


def omniglot_dir(root: str | Path | None = None) -> Path:
    folder = Path(root) if root is not None else data_dir() / "omniglot"
    missing = [z for z in BACKGROUND_ZIPS if not (folder / z).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Omniglot background zips {missing} not found in {folder}: set METASTREAM_DATA to the shared data folder"
        )
    return folder


def read_background(root: str | Path | None = None) -> dict[str, list[bytes]]:
    """Original PNG bytes per character (``alphabet/character``), both sets, each file once."""
    folder = omniglot_dir(root)
    seen: dict[str, bytes] = {}
    for name in BACKGROUND_ZIPS:
        with zipfile.ZipFile(folder / name) as zf:
            for member in zf.namelist():
                parts = member.split("/")
                if len(parts) != 4 or not parts[3].lower().endswith(".png"):
                    continue
                ident = "/".join(parts[1:])
                if ident not in seen:
                    seen[ident] = zf.read(member)
    by_char: dict[str, list[bytes]] = {}
    for ident in sorted(seen):
        by_char.setdefault(ident.rsplit("/", 1)[0], []).append(seen[ident])
    return by_char


def load_omniglot_background(root: str | Path | None = None, size: int = 28) -> CharacterSet:
    """All background characters of both small sets (8 alphabets, 242 characters, 4,840 images)."""
    key = (str(omniglot_dir(root).resolve()), size)
    if key not in _CACHE:
        entries = [
            (char.split("/")[0], char.split("/")[1], data)
            for char, images in read_background(root).items()
            for data in images
        ]
        _CACHE[key] = build_character_set(entries, size)
    return _CACHE[key]


def split_background(
    charset: CharacterSet, val_alphabets: tuple[str, ...] = DEFAULT_VAL_ALPHABETS
) -> tuple[CharacterSet, CharacterSet | None]:
    """Deterministic meta-train / meta-validation split by alphabet name."""
    if not val_alphabets:
        return charset, None
    return charset.without_alphabets(val_alphabets), charset.subset_alphabets(val_alphabets)
