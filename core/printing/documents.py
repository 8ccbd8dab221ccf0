"""The printed material, as A4 PDFs (reportlab platypus).

- 缴费告知书 notices: one page per household — members and what each still
  owes under the year's policy (subsidies deducted), the deadline, how to pay
  (channels, steps, a QR code when the township configured a link or text),
  what late or broken enrollment costs, the worker's name and phone.
- 入户动员登记表 door-knock forms: prefilled per household, or blank.
- 政策明白卡 policy cards: 2, 4 or 8 per page with cut marks, large type.
- 未缴费名单 the door-knock list per group, in household order.

Every document is a generator yielding progress (closing it cancels and
removes the partial file). Chinese wraps by character with no line starting
with closing punctuation (reportlab's CJK wrap applies the kinsoku rule);
tables that split repeat their header; pages carry unit, date and number; ID
numbers are masked unless asked otherwise.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import idcard
from core.domain import (
    LastYear, Reason, Relation, Status, SubsidyCategory, SubsidyKind, Department,
)
from core.errors import ValidationError
from core.policy import load_policy
from core.progress import Progress
from core.printing.fonts import font_name, register


def missing_glyphs(texts: Sequence[str]) -> list[str]:
    """The texts with a character the embedded font lacks (rare characters in
    names, 𫖯 𠮷): those would print as nothing, so the user is told."""
    from reportlab.pdfbase.pdfmetrics import getFont

    cmap = getFont(font_name()).face.charToGlyph
    return [t for t in texts if any(not ch.isspace() and ord(ch) not in cmap for ch in t)]


def _glyph_warning(households: Sequence["HouseholdData"]) -> str:
    names = missing_glyphs([m.name for h in households for m in h.members])
    if not names:
        return ""
    shown = "、".join(names[:10]) + ("等" if len(names) > 10 else "")
    return (f"注意：{len(names)}人的姓名中有字体里没有的字，打印出来会缺字（{shown}），"
            "请手写补上，或在设置中换用含生僻字的字体")


# ---------------------------------------------------------------------------
# Data


@dataclass
class MemberLine:
    name: str
    id_text: str
    relation: str
    age: str
    status: str
    status_code: str | None
    owes: float | None       # None: not to pay (insured elsewhere, excluded)
    note: str
    lapsed: bool


@dataclass
class HouseholdData:
    gid: str
    number: str
    place: str
    head: str
    address: str
    phone: str
    worker: str
    unit_code: str
    members: list[MemberLine] = field(default_factory=list)
    last_reason: str = ""

    @property
    def total_owed(self) -> float:
        return sum(m.owes or 0 for m in self.members)

    @property
    def unpaid(self) -> list[MemberLine]:
        return [m for m in self.members if m.owes]


def _units(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT gid, name FROM unit"))


def _place(units: dict[str, str], code: str) -> str:
    return " ".join(units.get(code[:w], "") for w in (9, 12, 15) if len(code) >= w).strip()


def household_gids(conn: sqlite3.Connection, unit: str | None, *, unpaid_only: bool,
                   year: int) -> list[str]:
    """Households under a unit in household order; only those with someone
    still to pay when asked ("everyone unpaid")."""
    under = unit or ""
    sql = ("SELECT h.gid FROM household h WHERE h.deleted=0 AND h.unit_code >= ? "
           "AND h.unit_code < ?")
    if unpaid_only:
        sql += (" AND EXISTS (SELECT 1 FROM person p JOIN enrollment e ON e.gid = p.gid || '/' "
                "|| ? WHERE p.household_gid = h.gid AND p.deleted = 0 AND e.status = 'unpaid')")
    sql += " ORDER BY h.unit_code, CAST(h.number AS INTEGER), h.number, h.id"
    args: list[Any] = [under, under + "\uffff"]
    if unpaid_only:
        args.append(str(year))
    return [r[0] for r in conn.execute(sql, args)]


def load_households(conn: sqlite3.Connection, gids: Sequence[str], year: int,
                    policy: dict[str, Any], *, full_id: bool = False,
                    today: dt.date | None = None) -> list[HouseholdData]:
    today = today or dt.date.today()
    units = _units(conn)
    tier = (policy.get("tiers") or [{"amount": 0}])[0]
    standard = float(tier.get("amount") or 0)
    out = []
    for gid in gids:
        h = conn.execute(
            "SELECT gid, number, unit_code, address, phone, worker, head_gid FROM household "
            "WHERE gid=?", (gid,)).fetchone()
        if h is None:
            continue
        data = HouseholdData(h[0], h[1] or "", _place(units, h[2]), "", h[3] or "", h[4] or "",
                             h[5] or "", h[2])
        reason = conn.execute("SELECT reason FROM visit WHERE household_gid=? ORDER BY date DESC "
                              "LIMIT 1", (gid,)).fetchone()
        data.last_reason = Reason.label_of(reason[0]) if reason else ""
        for row in conn.execute(
                "SELECT p.gid, p.name, p.id_number, p.relation, p.birth_date, e.status, "
                "e.subsidy_kind, e.subsidy_amount, e.subsidy_dept, e.subsidy_category, e.lapsed "
                "FROM person p LEFT JOIN enrollment e ON e.gid = p.gid || '/' || ? "
                "WHERE p.household_gid=? AND p.deleted=0 "
                "ORDER BY p.relation != 'head', p.birth_date", (str(year), gid)):
            pgid, name, number, rel, birth, status, kind, amount, dept, cat, lapsed = row
            if pgid == h[6]:
                data.head = name
            age = ""
            if birth:
                b = dt.date.fromisoformat(birth)
                age = str(today.year - b.year - ((today.month, today.day) < (b.month, b.day)))
            owes: float | None = 0.0
            note = ""
            if status in (Status.ELSEWHERE.value, Status.EXCLUDED.value):
                owes = None
                note = Status.label_of(status)
            elif status in (Status.CLAIMED.value, Status.CONFIRMED.value,
                            Status.SUBSIDIZED.value):
                note = "已缴费" if status != Status.SUBSIDIZED.value else "资助已到账"
            elif kind == SubsidyKind.FULL.value:
                note = (f"{SubsidyCategory.label_of(cat)}，全额资助"
                        + (f"（{Department.label_of(dept)}代缴）" if dept else ""))
            elif kind == SubsidyKind.FIXED.value and amount:
                owes = max(0.0, standard - float(amount))
                note = f"{SubsidyCategory.label_of(cat)}，已资助{amount:g}元"
            else:
                owes = standard
            data.members.append(MemberLine(
                name, (number if full_id else idcard.mask(number)) if number else "",
                Relation.label_of(rel), age, Status.label_of(status) if status else "",
                status, owes, note, bool(lapsed)))
        data.head = data.head or (data.members[0].name if data.members else "")
        out.append(data)
    return out


# ---------------------------------------------------------------------------
# Styles and page furniture


# Chinese closing punctuation that must not start a line. reportlab's CJK
# wrap hangs such a character at the end of the line above, but its list is
# Japanese-oriented and lacks the full-width ，；：？！ and friends.
CANNOT_START = "，。、；：？！）」』》】〕〉…—,.;:?!)]"


def _kinsoku() -> None:
    # Both wrapping paths read the list: textsplit's (plain paragraphs) and
    # paragraph's own copy (paragraphs with markup).
    from reportlab.lib import textsplit
    from reportlab.platypus import paragraph

    for module in (textsplit, paragraph):
        missing = "".join(ch for ch in CANNOT_START if ch not in module.ALL_CANNOT_START)
        if missing:
            module.ALL_CANNOT_START = module.ALL_CANNOT_START + missing


@functools.lru_cache(maxsize=1)
def _paragraph_class():
    """reportlab's Paragraph, hanging runs of closing punctuation: its own wrap
    hangs one mark at a line end, so （默认400元），各级… could still start a
    line with ，. Plain (single-style) paragraphs are fixed after wrapping."""
    from reportlab.platypus import Paragraph

    class CJKParagraph(Paragraph):
        def wrap(self, availWidth: float, availHeight: float):  # noqa: N803 - reportlab's names
            width, height = super().wrap(availWidth, availHeight)
            bl = getattr(self, "blPara", None)
            if bl is None or bl.kind != 0 or len(bl.lines) < 2:
                return width, height
            lines = [list(line) for line in bl.lines]
            previous = 0  # the last line that still has text
            for k in range(1, len(lines)):
                text = "".join(lines[k][1])
                lead = len(text) - len(text.lstrip(CANNOT_START))
                if lead and lines[previous][1]:
                    lines[previous][1] = ["".join(lines[previous][1]) + text[:lead]]
                    text = text[lead:]
                    lines[k][1] = [text] if text else []
                if lines[k][1]:
                    previous = k
            kept = [tuple(line) for line in lines if line[1]]
            if len(kept) != len(bl.lines):
                bl.lines = kept
                height = len(kept) * self.style.leading
                self.height = height
            else:
                bl.lines = kept
            return width, height

    return CJKParagraph


def _styles(large: bool = False) -> dict[str, Any]:
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.styles import ParagraphStyle

    register()
    _kinsoku()
    base = 13 if large else 10.5
    body = ParagraphStyle("body", fontName=font_name(), fontSize=base, leading=base * 1.5,
                          wordWrap="CJK")
    return {
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=base - 1.5,
                                leading=(base - 1.5) * 1.45),
        "title": ParagraphStyle("title", parent=body, fontSize=base + 7, leading=(base + 7) * 1.3,
                                alignment=TA_CENTER, spaceAfter=6),
        "h2": ParagraphStyle("h2", parent=body, fontSize=base + 1.5, leading=(base + 1.5) * 1.4,
                             spaceBefore=6, spaceAfter=2),
        "cell": ParagraphStyle("cell", parent=body, fontSize=base - 1, leading=(base - 1) * 1.3),
    }


def _footer(text: str):
    from reportlab.lib.pagesizes import A4

    def draw(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(font_name(), 8)
        canvas.setFillGray(0.35)
        canvas.drawString(36, 22, text)
        canvas.drawRightString(A4[0] - 36, 22, f"第 {doc.page} 页")
        canvas.restoreState()

    return draw


def _table(data: list[list[Any]], widths: Sequence[float], *, header_rows: int = 1,
           font_size: float = 9.5):
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    table = Table(data, colWidths=widths, repeatRows=header_rows)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), font_name(), font_size),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
        ("BACKGROUND", (0, 0), (-1, header_rows - 1), colors.HexColor("#E8EEF8")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]))
    return table


def _money(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}元" if float(value).is_integer() else f"{value:,.2f}元"


def _escape(text: str) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Cancelled(Exception):
    """Raised through reportlab's page callback when the user cancels a build."""


class _Writer:
    """A document built page group by page group, with progress and cancel."""

    def __init__(self, path: Path, title: str, footer: str,
                 check: Callable[[], None] | None = None) -> None:
        from reportlab.lib.pagesizes import A4
        from reportlab.platypus import SimpleDocTemplate

        self.path = path
        self.temp = path.with_name(path.name + ".part")
        self.doc = SimpleDocTemplate(str(self.temp), pagesize=A4, title=title,
                                     author="参保通", leftMargin=36, rightMargin=36,
                                     topMargin=36, bottomMargin=42)
        draw = _footer(footer)

        def on_page(canvas, doc) -> None:
            # reportlab builds in one call; the page callback is where a
            # cancel can get in (check raises).
            if check is not None:
                check()
            draw(canvas, doc)

        self.footer = on_page
        self.story: list[Any] = []

    def build(self) -> None:
        self.doc.build(self.story, onFirstPage=self.footer, onLaterPages=self.footer)
        _replace(self.temp, self.path)

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)


def _replace(temp: Path, path: Path) -> None:
    try:
        temp.replace(path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ValidationError(f"无法写入 {path}：文件可能正被其他程序（如WPS、PDF阅读器）打开，"
                              f"请关闭后重试（{exc.strerror or exc}）") from None


def _footer_text(units: dict[str, str], unit: str | None) -> str:
    where = _place(units, unit) if unit and len(unit) > 6 else units.get(unit or "", "")
    return f"{where or '全部'}　打印日期 {dt.date.today():%Y-%m-%d}　参保通"


def _check_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".pdf":
        raise ValidationError("输出文件名应以 .pdf 结尾")
    if path.is_dir():
        raise ValidationError(f"{path} 是一个文件夹，请给出文件名")
    if not path.parent.exists():
        raise ValidationError(f"文件夹不存在：{path.parent}")
    return path


# ---------------------------------------------------------------------------
# 缴费告知书


def notices(conn: sqlite3.Connection, out: str | Path, *, year: int, unit: str | None = None,
            households: Sequence[str] | None = None, unpaid_only: bool = True,
            full_id: bool = False, settings: dict[str, str] | None = None,
            check: Callable[[], None] | None = None) -> Iterator[Progress]:
    """One notice per household (a group, a village, or everyone unpaid).
    `check` is called on every page while the PDF is written and raises to cancel."""
    from reportlab.platypus import PageBreak

    path = _check_path(out)
    settings = settings or {}
    policy = load_policy(year)
    styles = _styles()
    units = _units(conn)
    gids = list(households) if households is not None else household_gids(
        conn, unit, unpaid_only=unpaid_only, year=year)
    if not gids:
        raise ValidationError("没有需要打印告知书的户")
    deadline = dt.date.fromisoformat(policy["collection"]["end"])
    link = settings.get("payment_link") or policy.get("payment_link")
    contact = settings.get("contact_phone", "")
    writer = _Writer(path, f"{year}年度城乡居民医保缴费告知书", _footer_text(units, unit), check)
    ok = False
    warnings: list[str] = []
    try:
        for i in range(0, len(gids), 200):
            batch = load_households(conn, gids[i:i + 200], year, policy, full_id=full_id)
            warnings.append(_glyph_warning(batch))
            for h in batch:
                writer.story += _notice(h, year, policy, deadline, link, contact, styles)
                writer.story.append(PageBreak())
            yield Progress(min(i + 200, len(gids)), len(gids), "排版告知书")
        if writer.story and isinstance(writer.story[-1], PageBreak):
            writer.story.pop()
        yield Progress(len(gids), len(gids), "生成PDF")
        writer.build()
        ok = True
        warning = "；".join(w for w in warnings if w)
        yield Progress(len(gids), len(gids), f"完成。{warning}" if warning else "完成",
                       final=True)
    finally:
        if not ok:
            writer.discard()


_STATIC: dict[tuple[Any, ...], Any] = {}


def _static_block(policy: dict[str, Any], link: str | None, styles: dict[str, Any]):
    """How to pay and what a break costs: the same on every notice, so it is laid
    out once and placed as a PDF form on each page (a third of the time)."""
    from reportlab.platypus import Flowable, Table, TableStyle

    Paragraph = _paragraph_class()

    body, small = styles["body"], styles["small"]
    flowables: list[Any] = [Paragraph("缴费方式", styles["h2"]),
                            Paragraph("可通过：" + "、".join(policy.get("channels", [])) + "。",
                                      body)]
    steps = [Paragraph(f"{i + 1}. {_escape(s)}", body)
             for i, s in enumerate(policy.get("payment_steps", []))]
    if link:
        block = Table([[steps, [_qr_flowable(link), Paragraph("扫码缴费", small)]]],
                      colWidths=[400, 100])
        block.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                   ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
        flowables.append(block)
    else:
        flowables += steps
    wp = policy.get("waiting_period", {})
    flowables.append(Paragraph("逾期或断保的后果", styles["h2"]))
    flowables.append(Paragraph(
        f"集中缴费期外参保或断保后再参保的，设置 {wp.get('base_months', 3)} 个月的等待期，"
        f"等待期内发生的医疗费用医保不予报销；每多断保 1 年，等待期增加 "
        f"{wp.get('extra_month_per_year_uninsured', 1)} 个月；断保 4 年及以上的，等待期不少于 "
        f"{wp.get('min_months_after_4_years', 6)} 个月。连续参保还可提高大病保险待遇，"
        "断保后重新计算。新生儿等按规定免等待期。", body))
    width = 523.0
    heights = []
    for f in flowables:
        heights.append(f.wrap(width, 10_000)[1] + f.getSpaceBefore() + f.getSpaceAfter())
    total = sum(heights)
    key = "static" + hashlib.blake2b(repr((policy.get("channels"), policy.get("payment_steps"),
                                           wp, link)).encode(), digest_size=6).hexdigest()

    class _Block(Flowable):
        def __init__(self) -> None:
            super().__init__()
            self.width, self.height = width, total

        def draw(self) -> None:
            canvas = self.canv
            done = canvas.__dict__.setdefault("_cbt_forms", set())
            if key not in done:
                canvas.beginForm(key, 0, 0, width, total)
                y = total
                for f, h in zip(flowables, heights):
                    y -= f.getSpaceBefore()
                    f.wrap(width, 10_000)
                    f.drawOn(canvas, 0, y - (h - f.getSpaceBefore() - f.getSpaceAfter()))
                    y -= h - f.getSpaceBefore()
                canvas.endForm()
                done.add(key)
            canvas.doForm(key)

    return _Block()


_QR_CACHE: dict[str, Any] = {}


def _qr_flowable(text: str):
    """The payment QR code, drawn once per PDF as a form and placed on every
    notice: encoding and drawing a QR code per page was 90 % of the time."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.units import mm
    from reportlab.platypus import Flowable

    drawing = _QR_CACHE.get(text)
    if drawing is None:
        widget = QrCodeWidget(text)
        x0, y0, x1, y1 = widget.getBounds()
        size = 30 * mm
        drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
        drawing.add(widget)
        _QR_CACHE.clear()
        _QR_CACHE[text] = drawing
    key = "qr" + hashlib.blake2b(text.encode(), digest_size=6).hexdigest()

    class _Reused(Flowable):
        def __init__(self) -> None:
            super().__init__()
            self.width, self.height = drawing.width, drawing.height

        def draw(self) -> None:
            canvas = self.canv
            done = canvas.__dict__.setdefault("_cbt_forms", set())
            if key not in done:
                canvas.beginForm(key)
                renderPDF.draw(drawing, canvas, 0, 0)
                canvas.endForm()
                done.add(key)
            canvas.doForm(key)

    return _Reused()


def _notice(h: HouseholdData, year: int, policy: dict[str, Any], deadline: dt.date,
            link: str | None, contact: str, styles: dict[str, Any]) -> list[Any]:
    from reportlab.platypus import Spacer

    Paragraph = _paragraph_class()

    body, small = styles["body"], styles["small"]
    story: list[Any] = [
        Paragraph(f"{year}年度城乡居民基本医疗保险缴费告知书", styles["title"]),
        Paragraph(f"{_escape(h.place)}　{_escape(h.number)}户　户主：{_escape(h.head)}"
                  + (f"　住址：{_escape(h.address)}" if h.address else ""), body),
        Spacer(1, 4),
    ]
    rows: list[list[Any]] = [["姓名", "身份证号", "关系", "年龄", "今年状态", "应缴金额", "说明"]]
    cell = styles["cell"]
    for m in h.members:
        rows.append([Paragraph(_escape(m.name), cell), m.id_text,
                     Paragraph(_escape(m.relation), cell), m.age,
                     Paragraph(_escape(m.status + ("（断保）" if m.lapsed else "")), cell),
                     _money(m.owes), Paragraph(_escape(m.note), cell)])
    story.append(_table(rows, [60, 112, 48, 28, 80, 52, 143]))
    story.append(Spacer(1, 6))
    total = h.total_owed
    if total > 0:
        story.append(Paragraph(
            f"本户尚需缴纳 <b>{_money(total)}</b>（{len(h.unpaid)}人）。请于 "
            f"<b>{deadline.year}年{deadline.month}月{deadline.day}日</b> 前缴费，"
            f"缴费后即享受{year}年全年医保待遇。", body))
    else:
        story.append(Paragraph("本户今年无需再缴费。感谢支持！", body))
    story.append(_static_block(policy, link, styles))
    story.append(Spacer(1, 8))
    who = f"网格员：{_escape(h.worker)}" if h.worker else "网格员："
    phone = f"　联系电话：{_escape(contact)}" if contact else ""
    story.append(Paragraph(f"{who}{phone}　如有疑问请与村（社区）联系。", body))
    if not policy.get("confirmed", True):
        story.append(Spacer(1, 4))
        story.append(Paragraph("（本告知书中的金额和日期按参保通内置的默认政策，以当地正式通知为准。）",
                               small))
    return story


# ---------------------------------------------------------------------------
# 入户动员登记表


def forms(conn: sqlite3.Connection, out: str | Path, *, year: int, unit: str | None = None,
          households: Sequence[str] | None = None, blank: int = 0, unpaid_only: bool = True,
          full_id: bool = False, check: Callable[[], None] | None = None
          ) -> Iterator[Progress]:
    """Door-knock forms: prefilled per household, or `blank` empty ones."""
    from reportlab.platypus import PageBreak

    path = _check_path(out)
    policy = load_policy(year)
    styles = _styles()
    units = _units(conn)
    if blank < 0:
        raise ValidationError("空白表张数不能为负数")
    writer = _Writer(path, f"{year}年度城乡居民医保入户动员登记表", _footer_text(units, unit), check)
    ok = False
    try:
        if blank:
            for _ in range(blank):
                writer.story += _form(None, year, styles)
                writer.story.append(PageBreak())
            total = blank
        else:
            gids = list(households) if households is not None else household_gids(
                conn, unit, unpaid_only=unpaid_only, year=year)
            if not gids:
                raise ValidationError("没有需要打印登记表的户")
            total = len(gids)
            for i in range(0, len(gids), 200):
                for h in load_households(conn, gids[i:i + 200], year, policy, full_id=full_id):
                    writer.story += _form(h, year, styles)
                    writer.story.append(PageBreak())
                yield Progress(min(i + 200, total), total, "排版登记表")
        if writer.story and isinstance(writer.story[-1], PageBreak):
            writer.story.pop()
        yield Progress(total, total, "生成PDF")
        writer.build()
        ok = True
        yield Progress(total, total, "完成", final=True)
    finally:
        if not ok:
            writer.discard()


def _form(h: HouseholdData | None, year: int, styles: dict[str, Any]) -> list[Any]:
    from reportlab.platypus import Spacer

    Paragraph = _paragraph_class()

    body = styles["body"]
    box = "□"  # U+25A1 is in every Chinese font; the ballot box □ often is not
    story: list[Any] = [Paragraph(f"{year}年度城乡居民医保入户动员登记表", styles["title"])]
    if h:
        story.append(Paragraph(f"{_escape(h.place)}　户号：{_escape(h.number)}　户主："
                               f"{_escape(h.head)}　电话：{_escape(h.phone)}", body))
    else:
        story.append(Paragraph("乡镇：________　村（社区）：________　组：______　户号：______"
                               "　户主：________　电话：____________", body))
    story.append(Spacer(1, 6))
    rows: list[list[Any]] = [["姓名", "身份证号", "关系", "今年状态", "核实情况（打√）", "未缴原因"]]
    choices = Paragraph(f"{box}已缴 {box}承诺缴 {box}外地参保 {box}剔除", styles["cell"])
    members = h.members if h else []
    cell = styles["cell"]
    for m in members:
        rows.append([Paragraph(_escape(m.name), cell), m.id_text,
                     Paragraph(_escape(m.relation), cell), Paragraph(_escape(m.status), cell),
                     choices, ""])
    for _ in range(max(0, (8 if not h else len(members) + 2) - len(members))):
        rows.append(["", "", "", "", choices, ""])
    story.append(_table(rows, [52, 108, 44, 64, 170, 85]))
    story.append(Spacer(1, 8))
    reasons = "　".join(f"{box}{r.label}" for r in Reason)
    story.append(Paragraph("未缴原因（可多选）：" + reasons, body))
    story.append(Spacer(1, 8))
    story.append(Paragraph("走访方式：□上门　□电话　□微信　　走访结果：□当场缴费　□承诺缴费"
                           "　□犹豫未定　□明确拒绝　□未联系上", body))
    story.append(Spacer(1, 10))
    story.append(Paragraph("情况说明：", body))
    story.append(Spacer(1, 40))
    story.append(Paragraph("户主（家属）签字：____________　　网格员签字：____________"
                           "　　走访日期：______年____月____日", body))
    story.append(Spacer(1, 8))
    story.append(Paragraph("下次回访日期：______年____月____日　　回访方式：□上门　□电话　□微信",
                           body))
    return story


# ---------------------------------------------------------------------------
# 政策明白卡


def cards(out: str | Path, *, year: int, per_page: int = 4, pages: int = 1,
          large: bool = False, settings: dict[str, str] | None = None,
          unit_name: str = "") -> Iterator[Progress]:
    """Policy Q&A cards from the policy-year file, several per page with cut marks."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import Frame, KeepInFrame

    Paragraph = _paragraph_class()

    if per_page not in (2, 4, 8):
        raise ValidationError("每页张数只能是 2、4 或 8")
    if pages < 1:
        raise ValidationError("页数至少为1")
    path = _check_path(out)
    policy = load_policy(year)
    settings = settings or {}
    size = landscape(A4) if per_page == 2 else A4
    cols, rows = {2: (2, 1), 4: (2, 2), 8: (2, 4)}[per_page]
    margin = 24
    w = (size[0] - 2 * margin) / cols
    h = (size[1] - 2 * margin) / rows
    styles = _styles(large)
    base = {2: 12, 4: 10.5, 8: 8.5}[per_page] + (3 if large else 0)
    from reportlab.lib.styles import ParagraphStyle

    q_style = ParagraphStyle("q", parent=styles["body"], fontSize=base, leading=base * 1.35)
    a_style = ParagraphStyle("a", parent=q_style, textColor="#333333", spaceAfter=base * 0.3)
    t_style = ParagraphStyle("t", parent=styles["title"], fontSize=base + 4,
                             leading=(base + 4) * 1.25, spaceAfter=base * 0.4)
    qa = policy.get("qa", [])
    deadline = dt.date.fromisoformat(policy["collection"]["end"])
    tier = (policy.get("tiers") or [{"amount": 0}])[0]
    content = [Paragraph(f"{year}年度城乡居民医保政策明白卡", t_style),
               Paragraph(f"<b>个人缴费 {tier.get('amount', '')} 元/人，"
                         f"{deadline.month}月{deadline.day}日前缴清</b>", q_style)]
    for item in qa:
        content.append(Paragraph(f"<b>问：{_escape(item['q'])}</b>", q_style))
        content.append(Paragraph(f"答：{_escape(item['a'])}", a_style))
    contact = settings.get("contact_phone")
    if unit_name or contact:
        content.append(Paragraph(f"{_escape(unit_name)}{'　咨询电话：' + _escape(contact) if contact else ''}",
                                 a_style))
    canvas = Canvas(str(path.with_name(path.name + ".part")), pagesize=size)
    canvas.setTitle(f"{year}年度城乡居民医保政策明白卡")
    canvas.setAuthor("参保通")
    ok = False
    try:
        # Every card is the same: lay it out once as a form, then place it.
        canvas.beginForm("card", 0, 0, w, h)
        frame = Frame(8, 8, w - 16, h - 16, showBoundary=0,
                      leftPadding=4, rightPadding=4, topPadding=4, bottomPadding=4)
        if large:
            # Large type keeps its size: whole questions that do not fit are
            # left off (the first ones matter most), never cut mid-line.
            fitted, used = [], 0.0
            for f in content:
                need = f.wrap(w - 24, h)[1] + f.getSpaceBefore() + f.getSpaceAfter()
                if used + need > h - 28:
                    break
                fitted.append(f)
                used += need
            if fitted and fitted[-1].text.startswith("<b>问"):  # no question without its answer
                fitted.pop()
            frame.addFromList(fitted, canvas)
        else:
            frame.addFromList([KeepInFrame(w - 24, h - 24, list(content), mode="shrink")],
                              canvas)
        canvas.endForm()
        for page in range(pages):
            for r in range(rows):
                for c in range(cols):
                    canvas.saveState()
                    canvas.translate(margin + c * w, size[1] - margin - (r + 1) * h)
                    canvas.doForm("card")
                    canvas.restoreState()
            _cut_marks(canvas, size, margin, cols, rows, w, h)
            canvas.showPage()
            if page % 20 == 19:
                yield Progress(page + 1, pages, "排版明白卡")
        canvas.save()
        path.with_name(path.name + ".part").replace(path)
        ok = True
        yield Progress(pages, pages, "完成", final=True)
    finally:
        if not ok:
            path.with_name(path.name + ".part").unlink(missing_ok=True)


def _cut_marks(canvas, size, margin, cols, rows, w, h) -> None:
    canvas.saveState()
    canvas.setStrokeGray(0.55)
    canvas.setLineWidth(0.4)
    canvas.setDash(3, 3)
    for c in range(1, cols):
        x = margin + c * w
        canvas.line(x, margin, x, size[1] - margin)
    for r in range(1, rows):
        y = margin + r * h
        canvas.line(margin, y, size[0] - margin, y)
    canvas.setDash()
    tick = 8
    for c in range(cols + 1):
        x = margin + c * w
        canvas.line(x, margin - tick - 2, x, margin - 2)
        canvas.line(x, size[1] - margin + 2, x, size[1] - margin + tick + 2)
    for r in range(rows + 1):
        y = margin + r * h
        canvas.line(margin - tick - 2, y, margin - 2, y)
        canvas.line(size[0] - margin + 2, y, size[0] - margin + tick + 2, y)
    canvas.setFont(font_name(), 7)
    canvas.drawCentredString(size[0] / 2, 8, "沿虚线剪开")
    canvas.restoreState()


# ---------------------------------------------------------------------------
# 未缴费名单


def unpaid_list(conn: sqlite3.Connection, out: str | Path, *, year: int,
                unit: str | None = None, full_id: bool = False,
                check: Callable[[], None] | None = None) -> Iterator[Progress]:
    """The walk list: per group, households in order, who still has to pay."""
    from reportlab.platypus import PageBreak, Spacer

    Paragraph = _paragraph_class()

    path = _check_path(out)
    styles = _styles()
    units = _units(conn)
    under = unit or ""
    small_cell = _styles()["cell"]
    small_cell = type(small_cell)("list_cell", parent=small_cell, fontSize=8, leading=9.5)

    def cell(text: str):
        return Paragraph(_escape(text), small_cell)

    groups = [r[0] for r in conn.execute(
        "SELECT DISTINCT e.group_code FROM enrollment e WHERE e.year=? AND e.status = 'unpaid' "
        "AND e.group_code >= ? AND e.group_code < ? "
        "ORDER BY e.group_code", (year, under, under + "\uffff"))]
    if not groups:
        raise ValidationError("这个单位没有未缴费的人")
    writer = _Writer(path, f"{year}年度城乡居民医保未缴费名单", _footer_text(units, unit), check)
    ok = False
    try:
        for i, code in enumerate(groups):
            rows: list[list[Any]] = [["户号", "户主", "姓名", "关系", "身份证号", "电话", "状态",
                                      "上年", "未缴原因", "备注"]]
            count = 0
            for r in conn.execute(
                    "SELECT h.number, (SELECT name FROM person WHERE gid=h.head_gid), p.name, "
                    "p.relation, p.id_number, coalesce(p.phone, h.phone), e.status, "
                    "e.last_year_status, (SELECT v.reason FROM visit v WHERE "
                    "v.household_gid=h.gid ORDER BY v.date DESC LIMIT 1) "
                    "FROM household h JOIN person p ON p.household_gid=h.gid "
                    "JOIN enrollment e ON e.gid = p.gid || '/' || ? "
                    "WHERE h.unit_code=? AND h.deleted=0 AND p.deleted=0 "
                    "AND e.status = 'unpaid' "
                    "ORDER BY CAST(h.number AS INTEGER), h.number, h.id, p.relation != 'head', "
                    "p.birth_date", (str(year), code)):
                count += 1
                phone = r[5] or ""
                if not full_id and len(phone) >= 11:
                    phone = phone[:3] + "****" + phone[-4:]
                rows.append([r[0] or "", cell(r[1] or ""), cell(r[2]),
                             cell(Relation.label_of(r[3])),
                             (r[4] if full_id else idcard.mask(r[4])) if r[4] else "",
                             phone, cell(Status.label_of(r[6])), LastYear.label_of(r[7]),
                             cell(Reason.label_of(r[8])), ""])
            writer.story.append(Paragraph(f"{_escape(_place(units, code))} 未缴费名单"
                                          f"（{count}人）", styles["title"]))
            writer.story.append(Spacer(1, 4))
            writer.story.append(_table(rows, [28, 50, 50, 40, 96, 62, 40, 34, 76, 35],
                                       font_size=8))
            if i < len(groups) - 1:
                writer.story.append(PageBreak())
            yield Progress(i + 1, len(groups), "排版名单")
        writer.build()
        ok = True
        yield Progress(len(groups), len(groups), "完成", final=True)
    finally:
        if not ok:
            writer.discard()
