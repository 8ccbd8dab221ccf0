"""GUI fixtures: a small demo county built once, copied fresh for each test."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from core.demo import build_demo_steps
from core.store import open_store


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    for _ in build_demo_steps(path, 1500, seed=3, today=dt.date.today(), workers=False):
        pass
    return path


@pytest.fixture
def demo_store(demo_template, tmp_path):
    path = tmp_path / "demo.db"
    shutil.copy(demo_template, path)
    store = open_store(path)
    yield store
    store.close()


@pytest.fixture
def window(qtbot, demo_store):
    from ui.main_window import MainWindow

    w = MainWindow(demo_store)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    qtbot.waitUntil(lambda: bool(w.ledger._units), timeout=10_000)
    yield w
    w.close()


@pytest.fixture
def auto_dialogs(monkeypatch):
    """Make form dialogs non-modal in tests: `fill(dialog)` runs, then OK is
    pressed; the dialog's error text (if the write was refused) is kept."""
    from ui import dialogs

    seen: list = []

    def install(fill):
        def exec_(self):
            fill(self)
            self._ok()
            seen.append(self)
            return self.result()

        monkeypatch.setattr(dialogs.FormDialog, "exec", exec_)
        return seen

    return install
