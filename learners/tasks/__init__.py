"""Task distributions: sine regression and N-way K-shot character episodes."""

from .augment import Affine
from .base import TaskBatch
from .episodes import Episodes
from .images import CharacterSet, load_alphabet_folder, load_image
from .omniglot import DEFAULT_VAL_ALPHABETS, load_omniglot_background, read_background, split_background
from .sine import SineTasks

__all__ = [
    "Affine", "CharacterSet", "DEFAULT_VAL_ALPHABETS", "Episodes", "SineTasks", "TaskBatch",
    "load_alphabet_folder", "load_image", "load_omniglot_background", "read_background", "split_background",
]
