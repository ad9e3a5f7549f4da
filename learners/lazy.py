"""Packages whose names are imported on first use: ``learners`` re-exports learners built on torch,
but what only needs its errors, recipes or task splits (settings, clients, the CLI's help) should
not pay for importing torch.

>>> import learners, sys
>>> "MAML" in dir(learners)
True
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose public ``exports`` map each name to the
    submodule that defines it (PEP 562)."""
    module = importlib.import_module(package)

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{exports[name]}", package), name)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(exports))

    return __getattr__, __dir__
