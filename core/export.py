"""The tables people exchange, as .xlsx: frozen header, sensible widths, ID
numbers as text (never a number Excel would round), masked unless asked.

openpyxl in write-only mode streams rows to disk, so a county's ledger is
written without holding it in memory. Every export is a generator yielding
progress; closing it cancels and removes the partial file.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from core import idcard
from core.domain import (
    Department, LastYear, Reason, Relation, Status, SubsidyCategory, SubsidyKind, VisitMethod,
    VisitOutcome,
)
from core.errors import ValidationError
from core.progress import Progress
from core.xlsx import column_letter


class Kind:
    LEDGER = "ledger"          # 台账
    UNPAID = "unpaid"          # 未缴费名单（按户排序，入户用）
    VISITS = "visits"          # 走访记录
    SUBSIDY = "subsidy"        # 特殊群体资助到账


LABELS = {Kind.LEDGER: "台账", Kind.UNPAID: "未缴费名单", Kind.VISITS: "走访记录",
          Kind.SUBSIDY: "特殊群体资助到账"}


def _place(units: dict[str, str], code: str) -> tuple[str, str, str]:
    return (units.get(code[:9], ""), units.get(code[:12], ""), units.get(code, ""))


def _id(number: str | None, full: bool) -> str:
    if not number:
        return ""
    return number if full else idcard.mask(number)


def export(conn: sqlite3.Connection, kind: str, path: str | Path, *, year: int,
           unit: str | None = None, full_id: bool = False) -> Iterator[Progress]:
    """Write one table to `path` (.xlsx), yielding progress."""
    if kind not in LABELS:
        raise ValidationError(f"未知的导出类型“{kind}”，可选：{'、'.join(LABELS)}")
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise ValidationError("导出文件名应以 .xlsx 结尾")
    units = dict(conn.execute("SELECT gid, name FROM unit"))
    under = unit or ""
    headers, widths, rows, total = _QUERIES[kind](conn, year, under, units, full_id)
    from core.xlsx import XlsxWriter

    title = f"{units.get(unit, '全部') if unit else '全部'}{LABELS[kind]}"
    # The ID column is typed as text, so nobody's later edit turns it into a
    # rounded number.
    id_columns = {i for i, h in enumerate(headers) if "身份证" in h}
    temp = path.with_name(path.name + ".part")
    done = 0
    ok = False
    writer = XlsxWriter(temp, LABELS[kind], widths=widths, freeze_rows=2,
                        text_columns=id_columns)
    try:
        writer.row([f"{title}（{year}年度，导出于 {dt.date.today():%Y-%m-%d}）"], style=1)
        writer.row(headers, style=2)
        for row in rows:
            writer.row(row)
            done += 1
            if done % 10000 == 0:
                yield Progress(done, total, "写入")
        yield Progress(done, total, "保存文件")
        writer.close()
        temp.replace(path)
        ok = True
        yield Progress(total, total, "完成", final=True)
    finally:
        if not ok:
            writer.abort()
            temp.unlink(missing_ok=True)


def _range(column: str, under: str) -> tuple[str, list[str]]:
    return f"{column} >= ? AND {column} < ?", [under, under + "\uffff"]


_ORDER = "h.unit_code, CAST(h.number AS INTEGER), h.number, h.id, p.relation != 'head', p.birth_date"


def _ledger(conn, year, under, units, full_id):
    where, args = _range("h.unit_code", under)
    total = conn.execute(f"SELECT count(*) FROM household h JOIN person p ON "
                         f"p.household_gid=h.gid WHERE h.deleted=0 AND p.deleted=0 AND {where}",
                         args).fetchone()[0]
    headers = ["乡镇", "村(社区)", "组", "户号", "户主", "姓名", "身份证号", "性别", "出生日期",
               "与户主关系", "联系电话", "特殊群体", "今年状态", "断保", "上年状态", "缴费日期",
               "缴费渠道", "外地参保地", "剔除原因", "最近走访", "下次回访", "未缴原因", "网格员"]
    widths = [10, 12, 8, 7, 9, 9, 21, 5, 11, 10, 13, 14, 12, 5, 8, 11, 9, 14, 10, 11, 11, 14, 9]
    sql = f"""
    SELECT h.unit_code, h.number, (SELECT name FROM person WHERE gid=h.head_gid), p.name,
           p.id_number, p.sex, p.birth_date, p.relation, coalesce(p.phone, h.phone),
           p.categories, e.status, e.lapsed, e.last_year_status,
           coalesce(e.confirmed_date, e.claim_date), e.claim_channel, e.elsewhere_place,
           e.exclude_reason, h.last_visit, h.next_follow_up,
           (SELECT v.reason FROM visit v WHERE v.household_gid=h.gid ORDER BY v.date DESC LIMIT 1),
           h.worker
    FROM household h CROSS JOIN person p ON p.household_gid=h.gid
    LEFT JOIN enrollment e ON e.gid = p.gid || '/' || ?
    WHERE h.deleted=0 AND p.deleted=0 AND {where} ORDER BY {_ORDER}"""
    from core.domain import Channel, ExcludeReason

    def rows():
        for r in conn.execute(sql, [str(year), *args]):
            town, village, group = _place(units, r[0])
            yield [town, village, group, r[1], r[2] or "", r[3], _id(r[4], full_id),
                   {"M": "男", "F": "女"}.get(r[5], ""), r[6] or "", Relation.label_of(r[7]),
                   r[8] or "", _cats(r[9]), Status.label_of(r[10]), "是" if r[11] else "",
                   LastYear.label_of(r[12]), r[13] or "", Channel.label_of(r[14]), r[15] or "",
                   ExcludeReason.label_of(r[16]), r[17] or "", r[18] or "",
                   Reason.label_of(r[19]), r[20] or ""]

    return headers, widths, rows(), total


def _cats(text: str | None) -> str:
    return "、".join(SubsidyCategory.label_of(c) for c in (text or "").split(",") if c)


def _unpaid(conn, year, under, units, full_id):
    where, args = _range("h.unit_code", under)
    cond = (f"h.deleted=0 AND p.deleted=0 AND e.status IN ('unpaid', 'subsidy_pending') "
            f"AND {where}")
    base = (f"FROM household h CROSS JOIN person p ON p.household_gid=h.gid "
            f"JOIN enrollment e ON e.gid = p.gid || '/' || ? WHERE {cond}")
    total = conn.execute(f"SELECT count(*) {base}", [str(year), *args]).fetchone()[0]
    headers = ["组", "户号", "户主", "住址", "姓名", "身份证号", "与户主关系", "年龄",
               "联系电话", "状态", "上年", "最近走访", "未缴原因", "下次回访", "签字", "备注"]
    widths = [14, 7, 9, 12, 9, 21, 10, 5, 13, 12, 8, 11, 14, 11, 10, 16]
    today = dt.date.today()

    def rows():
        for r in conn.execute(
                f"SELECT h.unit_code, h.number, (SELECT name FROM person WHERE gid=h.head_gid), "
                f"h.address, p.name, p.id_number, p.relation, p.birth_date, "
                f"coalesce(p.phone, h.phone), e.status, e.last_year_status, h.last_visit, "
                f"(SELECT v.reason FROM visit v WHERE v.household_gid=h.gid "
                f" ORDER BY v.date DESC LIMIT 1), h.next_follow_up {base} ORDER BY {_ORDER}",
                [str(year), *args]):
            town, village, group = _place(units, r[0])
            age = ""
            if r[7]:
                b = dt.date.fromisoformat(r[7])
                age = str(today.year - b.year - ((today.month, today.day) < (b.month, b.day)))
            yield [f"{village}{group}", r[1], r[2] or "", r[3] or "", r[4], _id(r[5], full_id),
                   Relation.label_of(r[6]), age, r[8] or "", Status.label_of(r[9]),
                   LastYear.label_of(r[10]), r[11] or "", Reason.label_of(r[12]), r[13] or "",
                   "", ""]

    return headers, widths, rows(), total


def _visits(conn, year, under, units, full_id):
    where, args = _range("h.unit_code", under)
    base = (f"FROM visit v JOIN household h ON h.gid=v.household_gid "
            f"LEFT JOIN person p ON p.gid=v.person_gid WHERE {where}")
    total = conn.execute(f"SELECT count(*) {base}", args).fetchone()[0]
    headers = ["日期", "乡镇", "村(社区)", "组", "户号", "户主", "对象", "身份证号", "方式", "结果",
               "未缴原因", "下次回访", "备注", "走访人"]
    widths = [11, 10, 12, 8, 7, 9, 9, 21, 7, 12, 14, 11, 30, 9]

    def rows():
        for r in conn.execute(
                f"SELECT v.date, h.unit_code, h.number, (SELECT name FROM person WHERE "
                f"gid=h.head_gid), p.name, p.id_number, v.method, v.outcome, v.reason, "
                f"v.next_date, v.note, v.visitor {base} ORDER BY v.date, h.unit_code, h.number",
                args):
            town, village, group = _place(units, r[1])
            yield [r[0], town, village, group, r[2], r[3] or "", r[4] or "（全户）",
                   _id(r[5], full_id), VisitMethod.label_of(r[6]), VisitOutcome.label_of(r[7]),
                   Reason.label_of(r[8]), r[9] or "", r[10] or "", r[11] or ""]

    return headers, widths, rows(), total


def _subsidy(conn, year, under, units, full_id):
    where, args = _range("e.group_code", under)
    base = (f"FROM enrollment e JOIN person p ON p.gid=e.person_gid "
            f"WHERE e.year=? AND e.subsidy_category IS NOT NULL AND e.group_code IS NOT NULL "
            f"AND {where}")
    total = conn.execute(f"SELECT count(*) {base}", [year, *args]).fetchone()[0]
    headers = ["代缴部门", "资助类别", "资助方式", "资助金额", "到账", "到账日期", "乡镇",
               "村(社区)", "组", "姓名", "身份证号", "今年状态"]
    widths = [12, 16, 10, 9, 6, 11, 10, 12, 8, 9, 21, 12]

    def rows():
        for r in conn.execute(
                f"SELECT e.subsidy_dept, e.subsidy_category, e.subsidy_kind, e.subsidy_amount, "
                f"e.subsidy_arrived, e.group_code, p.name, p.id_number, e.status {base} "
                f"ORDER BY e.subsidy_dept, e.subsidy_category, e.group_code", [year, *args]):
            town, village, group = _place(units, r[5])
            yield [Department.label_of(r[0]) or "未指定", SubsidyCategory.label_of(r[1]),
                   SubsidyKind.label_of(r[2]), r[3] if r[3] is not None else "",
                   "已到账" if r[4] else "未到账", r[4] or "", town, village, group, r[6],
                   _id(r[7], full_id), Status.label_of(r[8])]

    return headers, widths, rows(), total


_QUERIES: dict[str, Any] = {Kind.LEDGER: _ledger, Kind.UNPAID: _unpaid, Kind.VISITS: _visits,
                            Kind.SUBSIDY: _subsidy}


def write_rows(path: str | Path, title: str, rows: Sequence[Sequence[Any]],
               widths: Sequence[int] | None = None) -> Path:
    """A small table (e.g. an import report) to .xlsx, first row as header."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    path = Path(path)
    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    for row in rows:
        sheet.append([str(c) if c is not None else "" for c in row])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for i, w in enumerate(widths or [14] * (len(rows[0]) if rows else 0)):
        sheet.column_dimensions[column_letter(i)].width = w
    book.save(path)
    return path
