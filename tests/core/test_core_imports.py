"""The layer boundary (DESIGN.md §2): core/ never imports PySide6 or ui/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"
FORBIDDEN = {"PySide6", "shiboken6", "ui"}


def forbidden_imports(source: str, filename: str) -> list[str]:
    """Every `import x` / `from x import y` of a forbidden top-level package,
    wherever it appears (module level, inside functions, under TYPE_CHECKING)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: stays inside core/
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append(f"{filename}:{node.lineno}: {name}")
    return found


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_there_are_core_modules_to_check():
    names = {p.name for p in core_files()}
    assert {"__init__.py", "store.py", "ledger.py", "idcard.py", "domain.py"} <= names


@pytest.mark.parametrize("snippet, bad", [
    ("import PySide6", True),
    ("import PySide6.QtCore as qc", True),
    ("from PySide6.QtWidgets import QWidget", True),
    ("import shiboken6", True),
    ("from ui import main_window", True),
    ("import ui.models", True),
    ("def f():\n    from ui.models import X\n", True),
    ("import uikit", False),
    ("from core import ui_text", False),
    ("import core.ledger", False),
    ("from . import ui", False),
])
def test_the_scanner_itself(snippet, bad):
    assert bool(forbidden_imports(snippet, "<snippet>")) is bad


def test_core_never_imports_qt_or_ui():
    offenders = []
    for path in core_files():
        offenders += forbidden_imports(path.read_text(encoding="utf-8"),
                                       str(path.relative_to(ROOT)))
    assert offenders == []


def test_importing_core_does_not_load_pyside6():
    code = (
        "import sys\n"
        "import core.ledger, core.demo, core.search, core.stats, core.changelog\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'shiboken6', 'ui'))\n"
        "print('LOADED:' + ','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "LOADED:" in done.stdout
    assert done.stdout.strip().endswith("LOADED:"), done.stdout
