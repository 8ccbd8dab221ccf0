"""The grid worker's day, driven through the window as a user would."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt

from core.stats import tree_counts


def _status(store, gid):
    return store.conn.execute("SELECT status FROM enrollment WHERE person_gid=?",
                              (gid,)).fetchone()[0]


def _changes(store):
    return store.conn.execute("SELECT count(*) FROM change").fetchone()[0]


def test_home_shows_units_and_counts(window, demo_store):
    from ui.unit_tree import CODE_ROLE

    home = window.home
    county = home.model.index(0, 0)
    assert home.model.data(county) == "示范县"
    assert home.model.data(county, CODE_ROLE) == "999901"
    expected = tree_counts(demo_store.conn, 2027)["999901"]
    assert home.model.data(home.model.index(0, 1)) == f"{expected.total:,}" == "1,500"
    assert "1,500" in home.cards["total"].text()
    assert "县医保局" in window.who.text() and "演示用户" in window.operator_label.text()


def test_ledger_columns_are_wide_enough_for_their_headers(window):
    """Fixed pixel widths cut 与户主关系 off under the CJK font."""
    header = window.ledger.table.horizontalHeader()
    for col in range(header.count() - 1):   # the last one stretches
        assert header.sectionSize(col) >= header.sectionSizeHint(col), \
            window.ledger.model.headerData(col, Qt.Orientation.Horizontal)


def test_search_select_tick_undo(qtbot, window, demo_store):
    page = window.ledger
    window.nav.setCurrentRow(1)
    unpaid = demo_store.conn.execute(
        "SELECT p.gid, p.name, p.id_number FROM person p JOIN enrollment e ON e.person_gid=p.gid "
        "WHERE e.status='unpaid' ORDER BY p.id LIMIT 1").fetchone()
    gid, name, number = unpaid
    # Search by an 8-digit fragment of the ID number: one hit.
    qtbot.keyClicks(page.search_box, number[6:14])
    qtbot.keyClick(page.search_box, Qt.Key.Key_Return)
    assert page.model.rowCount() >= 1
    row = next(i for i in range(page.model.rowCount()) if page.model.row_at(i).gid == gid)
    page.table.selectRow(row)
    assert page.table.hasFocus() or page.table.setFocus() is None
    before = _changes(demo_store)

    qtbot.keyClick(page.table, Qt.Key.Key_Space)
    assert _status(demo_store, gid) == "claimed"
    assert _changes(demo_store) > before
    shown = page.model.index(row, 6).data()
    assert shown.startswith("已缴(自报)")
    assert window.undo_action.isEnabled()

    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _status(demo_store, gid) == "unpaid"
    assert page.model.index(row, 6).data().startswith("未缴")
    assert "已撤销" in window.statusBar().currentMessage()


def test_household_paid_then_undo_whole(window, demo_store):
    page = window.ledger
    hgid = demo_store.conn.execute(
        "SELECT p.household_gid FROM person p JOIN enrollment e ON e.person_gid=p.gid "
        "WHERE e.status='unpaid' GROUP BY p.household_gid HAVING count(*) >= 2 LIMIT 1"
    ).fetchone()[0]
    unit = demo_store.conn.execute("SELECT unit_code FROM household WHERE gid=?",
                                   (hgid,)).fetchone()[0]
    page.open_household(hgid, unit)
    assert page.panel.detail.gid == hgid
    page.household_paid()
    statuses = {s for (s,) in demo_store.conn.execute(
        "SELECT e.status FROM person p JOIN enrollment e ON e.person_gid=p.gid "
        "WHERE p.household_gid=? AND p.deleted=0", (hgid,))}
    assert "unpaid" not in statuses
    window.undo()
    statuses = [s for (s,) in demo_store.conn.execute(
        "SELECT e.status FROM person p JOIN enrollment e ON e.person_gid=p.gid "
        "WHERE p.household_gid=? AND p.deleted=0", (hgid,))]
    assert statuses.count("unpaid") >= 2


def test_visit_puts_household_in_follow_up_queue(qtbot, window, demo_store, auto_dialogs):
    from core.domain import Reason

    page = window.ledger
    hgid, unit = demo_store.conn.execute(
        "SELECT h.gid, h.unit_code FROM household h WHERE h.last_visit IS NULL AND EXISTS ("
        " SELECT 1 FROM person p JOIN enrollment e ON e.person_gid=p.gid"
        " WHERE p.household_gid=h.gid AND e.status='unpaid') LIMIT 1").fetchone()
    page.open_household(hgid, unit)

    def fill(dialog):
        dialog.method.setCurrentIndex(dialog.method.findData("phone"))
        dialog.reason.setCurrentIndex(dialog.reason.findData(Reason.HARDSHIP.value))
        dialog.note.setPlainText("家里困难，核查低保")

    auto_dialogs(fill)
    before = dt.date.today()   # the form dates the visit when it opens: maybe before midnight
    page.record_visit()
    visit = demo_store.conn.execute(
        "SELECT method, reason, next_date FROM visit WHERE household_gid=?", (hgid,)).fetchone()
    assert visit[0] == "phone" and visit[1] == "hardship"
    assert visit[2] in {(day + dt.timedelta(days=3)).isoformat()   # from the reason
                        for day in (before, dt.date.today())}
    assert page.panel.visits.count() == 1 and "经济困难" in page.panel.visits.item(0).text()

    window.nav.setCurrentRow(2)
    qtbot.waitUntil(lambda: window.followups._task is None, timeout=10_000)
    found = [f for f in window.followups.items if f.household_gid == hgid]
    assert found and found[0].bucket == "soon"
    assert "资助" in found[0].action

    # One activation opens the household in the ledger.
    top = window.followups.tree.topLevelItem(2)
    item = next(top.child(i) for i in range(top.childCount())
                if top.child(i).data(0, Qt.ItemDataRole.UserRole)[0] == hgid)
    window.followups._activated(item)
    assert window.stack.currentWidget() is page
    assert page.panel.detail.gid == hgid


def test_bad_id_shows_message_and_writes_nothing(window, demo_store, auto_dialogs):
    page = window.ledger
    page.table.selectRow(0)
    before = _changes(demo_store)
    number = demo_store.conn.execute("SELECT id_number FROM person LIMIT 1").fetchone()[0]
    bad = number[:-1] + ("0" if number[-1] != "0" else "1")

    def fill(dialog):
        dialog.name.setText("新来的")
        dialog.id_field.setText(bad)

    seen = auto_dialogs(fill)
    page.add_person()
    dialog = seen[-1]
    assert not dialog.result()
    assert "校验" in dialog.error.text()
    assert "校验" in dialog.id_field.hint.text()
    assert _changes(demo_store) == before


def test_duplicate_id_says_where(window, demo_store, auto_dialogs):
    page = window.ledger
    page.table.selectRow(0)
    name, number = demo_store.conn.execute(
        "SELECT name, id_number FROM person ORDER BY id DESC LIMIT 1").fetchone()
    before = _changes(demo_store)

    def fill(dialog):
        dialog.name.setText("重复者")
        dialog.id_field.setText(number)

    seen = auto_dialogs(fill)
    page.add_person()
    dialog = seen[-1]
    assert "身份证号已登记在" in dialog.id_field.hint.text()
    assert "身份证号已登记在" in dialog.error.text() and "户" in dialog.error.text()
    assert name in dialog.error.text()
    assert _changes(demo_store) == before


def test_add_newborn(window, demo_store, auto_dialogs):
    from core import idcard

    page = window.ledger
    page.table.selectRow(0)
    hgid = page.panel.detail.gid
    number = idcard.make("999901", dt.date.today() - dt.timedelta(days=20), 7)

    def fill(dialog):
        dialog.name.setText("小宝")
        dialog.id_field.setText(number)
        dialog.relation.setCurrentIndex(dialog.relation.findData("grandchild"))

    auto_dialogs(fill)
    page.add_person()
    row = demo_store.conn.execute(
        "SELECT household_gid, relation FROM person WHERE id_number=?", (number,)).fetchone()
    assert row == (hgid, "grandchild")
    assert page.current().name == "小宝"


def test_filters(qtbot, window, demo_store):
    page = window.ledger
    page.status_combo.setCurrentIndex(page.status_combo.findData("unpaid_all"))
    page.lapsed_check.setChecked(True)
    qtbot.waitUntil(lambda: not page.model.loading, timeout=10_000)  # the rest streams in
    expected = demo_store.conn.execute(
        "SELECT count(*) FROM enrollment WHERE status IN ('unpaid','subsidy_pending') "
        "AND lapsed=1 AND group_code IS NOT NULL").fetchone()[0]
    assert page.model.rowCount() == expected
    rows = [page.model.row_at(i) for i in range(min(30, page.model.rowCount()))]
    assert all(r.lapsed and r.status in ("unpaid", "subsidy_pending") for r in rows)


def test_models_are_valid(qtmodeltester, window):
    qtmodeltester.check(window.ledger.model, force_py=True)
    qtmodeltester.check(window.home.model, force_py=True)
    qtmodeltester.check(window.ledger.tree_model, force_py=True)


def test_demo_is_built_with_progress_when_missing(qtbot, tmp_path, monkeypatch):
    import ui.app as app_mod
    from core.store import open_store

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


def test_first_run_on_empty_database(qtbot, tmp_path, auto_dialogs):
    from core.store import open_store
    from ui.main_window import MainWindow

    store = open_store(tmp_path / "new.db")
    try:
        w = MainWindow(store)
        qtbot.addWidget(w)

        def fill(dialog):
            dialog.role.setCurrentIndex(dialog.role.findData("village"))
            dialog.code.setText("999901002003")
            dialog.name.setText("新村")
            dialog.parent_names.setText("示范县 青山镇")
            dialog.operator.setText("韦网格")

        auto_dialogs(fill)
        w.configure()
        assert store.setting("role") == "village" and store.setting("scope") == "999901002003"
        assert store.setting("operator") == "韦网格"
        names = dict(store.conn.execute("SELECT gid, name FROM unit"))
        assert {k: names[k] for k in ("999901", "999901002", "999901002003")} == {
            "999901": "示范县", "999901002": "青山镇", "999901002003": "新村"}
        assert names["999901002003001"] == "第一组" and names["999901002003006"] == "第六组"
        assert "韦网格" in w.operator_label.text()
        w.close()
    finally:
        store.close()


def test_open_household_past_first_page_selects_its_member(qtbot, window, demo_store):
    """The list streams in after its first 200 rows; the household's member must
    end up selected (never row 0 of someone else's household)."""
    page = window.ledger
    hgid, unit = demo_store.conn.execute(
        "SELECT h.gid, h.unit_code FROM household h WHERE h.deleted=0 "
        "AND (SELECT count(*) FROM person p JOIN household h2 ON h2.gid=p.household_gid "
        "     WHERE h2.unit_code=h.unit_code AND CAST(h2.number AS INTEGER) "
        "     < CAST(h.number AS INTEGER)) > 250 LIMIT 1").fetchone()
    page.worker_combo.setCurrentIndex(min(1, page.worker_combo.count() - 1))
    page.open_household(hgid, unit)
    qtbot.waitUntil(lambda: not page.model.loading, timeout=10_000)
    current = page.current()
    assert current is not None and current.household_gid == hgid
    assert page.worker_combo.currentData() is None  # the worker filter was cleared


def test_undo_still_works_after_a_visit(window, demo_store, auto_dialogs):
    page = window.ledger
    gid = demo_store.conn.execute(
        "SELECT person_gid FROM enrollment WHERE status='unpaid' AND group_code IS NOT NULL "
        "LIMIT 1").fetchone()[0]
    page.select_person(gid)
    page.tick()
    assert _status(demo_store, gid) == "claimed"
    auto_dialogs(lambda d: d.reason.setCurrentIndex(d.reason.findData("later")))
    page.record_visit()
    window.undo()  # the visit is not on the undo stack: this undoes the tick
    assert _status(demo_store, gid) == "unpaid"


def test_typing_on_the_table_goes_to_the_search_box(qtbot, window):
    page = window.ledger
    page.table.setFocus()
    qtbot.keyClicks(page.table, "zx")
    assert page.search_box.text() == "zx"


def test_visit_paid_on_the_spot_ticks_the_person(window, demo_store, auto_dialogs):
    page = window.ledger
    gid = demo_store.conn.execute(
        "SELECT person_gid FROM enrollment WHERE status='unpaid' AND group_code IS NOT NULL "
        "LIMIT 1 OFFSET 3").fetchone()[0]
    page.select_person(gid)

    def fill(dialog):
        dialog.outcome.setCurrentIndex(dialog.outcome.findData("paid"))
        assert dialog.paid_now.isChecked()

    auto_dialogs(fill)
    page.record_visit()
    assert _status(demo_store, gid) == "claimed"


def test_a_reload_replaced_by_a_newer_one_shows_nothing(qtbot, window):
    """A reload that finished just before its cancel reached it must not show
    its counts, nor let the newer reload run on unwatched (whichever of the
    two ended last would win)."""
    ledger, followups = window.ledger, window.followups
    followups.reload()   # it loads when first shown
    qtbot.waitUntil(lambda: followups._task is None, timeout=10_000)
    counts, items = dict(ledger._units), followups.items
    assert counts and items
    ledger.reload_counts()
    followups.reload()
    first = (ledger._tree_task, followups._task)
    ledger.reload_counts()
    followups.reload()
    second = (ledger._tree_task, followups._task)
    messages: list[str] = []
    window.session.message.connect(messages.append)
    first[0].signals.finished.emit({})   # stale, and empty: easy to see if shown
    first[1].signals.finished.emit([])
    for task in first:
        task.signals.failed.emit("旧的统计出错")
    assert (ledger._tree_task, followups._task) == second
    assert ledger._units == counts and followups.items is items
    assert messages == [] and followups.summary.text() != "统计失败"
    qtbot.waitUntil(lambda: ledger._tree_task is None and followups._task is None,
                    timeout=10_000)
    assert ledger._units.keys() == counts.keys() and len(followups.items) == len(items)
