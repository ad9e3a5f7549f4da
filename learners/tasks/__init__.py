"""Task distributions: sine regression and N-way K-shot character episodes (imported on first use:
``split.py`` needs no torch)."""

from ..lazy import lazy_exports

_EXPORTS = {
    "Affine": "augment", "TaskBatch": "base", "Episodes": "episodes", "CharacterSet": "images",
    "load_alphabet_folder": "images", "load_image": "images", "DEFAULT_VAL_ALPHABETS": "omniglot",
    "load_omniglot_background": "omniglot", "read_background": "omniglot", "split_background": "omniglot",
    "SineTasks": "sine",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
