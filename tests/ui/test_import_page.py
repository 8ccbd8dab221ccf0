"""The import page: read a list, preview, import off the GUI thread, undo it."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from openpyxl import Workbook

from core import idcard


def read_list(qtbot, window, path, kind: str):
    """The import tab, with `path` read as a list of `kind` (preview shown)."""
    window.nav.setCurrentRow(3)
    tab = window.import_page.import_tab
    tab.path.setText(str(path))
    tab.kind.setCurrentIndex(tab.kind.findData(kind))
    tab.read()
    qtbot.waitUntil(lambda: tab.plan is not None, timeout=10_000)
    return tab


def run_list(qtbot, tab) -> None:
    tab.run()
    qtbot.waitUntil(lambda: tab._task is None, timeout=20_000)


def paid_list_of_two_unpaid(demo_store, tmp_path):
    """A tax bureau's paid list naming two persons not yet confirmed: (path,
    their enrollment gids)."""
    year = int(demo_store.setting("campaign_year"))
    rows = demo_store.conn.execute(
        "SELECT p.name, p.id_number, e.gid FROM person p JOIN enrollment e "
        "ON e.gid = p.gid || '/' || ? WHERE p.deleted=0 AND e.confirmed_date IS NULL "
        "LIMIT 2", (year,)).fetchall()
    book = Workbook()
    book.active.append(["序号", "缴费人姓名", "缴费人证件号码", "缴费金额", "缴费日期"])
    for i, (name, number, _) in enumerate(rows):
        book.active.append([i + 1, name, number, 400, "2026-10-02"])
    path = tmp_path / "已缴费名单.xlsx"
    book.save(path)
    return path, [egid for _, _, egid in rows]


def test_import_lapsed_list_then_undo(qtbot, window, demo_store, tmp_path):
    conn = demo_store.conn
    village = conn.execute("SELECT name FROM unit WHERE level='village' LIMIT 1").fetchone()[0]
    known = conn.execute("SELECT name, id_number FROM person WHERE deleted=0 LIMIT 3").fetchall()
    book = Workbook()
    sheet = book.active
    sheet.append(["2027年度断保人员名单"])
    sheet.append(["序号", "姓名", "公民身份号码", "村(社区)", "组"])
    for i, (name, number) in enumerate(known):
        sheet.append([i + 1, name, number, village, "一组"])
    new_id = idcard.make("999901", dt.date(1985, 5, 5), 321)
    sheet.append([4, "新来者", new_id, village + "村委会", "第二组"])
    sheet.append([5, "不明村", idcard.make("999901", dt.date(1986, 5, 5), 322), "不存在村", "一组"])
    path = tmp_path / "断保名单.xlsx"
    book.save(path)

    tab = read_list(qtbot, window, path, "lapsed")
    assert tab.preview.rowCount() == 5
    assert tab.units.rowCount() == 1 and tab.units.item(0, 0).text() == "不存在村/一组"
    assert tab.run_button.isEnabled()

    run_list(qtbot, tab)
    report = tab.plan.report
    assert report.new == 1 and report.read == 5 and len(report.refused) == 1
    assert "新增 1" in tab.status.text()
    assert conn.execute("SELECT count(*) FROM person WHERE id_number=? AND deleted=0",
                        (new_id,)).fetchone()[0] == 1
    assert tab.undo_button.isEnabled()

    ok, message = tab._undo(report)
    assert ok and "已撤销" in message
    assert conn.execute("SELECT count(*) FROM person WHERE id_number=? AND deleted=0",
                        (new_id,)).fetchone()[0] == 0


def test_import_paid_list_reaches_the_windows_ledger(qtbot, window, demo_store, tmp_path):
    """The import runs on its own connection in a worker thread; what it
    confirms must be committed there, not lost when that connection closes."""
    conn = demo_store.conn
    path, egids = paid_list_of_two_unpaid(demo_store, tmp_path)

    tab = read_list(qtbot, window, path, "paid")
    run_list(qtbot, tab)
    assert tab.plan.report.updated == 2
    assert tab.table_title.text() == "导入报告：没有拒收或需核对的行。"
    # Run once: its parsed rows are let go, and to import again is to read again.
    assert tab.plan.released and not tab.run_button.isEnabled()
    assert "读取并预览" in tab.run_button.toolTip()
    tab.read()
    qtbot.waitUntil(lambda: tab.plan is not None and not tab.plan.released, timeout=10_000)
    assert tab.run_button.isEnabled() and tab.run_button.toolTip() == ""
    assert [conn.execute("SELECT confirmed_date, status FROM enrollment WHERE gid=?",
                         (egid,)).fetchone() for egid in egids] == \
        [("2026-10-02", "confirmed")] * 2


def test_id_numbers_are_masked_unless_the_user_asks(qtbot, window, demo_store, tmp_path,
                                                    monkeypatch):
    """DESIGN §9: the preview, the report and the saved report mask ID numbers;
    one box shows them whole, for the clerk who must fix the source file."""
    from openpyxl import load_workbook
    from PySide6.QtWidgets import QFileDialog

    stranger = idcard.make("999901", dt.date(1986, 5, 5), 322)
    book = Workbook()
    book.active.append(["序号", "姓名", "公民身份号码", "村(社区)", "组"])
    book.active.append([1, "不明村", stranger, "不存在村", "一组"])
    path = tmp_path / "断保名单.xlsx"
    book.save(path)

    def id_column() -> list[str]:
        headers = [tab.preview.horizontalHeaderItem(c).text()
                   for c in range(tab.preview.columnCount())]
        c = headers.index("身份证号")
        return [tab.preview.item(r, c).text() for r in range(tab.preview.rowCount())]

    tab = read_list(qtbot, window, path, "lapsed")
    assert not tab.full_id.isChecked()
    assert id_column() == [idcard.mask(stranger)]
    tab.full_id.setChecked(True)
    assert id_column() == [stranger]
    tab.full_id.setChecked(False)

    run_list(qtbot, tab)
    assert len(tab.plan.report.refused) == 1
    assert tab.table_title.text().startswith("导入报告：拒收和需核对的行")
    assert id_column() == [idcard.mask(stranger)]      # the report, masked
    saved = []
    for full in (False, True):
        tab.full_id.setChecked(full)
        out = tmp_path / f"报告{int(full)}.xlsx"
        monkeypatch.setattr(QFileDialog, "getSaveFileName",
                            staticmethod(lambda *a, out=out: (str(out), "")))
        tab.save_report()
        sheet = load_workbook(out)["导入报告"]
        saved.append(sheet.cell(2, 6).value)
    assert id_column() == [stranger]                   # the report, in full
    assert saved == [idcard.mask(stranger), stranger]


def test_a_cancel_during_the_commit_is_reported_as_too_late(qtbot, window, demo_store,
                                                            tmp_path, monkeypatch):
    """The import was saved: saying "已取消，台账没有任何改动" would be a lie."""
    import threading

    from ui import import_page

    conn = demo_store.conn
    path, egids = paid_list_of_two_unpaid(demo_store, tmp_path)

    committed, clicked = threading.Event(), threading.Event()
    real = import_page.run_import

    def held_at_the_commit(*args):
        for step in real(*args):
            if step.final:
                committed.set()
                clicked.wait(10)   # the user's click lands after the commit
            yield step

    monkeypatch.setattr(import_page, "run_import", held_at_the_commit)
    tab = read_list(qtbot, window, path, "paid")
    tab.run()
    qtbot.waitUntil(committed.is_set, timeout=20_000)
    tab.cancel()
    clicked.set()
    qtbot.waitUntil(lambda: tab._task is None, timeout=20_000)
    assert tab.status.text().startswith("来不及取消，导入已保存（要撤回请点“撤销本次导入”）。")
    assert tab.plan.report.updated == 2 and tab.undo_button.isEnabled()
    assert [conn.execute("SELECT status FROM enrollment WHERE gid=?", (egid,)).fetchone()[0]
            for egid in egids] == ["confirmed"] * 2


def test_the_window_takes_a_current_hints_word_and_not_a_stale_ones(qtbot, window, demo_store,
                                                                   tmp_path, monkeypatch):
    """The reading task hands its connection over with the ID hint; the
    import, on a connection of its own, asks it whether anything was
    committed since. An edit in the window in between: every row is read
    again, and the renamed person is flagged, not confirmed."""
    from core import importer
    from core.tabular import read_sheets

    # Whole, as a county's list gets it while it parses (two rows parse at once).
    monkeypatch.setattr(importer, "_read_with_ids", lambda conn, path: (
        read_sheets(path), importer.read_ledger_ids(conn, importer.campaign_year(conn))))
    verdicts = []
    holds = importer._hint_holds
    monkeypatch.setattr(importer, "_hint_holds",
                        lambda conn, hint: verdicts.append(holds(conn, hint)) or verdicts[-1])
    conn = demo_store.conn
    path, egids = paid_list_of_two_unpaid(demo_store, tmp_path)
    tab = read_list(qtbot, window, path, "paid")
    hint = tab.plan.ledger_ids
    run_list(qtbot, tab)
    assert verdicts == [True] and tab.plan.report.updated == 2
    assert tab.plan.ledger_ids is None   # let go, and its connection closed
    with pytest.raises(sqlite3.ProgrammingError):
        hint.conn.execute("SELECT 1")
    # A list read and not imported: the next read closes its connection.
    tab = read_list(qtbot, window, path, "paid")
    unused = tab.plan.ledger_ids
    tab.read()
    qtbot.waitUntil(lambda: tab.plan is not None, timeout=10_000)
    with pytest.raises(sqlite3.ProgrammingError):
        unused.conn.execute("SELECT 1")

    path, egids = paid_list_of_two_unpaid(demo_store, tmp_path)
    tab = read_list(qtbot, window, path, "paid")
    window.session.ledger.edit_person(egids[0].rsplit("/", 1)[0], name="改名后")
    run_list(qtbot, tab)
    assert verdicts == [True, False]
    report = tab.plan.report
    assert report.updated == 1 and len(report.flagged) == 1
    assert "改名后" in report.flagged[0].reason
    assert [conn.execute("SELECT confirmed_date FROM enrollment WHERE gid=?",
                         (egid,)).fetchone()[0] for egid in egids] == [None, "2026-10-02"]
