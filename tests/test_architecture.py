"""The package's shape holds: layers, where SQL and Streamlit may appear, private names,
sizes, and the architecture note's file names (our own rules, read from the AST).

docs/architecture.md explains the layers; this file keeps them true.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

from dashboard.core.config import REPO_ROOT

PACKAGE = REPO_ROOT / "dashboard"
PRODUCT_FILES = sorted(PACKAGE.rglob("*.py"))
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 100

# Which rooms of the package each room may import (its own always). The layers run
# core -> store -> ingest | quality -> outputs -> ui | cli; capture and sample are
# side rooms. A lower room never imports a higher one.
ALLOWED_IMPORTS = {
    "core": set(),
    "store": {"core"},
    "ingest": {"core", "store"},
    "quality": {"core", "store"},
    "outputs": {"core", "store", "quality"},
    "capture": {"core", "ingest"},
    "sample": {"core"},
    "ui": {"core", "store", "ingest", "quality", "outputs", "capture"},
    "cli": {"core", "store", "ingest", "quality", "outputs", "capture", "sample"},
    "app": {"ui"},
    "__main__": {"cli"},
    "__init__": set(),
}
DATABASE_LIBRARIES = ("sqlalchemy", "duckdb", "psycopg", "psycopg2", "sqlite3")
# DuckDB as a reader of log files, not of the store: the vectorised import plan parses
# JSON Lines blocks with one in-memory DuckDB query (ingest/, by design of issue #15).
FILE_READERS = ("dashboard/ingest/fastpath",)


def _relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def _room(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def _imported_modules(tree: ast.AST) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "dashboard":
                out.extend(f"dashboard.{alias.name}" for alias in node.names)
            else:
                out.append(node.module)
    return out


TREES = {path: ast.parse(path.read_text()) for path in PRODUCT_FILES}


@pytest.mark.parametrize("path", PRODUCT_FILES, ids=_relative)
def test_no_product_file_or_function_is_too_long(path):
    lines = path.read_text().count("\n")
    assert lines <= MAX_FILE_LINES, f"{_relative(path)}: {lines} lines"
    for node in ast.walk(TREES[path]):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{_relative(path)}:{node.name}: {length} lines"


@pytest.mark.parametrize("path", PRODUCT_FILES, ids=_relative)
def test_each_room_imports_only_the_rooms_below_it(path):
    room = _room(path)
    allowed = ALLOWED_IMPORTS[room] | {room}
    for module in _imported_modules(TREES[path]):
        if module.startswith("dashboard."):
            target = module.split(".")[1]
            assert target in allowed, f"{_relative(path)} ({room}) imports {module}"


@pytest.mark.parametrize("path", PRODUCT_FILES, ids=_relative)
def test_only_the_store_talks_to_a_database(path):
    """SQL lives in dashboard/store/: pages, indicators and outputs call named queries."""
    relative = _relative(path)
    if relative.startswith("dashboard/store/") or relative.startswith(FILE_READERS):
        return
    for module in _imported_modules(TREES[path]):
        assert module.split(".")[0] not in DATABASE_LIBRARIES, f"{relative} imports {module}"


@pytest.mark.parametrize("path", PRODUCT_FILES, ids=_relative)
def test_only_the_ui_imports_streamlit(path):
    relative = _relative(path)
    if relative.startswith("dashboard/ui/") or relative == "dashboard/app.py":
        return
    for module in _imported_modules(TREES[path]):
        assert module.split(".")[0] != "streamlit", f"{relative} imports {module}"


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@pytest.mark.parametrize("path", PRODUCT_FILES, ids=_relative)
def test_private_names_stay_in_their_module(path):
    """No `from dashboard.x import _name`, and no `module._name` on a dashboard module."""
    tree = TREES[path]
    module_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dashboard"):
            for alias in node.names:
                name = alias.name
                assert not (name.startswith("_") and not name.startswith("__")), (
                    f"{_relative(path)} imports private {node.module}.{name}"
                )
                if _is_module(f"{node.module}.{name}"):
                    module_aliases.add(alias.asname or name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dashboard") and alias.asname:
                    module_aliases.add(alias.asname)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            raise AssertionError(f"{_relative(path)} uses private {node.value.id}.{node.attr}")


def test_one_lock_retry_policy():
    """Only the store decides how to wait for a locked database: no other module catches
    lock errors or loops over attempts."""
    for path in PRODUCT_FILES:
        relative = _relative(path)
        if relative.startswith("dashboard/store/"):
            continue
        text = path.read_text()
        assert "is_lock_error" not in text, relative
        assert not re.search(r"for attempt in range", text), relative


def test_the_architecture_note_names_only_files_that_exist():
    note = (REPO_ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:dashboard|tests|benchmarks|data|docs)/[\w./-]+)`", note))
    assert len(named) >= 20, "the note should name the files a change touches"
    for name in sorted(named):
        assert (REPO_ROOT / name.rstrip("/")).exists(), name
    readme = (REPO_ROOT / "README.md").read_text()
    assert "docs/architecture.md" in readme
