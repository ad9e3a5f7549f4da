"""The shape of the code base: dependencies point one way, modules stay small, the README's layout
table and settings list match the tree and the code, and an agent that only publishes needs no torch."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("learners", "streams", "schemas")
MAX_LINES = 300


def modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """Modules imported at import time (not inside functions), relative imports resolved."""
    tree = ast.parse(path.read_text())
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}
    return out


def test_learners_never_import_streams():
    for path in modules("learners"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) streams", text, re.M), path


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for pkg in PACKAGES for p in modules(pkg)
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_no_import_cycles():
    names = {module_name(p): p for pkg in PACKAGES for p in modules(pkg)}
    graph = {name: {m for m in top_level_imports(path) if m in names and m != name} for name, path in names.items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(trail + [node, nxt])}")
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def layout_rows() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            rows[cells[0].strip("`").rstrip("/")] = cells[1]
    return rows


@pytest.mark.parametrize("package", PACKAGES + ("bench",))
def test_readme_layout_table_names_every_module(package):
    row = layout_rows()[package]
    named = set(re.findall(r"`([\w/]+\.py)`", row))
    present = {str(p.relative_to(ROOT / package)) for p in (ROOT / package).rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py") and not p.name.startswith("_")}
    assert present - named == set(), f"modules missing from the README's {package} row"
    assert named - present == set(), f"the README's {package} row names modules that do not exist"


def test_readme_settings_list_is_the_settings_dataclass():
    from streams.settings import Settings

    readme = (ROOT / "README.md").read_text()
    listed = re.findall(r"^\| `(METASTREAM_\w+)` \| `([^`]*)` \|", readme, re.M)
    assert listed == [(var, default) for var, default, _ in Settings.describe()]


def test_publishing_an_experience_needs_no_torch():
    code = """
import sys
sys.modules["torch"] = None  # any 'import torch' now fails
from streams.client import ExperiencePublisher, SyncExperiencePublisher
from schemas import codec_for
from schemas.experiences import make_batch_record
import numpy as np
codec_for("ExperienceBatch").encode(make_batch_record("sine", np.zeros((2, 1)), np.zeros((2, 1)), ["t", "t"]))
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules if sys.modules[m] is not None)
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]
