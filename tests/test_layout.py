"""The shape of the code base: ``streams/`` in rooms named for their roles, dependencies that point
one way (no import circle, function-level imports included; the client never reaches the worker),
small modules and functions, docs whose layout table and settings list match the tree and the code, and an agent
that only publishes needs no torch."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("learners", "streams", "schemas")
MAX_LINES = 300
MAX_FUNCTION_LINES = 60
DOCS = ROOT / "docs"
# The rooms of streams/: what each holds. The client (what an agent installs) may use records, kafka,
# schemas and learners, never the worker's rooms.
ROOMS = {
    "client": "the SDK an agent uses: publish experiences, follow and load model versions",
    "records": "what client and worker share: the wire records, aliases, cohorts, signatures",
    "kafka": "connecting, durability, reading topics, the embedded broker",
    "worker": "the stream worker: app, ingest, learning, state, rollout, diagnosis, recovery",
    "catalog": "model presets, model configs, the new-model policy",
    "audit": "the audit trail, rebuilding a version, replaying topics, similar models",
    "simulation": "the demo and the simulated fleets",
    "cli": "the metastream command",
}
CLIENT_MAY_USE = ("streams.client", "streams.records", "streams.kafka", "schemas", "learners")


def modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at import time or inside functions, relative imports resolved."""
    tree = ast.parse(path.read_text())
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in ast.walk(tree):
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
    long = {str(p.relative_to(ROOT)): n for pkg in PACKAGES + ("bench",) for p in modules(pkg)
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_no_function_is_over_60_lines():
    """A function longer than a screen does more than one thing: split it by idea."""
    long = {}
    for pkg in PACKAGES + ("bench",):
        for path in modules(pkg):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = node.end_lineno - node.lineno + 1
    assert not long, long


def import_graph() -> dict[str, set[str]]:
    names = {module_name(p): p for pkg in PACKAGES for p in modules(pkg)}
    return {name: {m for m in imports(path) if m in names and m != name} for name, path in names.items()}


def test_streams_top_level_is_its_rooms():
    top = {p.name for p in (ROOT / "streams").iterdir() if not p.name.startswith((".", "__pycache__"))}
    assert top == {*ROOMS, "__init__.py", "settings"}
    assert len(top) <= 12


def test_the_client_never_reaches_the_worker():
    graph = import_graph()
    for start in [m for m in graph if m.startswith("streams.client")]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        assert all(m.startswith(CLIENT_MAY_USE) for m in seen), (start, sorted(m for m in seen if not m.startswith(CLIENT_MAY_USE)))


def test_no_import_cycles():
    graph = import_graph()
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
    section = (DOCS / "layout.md").read_text()
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            rows[cells[0].strip("`").rstrip("/")] = cells[1]
    return rows


@pytest.mark.parametrize("package", PACKAGES + ("bench",) + tuple(f"streams/{room}" for room in (*ROOMS, "settings")))
def test_layout_table_names_every_module(package):
    row = layout_rows()[package]
    named = set(re.findall(r"`([\w/]+\.py)`", row))
    found = (ROOT / package).glob("*.py") if package == "streams" else (ROOT / package).rglob("*.py")
    present = {str(p.relative_to(ROOT / package)) for p in found
               if p.name not in ("__init__.py", "__main__.py") and not p.name.startswith("_")}
    assert present - named == set(), f"modules missing from docs/layout.md's {package} row"
    assert named - present == set(), f"docs/layout.md's {package} row names modules that do not exist"


def test_settings_page_lists_every_setting():
    from streams.settings import Settings

    page = (DOCS / "settings.md").read_text()
    listed = re.findall(r"^\| `(METASTREAM_\w+)` \| `([^`]*)` \|", page, re.M)
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


def test_readme_is_a_front_door_whose_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if not link.startswith(("http://", "https://", "mailto:"))]
    assert local, "the README links to the docs"
    assert [link for link in local if not (ROOT / link).exists()] == []


def test_every_link_between_the_docs_resolves():
    broken = []
    for page in DOCS.glob("*.md"):
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not link.startswith(("http://", "https://", "mailto:")) and not (page.parent / link).exists():
                broken.append(f"{page.name}: {link}")
    assert broken == []
