"""The first window: the county's units with their counts, loaded off the GUI thread."""

from __future__ import annotations

import datetime as dt

import pytest

from core.demo import build_demo_steps
from core.stats import tree_counts
from core.store import open_store


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    for _ in build_demo_steps(path, 1500, seed=3, today=dt.date(2026, 11, 23), workers=False):
        pass
    return path


def test_window_shows_units_and_counts(qtbot, demo_db):
    from ui.main_window import MainWindow
    from ui.unit_tree import CODE_ROLE

    store = open_store(demo_db)
    try:
        window = MainWindow(store)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window._task is None and window.model.rowCount() == 1,
                        timeout=10_000)
        model = window.model
        county = model.index(0, 0)
        assert model.data(county) == "示范县"
        assert model.data(county, CODE_ROLE) == "999901"
        expected = tree_counts(store.conn, 2027)["999901"]
        assert model.data(model.index(0, 1)) == f"{expected.total:,}"
        assert expected.total == 1500
        assert model.data(model.index(0, 2)) == f"{expected.enrolled:,}"
        assert model.rowCount(county) >= 1  # townships under the county
        township = model.index(0, 0, county)
        assert window.tree.isExpanded(township)
        assert "1,500" in window.cards["total"].text()
        assert "县医保局" in " ".join(
            w.text() for w in window.statusBar().findChildren(type(window.loading)))
    finally:
        window.close()
        store.close()


def test_unit_tree_model_is_a_valid_qt_model(qtmodeltester, demo_db):
    from ui.unit_tree import UnitTreeModel

    store = open_store(demo_db)
    try:
        model = UnitTreeModel()
        model.load(tree_counts(store.conn, 2027))
        qtmodeltester.check(model, force_py=True)
    finally:
        store.close()


def test_demo_is_built_with_progress_when_missing(qtbot, tmp_path, monkeypatch):
    import ui.app as app_mod

    target = tmp_path / "demo.db"
    monkeypatch.setattr(app_mod, "demo_db_path", lambda: target)
    monkeypatch.setattr(app_mod, "DEMO_PERSONS", 400)
    path = app_mod.ensure_demo()
    assert path == target and target.exists()
    store = open_store(target)
    try:
        assert store.conn.execute("SELECT count(*) FROM person").fetchone()[0] == 400
    finally:
        store.close()
