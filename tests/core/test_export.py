"""core/export.py: the tables people exchange (.xlsx): 台账, unpaid list, visits, subsidies.

Every person is synthetic (core.idcard.make on the made-up address code 999901).
"""

from __future__ import annotations

import gc
import itertools
import sys
import tempfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from core import idcard
from core.errors import ValidationError
from core.export import LABELS, export, write_rows
from core.ledger import Ledger
from core.tabular import find_header, iter_data, read_sheets
from tests.core.factories import G111, G112, V11, Builder, build_county, make_id

OPERATOR = "导出员"
YEAR = 2027
KINDS = ("ledger", "unpaid", "visits", "subsidy")


@pytest.fixture
def ledger(store) -> Ledger:
    lg = Ledger(store, operator=OPERATOR, year=YEAR)
    build_county(lg)
    return lg


@pytest.fixture
def county(ledger):
    """上坪村一组: households 10, 2, 1 added in that order; 上坪村二组: one household.

    Statuses: 赵大成 claimed, 钱玉兰 confirmed, 赵小峰 unpaid; 周芳 full subsidy
    pending; 吴刚 excluded; everyone else unpaid.
    """
    b = Builder(ledger)
    people: dict[str, str] = {}

    def add(hh, name, n, rel):
        people[name] = ledger.add_person(hh, name=name, id_number=make_id(n), relation=rel)

    h10 = b.household(G111, number="10", address="一组10号")
    add(h10, "孙小明", 300, "子")              # younger, listed after the head
    add(h10, "孙建华", 100, "户主")
    h2 = b.household(G111, number="2", address="一组2号")
    add(h2, "周芳", 250, "女")
    add(h2, "周大军", 50, "户主")
    add(h2, "吴刚", 150, "其他")
    h1 = b.household(G111, number="1", address="一组1号")
    add(h1, "赵大成", 10, "户主")
    add(h1, "钱玉兰", 20, "配偶")
    add(h1, "赵小峰", 200, "子")
    h21 = b.household(G112, number="1")
    add(h21, "李四", 30, "户主")

    ledger.claim_paid(people["赵大成"], date="2026-10-01", channel="微信")
    ledger.confirm_paid(people["钱玉兰"], date="2026-10-02", amount=400)
    ledger.set_subsidy(people["周芳"], category="特困人员", kind="全额资助", department="民政")
    ledger.set_subsidy(people["孙建华"], category="低保对象", kind="定额资助", amount=240,
                       department="民政", arrived="2026-11-01")
    ledger.set_subsidy(people["李四"], category="脱贫人口", kind="定额资助", amount=160,
                       department="乡村振兴")
    ledger.exclude(people["吴刚"], reason="户籍迁出")
    ledger.record_visit(h1, method="上门", date="2026-10-05", person_gid=people["赵小峰"],
                        outcome="承诺缴费", reason="外出务工联系难", note="春节回来缴")
    ledger.record_visit(h2, method="电话", date="2026-10-03", outcome="未联系上")
    return people


def read(path: Path) -> tuple[str | None, list[list], list[list], dict[str, float]]:
    """(freeze_panes, title row, header+data rows as cells, column widths)."""
    book = load_workbook(path)
    sheet = book.worksheets[0]
    rows = [list(r) for r in sheet.iter_rows()]
    widths = {k: v.width for k, v in sheet.column_dimensions.items()}
    freeze = sheet.freeze_panes
    book.close()
    return freeze, rows[0], rows[1:], widths


def run(conn, kind: str, path: Path, **kwargs) -> list:
    return list(export(conn, kind, path, year=YEAR, **kwargs))


def values(cells: list) -> list:
    return [c.value for c in cells]


def id_column(header_cells: list) -> int:
    return values(header_cells).index("身份证号")


# ---------------------------------------------------------------------------
# Every table


@pytest.mark.parametrize("kind", KINDS)
def test_frozen_header_and_ids_masked_as_text(ledger, county, tmp_path, kind):
    path = tmp_path / f"{kind}.xlsx"
    steps = run(ledger.conn, kind, path)
    assert steps[-1].message == "完成" and steps[-1].done == steps[-1].total
    assert path.exists() and not path.with_name(path.name + ".part").exists()
    freeze, title, rows, widths = read(path)
    assert freeze == "A3"
    assert LABELS[kind] in title[0].value and f"{YEAR}年度" in title[0].value
    header, data = rows[0], rows[1:]
    assert all(c.font.bold for c in header)
    assert len(data) == steps[-1].total > 0
    col = id_column(header)
    ids = [r[col] for r in data if r[col].value]
    assert ids
    for cell in ids:
        assert cell.data_type == "s" and isinstance(cell.value, str)
        assert cell.number_format == "@"   # typed as text: a later edit stays text
        assert len(cell.value) == 18 and cell.value[4:14] == "*" * 10
    everyone = {r[0] for r in ledger.conn.execute("SELECT id_number FROM person")}
    masked = {idcard.mask(n) for n in everyone}
    assert {c.value for c in ids} <= masked
    # ID column wide enough to show 18 characters.
    letter = chr(ord("A") + col)
    assert widths[letter] >= 18


@pytest.mark.parametrize("kind", KINDS)
def test_full_ids_when_asked(ledger, county, tmp_path, kind):
    path = tmp_path / f"{kind}.xlsx"
    run(ledger.conn, kind, path, full_id=True)
    _, _, rows, _ = read(path)
    col = id_column(rows[0])
    ids = [r[col] for r in rows[1:] if r[col].value]
    everyone = {r[0] for r in ledger.conn.execute("SELECT id_number FROM person")}
    assert ids and {c.value for c in ids} <= everyone
    assert all(c.data_type == "s" and "*" not in c.value for c in ids)


def test_ledger_table(ledger, county, tmp_path):
    path = tmp_path / "台账.xlsx"
    run(ledger.conn, "ledger", path, unit=V11)
    _, title, rows, _ = read(path)
    assert title[0].value.startswith("上坪村台账")
    header = values(rows[0])
    data = [dict(zip(header, values(r))) for r in rows[1:]]
    assert [(d["组"], d["户号"], d["姓名"]) for d in data] == [
        ("一组", "1", "赵大成"), ("一组", "1", "钱玉兰"), ("一组", "1", "赵小峰"),
        ("一组", "2", "周大军"), ("一组", "2", "吴刚"), ("一组", "2", "周芳"),
        ("一组", "10", "孙建华"), ("一组", "10", "孙小明"),
        ("二组", "1", "李四"),
    ]
    by_name = {d["姓名"]: d for d in data}
    assert by_name["赵大成"]["今年状态"] == "已缴(自报)" and by_name["赵大成"]["缴费日期"] == "2026-10-01"
    assert by_name["钱玉兰"]["今年状态"] == "税务已确认"
    assert by_name["吴刚"]["今年状态"] == "剔除" and by_name["吴刚"]["剔除原因"] == "户籍迁出"
    assert by_name["周芳"]["今年状态"] == "资助待到账" and by_name["周芳"]["特殊群体"] == "特困人员"
    assert by_name["赵小峰"]["户主"] == "赵大成"
    assert by_name["赵小峰"]["最近走访"] == "2026-10-05"
    assert by_name["赵小峰"]["未缴原因"] == "外出务工联系难"
    assert by_name["赵大成"]["乡镇"] == "青山镇" and by_name["赵大成"]["村(社区)"] == "上坪村"


def test_unpaid_list_for_a_group_in_household_order(ledger, county, tmp_path):
    path = tmp_path / "未缴.xlsx"
    steps = run(ledger.conn, "unpaid", path, unit=G111)
    _, title, rows, _ = read(path)
    assert title[0].value.startswith("一组未缴费名单")
    header = values(rows[0])
    data = [dict(zip(header, values(r))) for r in rows[1:]]
    # Household numbers in numeric order (1 < 2 < 10: not the order they were added,
    # nor text order), the head first, then by birth date; the claimed, confirmed and
    # excluded are not listed.
    assert [(d["户号"], d["姓名"], d["与户主关系"]) for d in data] == [
        ("1", "赵小峰", "子"),
        ("2", "周大军", "户主"), ("2", "周芳", "女"),
        ("10", "孙建华", "户主"), ("10", "孙小明", "子"),
    ]
    assert steps[-1].total == 5
    assert {d["组"] for d in data} == {"上坪村一组"}
    assert data[0]["户主"] == "赵大成" and data[0]["住址"] == "一组1号"
    assert data[2]["状态"] == "资助待到账"
    assert data[0]["未缴原因"] == "外出务工联系难"


def test_unpaid_list_of_another_group(ledger, county, tmp_path):
    path = tmp_path / "未缴.xlsx"
    run(ledger.conn, "unpaid", path, unit=G112)
    _, _, rows, _ = read(path)
    assert [values(r)[4] for r in rows[1:]] == ["李四"]


def test_visits_table(ledger, county, tmp_path):
    path = tmp_path / "走访.xlsx"
    run(ledger.conn, "visits", path)
    _, _, rows, _ = read(path)
    header = values(rows[0])
    data = [dict(zip(header, values(r))) for r in rows[1:]]
    assert [(d["日期"], d["户号"], d["对象"], d["方式"], d["结果"]) for d in data] == [
        ("2026-10-03", "2", "（全户）", "电话", "未联系上"),
        ("2026-10-05", "1", "赵小峰", "上门", "承诺缴费"),
    ]
    assert data[0]["身份证号"] in (None, "")
    assert data[1]["身份证号"] == idcard.mask(make_id(200))
    assert data[1]["备注"] == "春节回来缴" and data[1]["走访人"] == OPERATOR


def test_subsidy_table_by_department(ledger, county, tmp_path):
    path = tmp_path / "资助.xlsx"
    run(ledger.conn, "subsidy", path)
    _, _, rows, _ = read(path)
    header = values(rows[0])
    data = [dict(zip(header, values(r))) for r in rows[1:]]
    got = {(d["姓名"], d["代缴部门"], d["资助类别"], d["资助方式"], d["到账"], d["到账日期"] or "")
           for d in data}
    assert got == {
        ("孙建华", "民政", "低保对象", "定额资助", "已到账", "2026-11-01"),
        ("周芳", "民政", "特困人员", "全额资助", "未到账", ""),
        ("李四", "乡村振兴", "脱贫人口", "定额资助", "未到账", ""),
    }
    # Grouped by department.
    runs = [k for k, _ in itertools.groupby(d["代缴部门"] for d in data)]
    assert sorted(runs) == ["乡村振兴", "民政"]       # each department's rows together
    assert {d["姓名"]: d["资助金额"] for d in data}["孙建华"] == 240


def test_empty_table_still_has_its_header(ledger, tmp_path):
    path = tmp_path / "空.xlsx"
    steps = run(ledger.conn, "unpaid", path)
    assert steps[-1].total == 0
    freeze, _, rows, _ = read(path)
    assert freeze == "A3" and len(rows) == 1 and values(rows[0])[0] == "组"


def test_exported_ids_read_back_as_text_by_the_importer(ledger, county, tmp_path):
    """The file goes round: python-calamine (the import side) gets every full ID as text."""
    path = tmp_path / "台账.xlsx"
    run(ledger.conn, "ledger", path, full_id=True)
    (sheet,) = read_sheets(path)
    header = find_header(sheet, ("id_number", "name"))
    assert header is not None and header.row == 1
    got = {r[header.mapping["id_number"]] for _, r in iter_data(sheet, header)}
    everyone = {r[0] for r in ledger.conn.execute("SELECT id_number FROM person")}
    assert got == everyone
    assert all(isinstance(v, str) and idcard.normalize(v) == v for v in got)


# ---------------------------------------------------------------------------
# Cancel and refusals


@pytest.fixture
def system_tmp(tmp_path, monkeypatch) -> Path:
    """The system temporary folder, redirected to one of our own for the test."""
    folder = tmp_path / "systmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def unraisable(monkeypatch) -> list:
    """Exceptions raised where nobody can catch them (e.g. in a generator being collected)."""
    caught: list = []
    monkeypatch.setattr(sys, "unraisablehook", caught.append)
    return caught


def cancel_after_first_step(steps) -> None:
    first = next(steps)
    assert first.message == "保存文件" and first.done == first.total
    steps.close()
    gc.collect()


def test_closing_the_export_early_leaves_no_file(ledger, county, tmp_path, unraisable):
    out = tmp_path / "out"
    out.mkdir()
    path = out / "台账.xlsx"
    cancel_after_first_step(export(ledger.conn, "ledger", path, year=YEAR))
    assert not path.exists()
    assert list(out.iterdir()) == []          # no '.part' file either


def test_closing_the_export_early_keeps_an_earlier_file(ledger, county, tmp_path, unraisable):
    out = tmp_path / "out"
    out.mkdir()
    path = out / "台账.xlsx"
    path.write_bytes(b"an earlier export")
    cancel_after_first_step(export(ledger.conn, "ledger", path, year=YEAR))
    assert path.read_bytes() == b"an earlier export"
    assert [p.name for p in out.iterdir()] == ["台账.xlsx"]


def test_a_finished_export_leaves_no_temporary_file(ledger, county, tmp_path, system_tmp,
                                                    unraisable):
    run(ledger.conn, "ledger", tmp_path / "台账.xlsx", full_id=True)
    gc.collect()
    assert list(system_tmp.iterdir()) == []
    assert unraisable == []


def test_closing_the_export_early_leaves_no_temporary_file(ledger, county, tmp_path,
                                                            system_tmp, unraisable):
    """Nothing with names and full ID numbers is left in the system temp folder either
    (openpyxl's write-only mode, used at first, left its sheet file there until exit)."""
    cancel_after_first_step(export(ledger.conn, "ledger", tmp_path / "台账.xlsx", year=YEAR,
                                   full_id=True))
    leftovers = list(system_tmp.iterdir())
    assert leftovers == [], [p.read_text(errors="replace")[:200] for p in leftovers]
    assert [repr(u.exc_value) for u in unraisable] == []


def test_closing_before_starting_leaves_no_file(ledger, county, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    export(ledger.conn, "ledger", out / "台账.xlsx", year=YEAR).close()
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("kind,name,message", [
    ("people", "x.xlsx", "未知的导出类型"),
    ("ledger", "x.xls", "应以 .xlsx 结尾"),
    ("ledger", "x.csv", "应以 .xlsx 结尾"),
])
def test_refused_exports_write_nothing(ledger, tmp_path, kind, name, message):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValidationError, match=message):
        list(export(ledger.conn, kind, out / name, year=YEAR))
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------------------
# Small tables (reports)


def test_write_rows(tmp_path):
    rows = [["姓名", "身份证号", "行号", "空"], ["王伟", make_id(1), 7, None]]
    path = write_rows(tmp_path / "报告.xlsx", "导入报告" * 10, rows,
                      [10, 21, 6, 4])
    book = load_workbook(path)
    sheet = book.worksheets[0]
    assert sheet.title == ("导入报告" * 10)[:31]
    assert [c.value for c in sheet[1]] == rows[0] and all(c.font.bold for c in sheet[1])
    assert [c.value for c in sheet[2]] == ["王伟", make_id(1), "7", None]
    assert sheet["B2"].data_type == "s"
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["B"].width == 21
    book.close()


def test_only_the_step_after_the_file_is_in_place_is_final(ledger, county, tmp_path):
    """A cancel that reaches the GUI at a final step is too late: the file is there."""
    path = tmp_path / "台账.xlsx"
    seen = [(step.final, path.exists()) for step in
            export(ledger.conn, "ledger", path, year=YEAR)]
    assert seen[-1] == (True, True)
    assert all(final == there for final, there in seen)
