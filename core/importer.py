"""Importing the campaign's lists into the ledger, through the ledger service.

Kinds (what the list is, which decides what a row does):

- lapsed      断保名单: paid last year, not yet this year → last year = paid
- unenrolled  未参保户籍人口: registered, not enrolled → last year = unpaid
- paid        已缴费名单 (tax bureau): → confirmed paid (date, amount)
- special     特殊群体名单 (a department's list): → special group and subsidy
- roster      户籍花名册: households and members

Persons are found by ID number. A person not in the ledger is added (lapsed,
unenrolled, special, roster) to the group named by the row's village/group
columns, in the household given by its household number (or a household of
their own); names that match no unit are listed for the user to map, never
dropped. A paid-list row for someone not in the ledger, or whose name
differs, is flagged rather than applied.

The whole file is one transaction: it applies completely or not at all, and
importing it again changes nothing and says so.

    plan = prepare(conn, "断保名单.xlsx", "lapsed")      # headers, preview, unknown units
    for step in run_import(ledger, plan, options): ...   # progress; close() cancels
    report = plan.report
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import and_, itemgetter, rshift
from pathlib import Path
from typing import Any, NamedTuple

from core import gcpause, idcard
from core.ahead import ahead
from core.changelog import BulkItem, dumps, encode_scalar, unclocked_sql
from core.domain import (
    Department, LabelledEnum, LastYear, Level, Relation, SubsidyCategory, SubsidyKind, derive_status,
)
from core.errors import CbtError, ValidationError
from core.ledger import (
    Ledger, campaign_year, enrollment_gid, parse_amount, parse_date, parse_name, parse_phone,
)
from core.policy import load_policy
from core.progress import Progress
from core.store import checkpoint_later, index_rebuilt_after
from core.tabular import (
    FIELD_LABELS, Header, Sheet, cell_text, excel_date, find_header, iter_data, present,
    read_sheets,
)
from core.xlsx import column_letter


class Kind(LabelledEnum):
    LAPSED = ("lapsed", "断保名单")
    UNENROLLED = ("unenrolled", "未参保户籍人口")
    PAID = ("paid", "税务已缴费名单")
    SPECIAL = ("special", "特殊群体名单")
    ROSTER = ("roster", "户籍花名册")


REQUIRED = {
    Kind.LAPSED: ("id_number", "name"), Kind.UNENROLLED: ("id_number", "name"),
    Kind.PAID: ("id_number",), Kind.SPECIAL: ("id_number", "name"),
    Kind.ROSTER: ("id_number", "name"),
}

_TOTAL_ROW = re.compile(r"^(合计|总计|小计|共计)")
_GROUP_NUMBER = re.compile(r"^第?([一二三四五六七八九十百零〇\d]+)(组|队|社|网格|小组)?$")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}


def _cn_number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CN_DIGITS.get(ones, 0) if ones else 0)
    if len(text) == 1 and text in _CN_DIGITS:
        return _CN_DIGITS[text]
    return None


def group_number(name: str) -> int | None:
    """'第三组' / '三组' / '3组' / '3' → 3."""
    m = _GROUP_NUMBER.match(re.sub(r"\s", "", name))
    return _cn_number(m.group(1)) if m else None


def village_key(name: str) -> str:
    """'上家头村委会' / '上家头村' / '上家头社区' → '上家头'."""
    text = re.sub(r"\s", "", name)
    # Official names stack suffixes: 上家头村村民委员会, 城关社区居民委员会.
    changed = True
    while changed:
        changed = False
        for suffix in ("村民委员会", "居民委员会", "村委会", "居委会", "社区", "村"):
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)]
                changed = True
                break
    return text


# ---------------------------------------------------------------------------
# Results


@dataclass
class RefusedRow:
    sheet: str
    row: int
    column: str
    reason: str
    name: str = ""
    id_text: str = ""


@dataclass
class ImportReport:
    kind: str
    file: str
    read: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[RefusedRow] = field(default_factory=list)
    flagged: list[RefusedRow] = field(default_factory=list)  # applied or not, needs a look
    already_imported: str | None = None   # when this same file was imported before
    txn: str | None = None                # Ledger.undo(txn) takes the whole import back
    skipped_sheets: list[str] = field(default_factory=list)  # no header found

    def summary(self) -> str:
        text = (f"读取 {self.read:,} 行：新增 {self.new:,}，更新 {self.updated:,}，"
                f"无变化 {self.unchanged:,}，拒收 {len(self.refused):,}")
        if self.flagged:
            text += f"，需核对 {len(self.flagged):,}"
        if self.already_imported:
            text += f"。这个文件已于 {self.already_imported} 导入过"
            if not self.new and not self.updated:
                text += "，本次没有任何改动"
        return text


@dataclass
class SheetPlan:
    sheet: Sheet
    header: Header | None


@dataclass
class LedgerIds:
    """The ledger's live ID numbers, read while a paid list was being parsed:
    number → person rowid << 32 | rowid of that person's enrollment for `year`
    (0 if none or not known).

    A hint, not the truth: it may be partial (reading stops when the parse
    ends) or stale (the ledger may change before the import runs). A number it
    lacks is looked up in SQL, and every hit is checked against the person row
    it names before it is used, unless the hint is known to be current.

    It is known to be current when its connection (`conn`) shows that nothing
    was committed to the database, by it or any other, since it was read:
    `mark` is that connection's PRAGMA data_version (which moves when another
    connection commits) and total_changes (which moves when it writes
    itself) taken before reading; see _hint_holds. Then the import may take
    the hint's verdict (_FRESH in a value: the enrollment's confirmed date
    and amount were never set since it was made; past bit 64, a 64-bit hash
    of the person's name then, so a different name passes for the same one
    with a chance of 2^-64) instead of reading each person and enrollment
    again."""

    year: int
    packed: dict[str, int]
    # The connection it was read on (the window's reading task hands its own
    # over this way, and the import task closes it when done).
    conn: sqlite3.Connection | None = field(default=None, repr=False)
    mark: tuple[int, int] | None = None


@dataclass
class ImportPlan:
    path: Path
    kind: Kind
    file_hash: str
    sheets: list[SheetPlan]
    unknown_units: Counter = field(default_factory=Counter)    # "村/组" text → rows
    report: ImportReport | None = None
    ledger_ids: LedgerIds | None = None
    released: bool = False   # see release_rows()

    @property
    def usable(self) -> list[SheetPlan]:
        return [s for s in self.sheets if s.header is not None]

    def release_rows(self, keep: int = 40) -> None:
        """Drop the parsed rows past the first `keep` of each sheet, once the
        plan has run: the window keeps its last plan for the report and the
        preview, and a county's list is some 400 MB of Python lists. A plan
        released cannot run again (run_import refuses it); the file can."""
        for sp in self.sheets:
            start = sp.header.row + 1 if sp.header is not None else 0
            del sp.sheet.rows[start + keep:]
        self.ledger_ids = None
        self.released = True

    def preview(self, limit: int = 20, full_id: bool = False
                ) -> list[tuple[str, int, dict[str, str]]]:
        """The first rows as the import will read them: (sheet, row, field → text),
        ID numbers masked unless `full_id` (see shown_id). Totals rows are
        left out, as the import leaves them."""
        out = []
        for sp in self.usable:
            for number, row in iter_data(sp.sheet, sp.header):
                if _is_total(row, _Row(sp.sheet.name, number, row, sp.header)):
                    continue
                values = {f: cell_text(row[c]) if c < len(row) else "" for f, c in
                          sorted(sp.header.mapping.items(), key=lambda kv: kv[1])}
                if "id_number" in values:
                    values["id_number"] = shown_id(values["id_number"], full_id)
                out.append((sp.sheet.name, number, values))
                if len(out) >= limit:
                    return out
        return out


@dataclass
class ImportOptions:
    department: str | None = None      # special lists: who sent it (民政, 乡村振兴 …)
    category: str | None = None        # special lists without a category column
    unit_map: dict[str, str] = field(default_factory=dict)  # "村/组" text → group code
    default_group: str | None = None   # for rows that name no village/group at all
    scope: str | None = None           # match unit names under this unit only
    mappings: dict[str, dict[str, int]] = field(default_factory=dict)  # sheet → field → col


# ---------------------------------------------------------------------------
# Preparing: read, find headers, list unknown units


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def saved_mapping(conn: sqlite3.Connection, kind: Kind, titles: list[str]) -> dict[str, str]:
    import json

    row = conn.execute("SELECT value FROM settings WHERE key=?",
                       (_mapping_key(kind, titles),)).fetchone()
    return json.loads(row[0]) if row and row[0] else {}


def save_mapping(conn: sqlite3.Connection, kind: Kind, header: Header) -> None:
    """Remember a corrected mapping for files with these headers (per source)."""
    conn.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)",
                 (_mapping_key(kind, header.titles),
                  dumps({f: header.titles[c] for f, c in header.mapping.items()})))


def _mapping_key(kind: Kind, titles: list[str]) -> str:
    digest = hashlib.blake2b("|".join(t for t in titles if t).encode(), digest_size=8).hexdigest()
    return f"import_mapping:{kind.value}:{digest}"


def prepare(conn: sqlite3.Connection, path: str | Path, kind: str | Kind,
            options: ImportOptions | None = None) -> ImportPlan:
    """Read a file and plan its import; raises ValidationError if nothing in it
    looks like the kind of list asked for."""
    kind = Kind.parse(kind, "名单类型")
    options = options or ImportOptions()
    path = Path(path)
    ids = None
    if kind == Kind.PAID:
        sheets, ids = _read_with_ids(conn, path)
    else:
        sheets = read_sheets(path)
    plans = []
    for sheet in sheets:
        header = find_header(sheet, REQUIRED[kind])
        if header is not None:
            saved = saved_mapping(conn, kind, header.titles)
            if saved:
                header = find_header(sheet, REQUIRED[kind], saved) or header
            if sheet.name in options.mappings:
                header.mapping = dict(options.mappings[sheet.name])
        plans.append(SheetPlan(sheet, header))
    plan = ImportPlan(path, kind, file_hash(path), plans, ledger_ids=ids)
    if not plan.usable:
        need = "、".join(FIELD_LABELS[f] for f in REQUIRED[kind])
        raise ValidationError(f"{path.name} 的前20行里找不到表头（至少要有“{need}”列）。"
                              "请检查是否选错了文件或名单类型。")
    units = UnitIndex(conn, options.scope)
    for sp in plan.usable:
        if kind == Kind.PAID or not ({"village", "group"} & set(sp.header.mapping)):
            continue  # the paid list confirms whoever it names, wherever they live
        for _, row in iter_data(sp.sheet, sp.header):
            place = _place_text(row, sp.header)
            if place and units.find(place, options) is None:
                plan.unknown_units[place] += 1
    return plan


_MASK32 = (1 << 32) - 1
_MASK30 = (1 << 30) - 1
_MASK64 = (1 << 64) - 1
_FRESH = 1 << 62   # in a LedgerIds value: the hint's verdict (see read_ledger_ids)


def _read_with_ids(conn: sqlite3.Connection, path: Path) -> tuple[list[Sheet], LedgerIds]:
    """read_sheets, and meanwhile the ledger's ID numbers (LedgerIds).

    python-calamine parses without holding the GIL, so for a county's list
    this thread has a second or two of a core to itself: reading the IDs then
    costs the import nothing, and saves it looking 400,000 numbers up one by
    one later. Reading stops as soon as the parse is done, so a short list
    against a large ledger waits for nothing."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cbt-read") as pool:
        parsing = pool.submit(read_sheets, path)
        ids = read_ledger_ids(conn, campaign_year(conn), until=parsing.done, limit=_HINT_LIMIT)
        sheets = parsing.result()
    return sheets, ids


# About 70 MB of hint at most: a county of a million keeps the rest of the
# import's memory (the parsed workbook, the page cache) under 1 GB; numbers
# past it are looked up in SQL like any the hint lacks.
_HINT_LIMIT = 500_000


def read_ledger_ids(conn: sqlite3.Connection, year: int,
                    until: Callable[[], bool] | None = None,
                    limit: int | None = None) -> LedgerIds:
    """LedgerIds for `year`: all of them, or as many as were read before
    `until()` turned true or `limit` were read."""
    packed: dict[str, int] = {}
    # Before the query's snapshot is taken: a commit in between leaves the
    # connection's counters past the mark, and the hint is not trusted (never
    # the other way round). Not inside a transaction: what it has written may
    # yet be rolled back, which neither counter would show.
    mark = None if conn.in_transaction else _mark(conn)
    fresh = f"e.id BETWEEN 1 AND ?2 AND {unclocked_sql('enrollment', _PAID_FIELDS, 'e.clk')}"
    # Persons in table order, each with this year's enrollment found by gid:
    # the rowids let the import read both rows directly. (Persons whose rowid
    # would not fit in bits 32-61, below _FRESH, are left to SQL.)
    cur = conn.execute(
        "SELECT p.id_number, (p.id << 32) | CASE WHEN e.id BETWEEN 1 AND ?2 THEN e.id "
        f"ELSE 0 END | iif({fresh}, ?4, 0), iif({fresh}, p.name, NULL) "
        "FROM person p LEFT JOIN enrollment e ON e.gid = p.gid || '/' || ?1 "
        "WHERE p.id_number IS NOT NULL AND p.deleted = 0 AND p.id BETWEEN 1 AND ?3",
        (year, _MASK32, _MASK30, _FRESH))
    try:
        while until is None or not until():
            size = 20_000 if limit is None else min(20_000, limit - len(packed))
            batch = cur.fetchmany(size) if size > 0 else []
            if not batch:
                break
            # The name as a hash past bit 64: one lookup gives the import all
            # it needs, and 400,000 names would cost some 40 MB more.
            packed.update([(number, value if name is None else
                            value | (hash(name) & _MASK64) << 64)
                           for number, value, name in batch])
    finally:
        cur.close()
    return LedgerIds(year, packed, conn, mark)


def _mark(conn: sqlite3.Connection) -> tuple[int, int]:
    return conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes


def _hint_holds(conn: sqlite3.Connection, hint: LedgerIds | None) -> bool:
    """Whether nothing was committed to the database since `hint` was read,
    so that its verdicts hold for the transaction `conn` has just begun and
    not yet written in. SQLite's own counters say so (see LedgerIds); when
    in doubt (no mark, its connection closed) the answer is no."""
    if hint is None or hint.mark is None or hint.conn is None:
        return False
    try:
        # First: a deferred BEGIN takes its snapshot at the first read, and
        # this is it. Whatever the hint's connection says after this was
        # also true before it.
        now = _mark(conn)
        if hint.conn is not conn:
            now = _mark(hint.conn)
    except sqlite3.Error:
        return False
    return now == hint.mark


def _place_text(row: list[Any], header: Header) -> str:
    parts = []
    for f in ("village", "group"):
        c = header.mapping.get(f)
        if c is not None and c < len(row):
            text = cell_text(row[c])
            if text:
                parts.append(text)
    return "/".join(parts)


class UnitIndex:
    """Village and group names → group codes, under a scope."""

    def __init__(self, conn: sqlite3.Connection, scope: str | None = None) -> None:
        under = scope or ""
        rows = conn.execute(
            "SELECT gid, name, level FROM unit WHERE deleted=0 AND gid >= ? AND gid < ?",
            (under, under + "\uffff")).fetchall()
        self.villages: dict[str, list[str]] = defaultdict(list)
        self.groups: dict[str, dict[int | str, str]] = defaultdict(dict)
        for code, name, level in rows:
            if level == Level.VILLAGE.value:
                self.villages[village_key(name)].append(code)
        for code, name, level in rows:
            if level == Level.GROUP.value:
                number = group_number(name)
                self.groups[code[:12]][number if number is not None else name] = code
        self._cache: dict[str, str | None] = {}

    def find(self, place: str, options: ImportOptions) -> str | None:
        if place in options.unit_map:
            return options.unit_map[place]
        if place in self._cache:
            return self._cache[place]
        village, _, group = place.partition("/")
        code = None
        villages = self.villages.get(village_key(village), [])
        if len(villages) == 1:
            groups = self.groups.get(villages[0], {})
            if group:
                number = group_number(group)
                code = groups.get(number if number is not None else group)
            elif len(groups) == 1:
                code = next(iter(groups.values()))
        self._cache[place] = code
        return code


# ---------------------------------------------------------------------------
# Running


@dataclass(slots=True)
class _Row:
    sheet: str
    number: int
    cells: list[Any]
    header: Header

    def get(self, fieldname: str) -> Any:
        c = self.header.mapping.get(fieldname)
        if c is None or c >= len(self.cells):
            return None
        value = self.cells[c]
        return None if value == "" else value

    def column(self, fieldname: str) -> str:
        c = self.header.mapping.get(fieldname)
        return f"{column_letter(c)}列（{self.header.titles[c]}）" if c is not None else ""


def run_import(ledger: Ledger, plan: ImportPlan,
               options: ImportOptions | None = None) -> Iterator[Progress]:
    """Apply the plan in one transaction, yielding progress; closing the
    generator (cancel) rolls everything back, up to the last step: that one
    comes after the commit and is marked final, so a cancel there is too late.
    The report is left in plan.report. The WAL is not checkpointed at the
    commit: the caller runs core.store.checkpoint() when the user has the
    report (closing the last connection does it too)."""
    with gcpause.paused(), checkpoint_later(ledger.conn):
        yield from _run_import(ledger, plan, options or ImportOptions())


def _run_import(ledger: Ledger, plan: ImportPlan,
                options: ImportOptions) -> Iterator[Progress]:
    if plan.released:
        # Its rows are gone but for the preview's: running it would import those alone.
        raise ValidationError("这份名单已经导入过，只保留了预览用的前几行；"
                              "如需再次导入，请重新读取文件")
    conn = ledger.conn
    kind = plan.kind
    report = ImportReport(kind.value, plan.path.name)
    report.skipped_sheets = [sp.sheet.name for sp in plan.sheets if sp.header is None]
    plan.report = report
    previous = conn.execute("SELECT imported_at FROM import_log WHERE file_hash=? AND kind=? "
                            "ORDER BY imported_at DESC LIMIT 1",
                            (plan.file_hash, kind.value)).fetchone()
    if previous:
        report.already_imported = previous[0]
    total = sum(len(sp.sheet.rows) - sp.header.row - 1 for sp in plan.usable)
    units = UnitIndex(conn, options.scope)
    policy = load_policy(ledger.year)
    rules = {r["category"]: r for r in policy.get("subsidy_rules", [])}
    if kind == Kind.PAID:
        yield from _run_paid(ledger, plan, report, total)
        yield Progress(total, total, "完成", final=True)
        return
    done = 0
    seen: dict[str, tuple[str, int]] = {}
    # Phase 1: read and validate every row (no writes), collecting work.
    work: list[tuple[_Row, str, str]] = []   # (row, id number, name)
    for sp in plan.usable:
        for number, cells in iter_data(sp.sheet, sp.header):
            done += 1
            if done % 5000 == 0:
                yield Progress(done, total, "检查数据")
            row = _Row(sp.sheet.name, number, cells, sp.header)
            if _is_total(cells, row):
                continue  # a totals row, not a person
            report.read += 1
            number_text = _checked_id(report, row)
            if number_text is None:
                continue
            raw_name = row.get("name")
            name = ""
            if raw_name is not None or "name" in REQUIRED[kind]:
                try:
                    name = parse_name(cell_text(raw_name))
                except ValidationError as exc:
                    _refuse(report, row, "name", str(exc), id_text=number_text)
                    continue
            if number_text in seen:
                _refuse(report, row, "id_number", _duplicate(seen[number_text], row), name,
                        number_text)
                continue
            seen[number_text] = (row.sheet, row.number)
            work.append((row, number_text, name))
    # Phase 2: write, in one transaction. A bigger page cache for the length of
    # the import: a county-wide list touches most of the enrollment table.
    yield Progress(done, total, "写入台账")
    with _big_cache(conn), _import_step(ledger, plan, report):
        yield from _apply_persons(ledger, kind, work, report, units, options, rules,
                                  report.txn or "")
    yield Progress(total, total, "完成", final=True)


@contextlib.contextmanager
def _big_cache(conn: sqlite3.Connection) -> Iterator[None]:
    # A bigger page cache (128 MB) for the length of the import: a county-wide
    # list touches most of the person and enrollment tables. Not more: the
    # parsed workbook is in memory too, and the peak must stay under 1 GB.
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA cache_size=-131072")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size={int(cache)}")


@contextlib.contextmanager
def _import_step(ledger: Ledger, plan: ImportPlan, report: ImportReport) -> Iterator[None]:
    """One transaction and one undoable step (report.txn) for the whole file,
    logged so that importing it again says so."""
    conn = ledger.conn
    txn = ledger.clock.tick()
    with ledger.batch(), ledger.one_step(txn):
        report.txn = txn
        yield
        conn.execute("INSERT INTO import_log(file_hash, kind, file_name, imported_at, operator, "
                     "summary) VALUES (?,?,?,?,?,?)",
                     (plan.file_hash, plan.kind.value, plan.path.name,
                      dt.datetime.now().isoformat(" ", "seconds"), ledger.operator,
                      report.summary()))
        for sp in plan.usable:
            save_mapping(conn, plan.kind, sp.header)


def _is_total(cells: list[Any], row: "_Row") -> bool:
    """合计/小计 rows: in the first column, or anywhere in a row without an ID."""
    first = re.sub(r"\s", "", cell_text(cells[0])) if cells else ""
    if _TOTAL_ROW.match(first):
        return True
    if row.get("id_number") is not None:
        return False
    return any(isinstance(c, str) and _TOTAL_ROW.match(re.sub(r"\s", "", c)) for c in cells)


def _same_name(a: str, b: str) -> bool:
    # 买买提·艾力 / 买买提•艾力 / 买买提.艾力 are one name written three ways.
    from core.pinyin import clean_name

    return a == b or clean_name(a) == clean_name(b)


def _refuse(report: ImportReport, row: _Row, fieldname: str, reason: str, name: str = "",
            id_text: str = "", flag: bool = False) -> None:
    entry = RefusedRow(row.sheet, row.number, row.column(fieldname) or FIELD_LABELS[fieldname],
                       reason, name or cell_text(row.get("name")),
                       id_text or cell_text(row.get("id_number")))
    (report.flagged if flag else report.refused).append(entry)


def _by_number(conn: sqlite3.Connection, numbers: list[str], select: str) -> list[tuple[Any, ...]]:
    """The rows of `select`, a query joining temp.import_ids i (number) with
    the ledger, for these ID numbers: one join through a temp table, walking
    the ID index in order rather than one lookup per number."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS import_ids(number TEXT PRIMARY KEY) "
                 "WITHOUT ROWID")
    conn.execute("DELETE FROM temp.import_ids")
    conn.executemany("INSERT OR IGNORE INTO temp.import_ids VALUES (?)", [(n,) for n in numbers])
    try:
        return conn.execute(select).fetchall()
    finally:
        conn.execute("DELETE FROM temp.import_ids")


def _lookup(conn: sqlite3.Connection, numbers: list[str]) -> dict[str, tuple[str, str]]:
    """ID number → (person gid, name) for those live in the ledger."""
    return {number: (gid, name) for gid, number, name in _by_number(
        conn, numbers, "SELECT p.gid, p.id_number, p.name FROM temp.import_ids i "
        "JOIN person p ON p.id_number = i.number AND p.deleted = 0")}


class _Paid(NamedTuple):
    sheet: SheetPlan
    number: int          # row number as Excel shows it
    id_number: str
    name: Any            # the cell as read; checked against the ledger's name
    day: str
    amount: float | None


def _paid(work: list[tuple[Any, ...]], k: int) -> _Paid:
    return _Paid._make(work[k])


def _run_paid(ledger: Ledger, plan: ImportPlan, report: ImportReport,
              total: int) -> Iterator[Progress]:
    """The tax bureau's paid list: confirm date and amount of those it names.

    Tuned for a county's list (hundreds of thousands of rows): the rows are
    read and checked on a helper thread (core.ahead), 50,000 at a time, while
    the database matches the chunk before with the ledger (_stage), so the
    two use both cores. Most rows name a live person whose enrollment has no
    confirmed date or amount set since it was made (ticked or not); when the
    ID hint is current (_hint_holds) it says which, and those rows are not
    matched again. Once every row is read, those are confirmed in SQL
    (bulk_write_fresh) in a few ranges of the enrollment table. The rest
    (confirmed before, names that differ, deleted persons, no enrollment for
    the year) wait in temp.paid_rest and then go through bulk_write as usual
    (_confirm_rest).
    """
    conn = ledger.conn
    # Only a transaction this import opens is known to hold no writes when
    # _hint_holds asks: a caller's may have written, unseen by the hint's
    # own connection.
    own_transaction = not conn.in_transaction
    yield Progress(0, total, "检查数据")
    with _big_cache(conn), _import_step(ledger, plan, report):
        txn = report.txn or ""
        # Before this transaction writes anything, temp tables included.
        trusted = own_transaction and _hint_holds(conn, plan.ledger_ids)
        reader = _PaidReader(plan, report, ledger.year, trusted=trusted)
        _paid_tables(conn)
        # Inside the import's transaction: temp-table writes would otherwise
        # each commit on their own.
        staged = 0
        with ahead(reader.chunks()) as chunks:
            for done, chunk, direct in chunks:
                staged += _stage(ledger, chunk, direct)
                yield Progress(done, total, "检查数据")
        # Every row is read. Numbers the hint lacked are looked up in SQL.
        work = reader.work
        found = _find_persons(conn, [_paid(work, k).id_number for k in reader.unhinted])
        params = []
        for k in reader.unhinted:
            w = _paid(work, k)
            pid = found.get(w.id_number)
            if pid is not None:
                params.append((pid, 0, k, w.id_number, _name_text(w.name), w.day,
                               w.amount, encode_scalar(w.amount)))
                continue
            row = _row_of(w)
            try:
                idcard.normalize(w.id_number)
            except ValidationError as exc:
                _refuse(report, row, "id_number", str(exc), id_text=w.id_number)
                continue
            _refuse(report, row, "id_number", "台账中没有此人：请核实是否本辖区人员，"
                    "或先导入花名册", id_text=w.id_number)
        del found
        params.sort()   # by person rowid: the ledger is read in table order
        for start in range(0, len(params), _CHUNK):
            staged += _stage(ledger, params[start:start + _CHUNK])
        del params
        # In enrollment order, a range of the table at a time: each page is
        # written once (measured faster than one statement over them all).
        fresh = 0
        lo, hi = conn.execute("SELECT min(id), max(id) FROM temp.paid_fresh").fetchone()
        if lo is not None:
            step = (hi - lo) // _RANGES + 1
            with _progress_index_aside(conn, staged):
                for n, a in enumerate(range(lo - 1, hi, step)):
                    yield Progress(n, _RANGES, "确认缴费，分段写入")
                    fresh += ledger.bulk_write_fresh(
                        "enrollment", _PAID_SOURCE.format(lo=a, hi=a + step), _PAID_FIELDS,
                        op="import_paid", txn=txn).changed
        conn.execute("DELETE FROM temp.paid_fresh")
        report.updated += fresh
        report.unchanged += staged - fresh
        yield from _confirm_rest(ledger, work, report, txn, total)
        # In the file's order, as the user will look them up.
        order = {sp.sheet.name: n for n, sp in enumerate(plan.sheets)}
        report.refused.sort(key=lambda r: (order.get(r.sheet, 0), r.row))
        report.flagged.sort(key=lambda r: (order.get(r.sheet, 0), r.row))


_CHUNK = 50_000
_RANGES = 8   # of enrollment id, confirmed one after another


def _progress_index_aside(conn: sqlite3.Connection,
                          confirming: int) -> contextlib.AbstractContextManager[None]:
    """Confirming sets `status` in the enrollment_progress index. When the
    list confirms at least half the enrollment table, the index is dropped
    and built again after (index_rebuilt_after): 300,000 of 400,000 rows
    confirmed in 0.8-0.9 s that way (0.2 s of it the sort) against 1.1-1.2 s
    keeping it. By those figures the two ways cost alike near a third of the
    table; half leaves a margin, since the sort grows with the whole table
    and the saving only with the rows confirmed."""
    (rows,) = conn.execute("SELECT coalesce(max(id), 0) FROM enrollment").fetchone()
    if confirming * 2 >= rows:   # max(id): at least the rows, found without a scan
        return index_rebuilt_after(conn, "enrollment_progress")
    return contextlib.nullcontext()


class _PaidReader:
    """A paid list's rows read and checked, in chunks for the database.

    chunks() runs on the helper thread (core.ahead). It alone writes `work`,
    `unhinted` and the report's `read` and `refused` until it ends; the
    importer reads them only after that.

    The rows go a block at a time: a block whose every row is plain (an ID
    number in canonical form, a plain name or none, an ISO date, an amount
    in (0, 100000] or empty, no number seen before) is checked a column at
    a time (_plain_block), which is several times faster than a row at a
    time; any other block goes row by row (_careful_rows), with the general
    parsers for what is not plain. The two give the same rows."""

    def __init__(self, plan: ImportPlan, report: ImportReport, year: int,
                 trusted: bool = False) -> None:
        self.plan = plan
        self.report = report
        hint = plan.ledger_ids
        usable = hint is not None and hint.year == year
        self.ids = hint.packed if usable else {}
        # Whether the hint's verdicts still hold: see _hint_holds.
        self.fresh_bit = _FRESH if usable and trusted else 0
        self.work: list[tuple[Any, ...]] = []   # the fields of _Paid: see _paid()
        self.unhinted: list[int] = []   # indexes into work of numbers the hint lacks
        self.params: list[tuple[Any, ...]] = []   # rows of temp.import_rows (_stage)
        self.direct: list[tuple[Any, ...]] = []   # rows of temp.paid_fresh (_stage)
        self.seen: dict[str, tuple[str, int]] = {}   # ID number → (sheet, row) first read
        self.amounts: dict[float, str] = {}   # amount → its JSON (not 0.0: see _amount_json)
        self.today = dt.date.today().isoformat()

    def chunks(self) -> Iterator[tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """(rows of the file read so far, rows of temp.import_rows, rows of
        temp.paid_fresh).

        The rows of temp.import_rows (person rowid, enrollment rowid or 0, k,
        ID number, name, day, amount, amount's JSON) are sorted by person
        rowid: the ledger is read in table order. Those of temp.paid_fresh
        (enrollment rowid, amount, amount's JSON, day), sorted by enrollment
        rowid, are the rows the trusted hint vouches for (see _stage). Rows
        the hint lacks are left in `unhinted`."""
        done = 0
        for sp in self.plan.usable:
            rows = sp.sheet.rows
            for lo in range(sp.header.row + 1, len(rows), _BLOCK):
                hi = min(lo + _BLOCK, len(rows))
                if not self._plain_block(sp, lo, hi):
                    self._careful_rows(sp, lo, hi)
                done += hi - lo
                if len(self.params) + len(self.direct) >= _CHUNK:
                    yield done, *self._take()
        # The hint has served (and is stale once this import writes): free it
        # before the writes fill the page cache.
        self.ids = {}
        self.plan.ledger_ids = None
        self.seen = {}
        if self.params or self.direct:
            yield done, *self._take()

    def _take(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        params, direct = self.params, self.direct
        self.params, self.direct = [], []
        params.sort()
        direct.sort()
        return params, direct

    def _amount_json(self, amount: float | None) -> str:
        # A list has a few amounts: each encoded once. (Not 0.0: it is one
        # key with -0.0, which encodes apart.)
        amount_json = self.amounts.get(amount) if amount else None   # type: ignore[arg-type]
        if amount_json is None:
            amount_json = encode_scalar(amount)
            if amount:
                self.amounts[amount] = amount_json   # type: ignore[index]
        return amount_json

    def _route(self, ks: Iterable[int], numbers: Iterable[str],
               name_texts: Iterable[str | None], days: Iterable[str],
               amounts: Iterable[float | None], jsons: Iterable[str]) -> None:
        """Rows of `work` (k), read and checked, to where each goes: unhinted,
        straight to paid_fresh (the current hint vouches for it), or to
        import_rows to be matched in SQL."""
        get, fresh_bit = self.ids.get, self.fresh_bit
        unhinted, direct, params = self.unhinted, self.direct, self.params
        for k, number, name_text, day, amount, amount_json in zip(ks, numbers, name_texts,
                                                                  days, amounts, jsons):
            packed = get(number)
            if packed is None:
                unhinted.append(k)
            elif packed & fresh_bit and (name_text is None
                                         or hash(name_text) & _MASK64 == packed >> 64):
                direct.append((packed & _MASK32, amount, amount_json, day))
            else:
                params.append(((packed >> 32) & _MASK30, packed & _MASK32, k, number,
                               name_text, day, amount, amount_json))

    def _plain_block(self, sp: SheetPlan, lo: int, hi: int) -> bool:
        """Rows lo..hi-1 of the sheet checked and added a column at a time,
        if every one of them is plain (see the class); False, with nothing
        done, if any is not."""
        rows, m = sp.sheet.rows[lo:hi], sp.header.mapping
        c_id, c_name = m["id_number"], m.get("name", -1)
        c_date, c_amount = m.get("paid_date", -1), m.get("amount", -1)
        if c_date < 0 or min(map(len, rows)) <= max(c_id, c_name, c_date, c_amount):
            return False   # no date column (today's date is the careful path's), or short rows
        numbers = list(map(itemgetter(c_id), rows))
        # Each 18 characters long: a cell holding a newline cannot pass for two.
        if set(map(type, numbers)) != {str} or set(map(len, numbers)) != {18} \
                or not _CANONICAL_IDS.fullmatch("\n".join(numbers)):
            return False
        if c_id != 0:   # a 合计/小计 row, or one whose first cell is blank text
            firsts = set(map(itemgetter(0), rows))
            if str in set(map(type, firsts)) and any(map(_may_be_total, firsts)):
                return False
        seen = self.seen
        if len(set(numbers)) != len(numbers) or not seen.keys().isdisjoint(numbers):
            return False   # the same person twice: the careful path says which row came first
        if c_name >= 0:
            raw_names = list(map(itemgetter(c_name), rows))
            if not set(map(type, raw_names)) <= {str, type(None)}:
                return False
            given = list(filter(None, raw_names))
            written = "\n".join(given)
            # As many newlines as joins: no name holds one of its own.
            if given and (written.count("\n") != len(given) - 1
                          or not _PLAIN_NAMES.fullmatch(written)):
                return False
            name_texts: list[Any] = [n or None for n in raw_names]
        else:
            raw_names = name_texts = [None] * len(rows)
        days = list(map(itemgetter(c_date), rows))
        if not all(_iso_day(day, self.today) for day in set(days)):
            return False
        if c_amount >= 0:
            raw_amounts = list(map(itemgetter(c_amount), rows))
            # By type first: True is 1 in a set, and bool is not an amount.
            if not set(map(type, raw_amounts)) <= {int, float, str, type(None)}:
                return False
            value_of: dict[Any, float | None] = {}
            for a in set(raw_amounts):
                if a is None or a == "":
                    value_of[a] = None
                elif type(a) is not str and 0 < a <= 100000:
                    value_of[a] = float(a)
                else:
                    return False   # text, or a 0 that may be -0.0 (see _amount_json)
            amounts: list[float | None] = list(map(value_of.__getitem__, raw_amounts))
        else:
            amounts = [None] * len(rows)
        # Every row is plain: add them.
        work = self.work
        k0 = len(work)
        work.extend(zip(itertools.repeat(sp), range(lo + 1, hi + 1), numbers, raw_names,
                        days, amounts))
        seen.update(zip(numbers, zip(itertools.repeat(sp.sheet.name), range(lo + 1, hi + 1))))
        self.report.read += len(rows)
        json_of = {a: self._amount_json(a) for a in set(amounts)}
        jsons = list(map(json_of.__getitem__, amounts))
        if not self._all_direct(numbers, name_texts, days, amounts, jsons):
            self._route(itertools.count(k0), numbers, name_texts, days, amounts, jsons)
        return True

    def _all_direct(self, numbers: list[str], name_texts: list[str | None], days: list[str],
                    amounts: list[float | None], jsons: list[str]) -> bool:
        """_route for a block whose every row goes straight to paid_fresh
        (hinted, fresh, named, the name's hash as the hint's), with each test
        made on the whole block in C; False, with nothing done, otherwise.
        The usual block of a county's list once the hint is current: the
        loop in Python cost about 0.1 s of the reading thread's 0.9 s (400,000
        rows, in the import)."""
        fresh_bit = self.fresh_bit
        # Shortcuts: the tests below would turn such a block down too.
        if not fresh_bit or None in name_texts:
            return False
        packs = list(map(self.ids.get, numbers))
        if None in packs or not all(map(and_, packs, itertools.repeat(fresh_bit))) \
                or list(map(rshift, packs, itertools.repeat(64))) \
                != list(map(and_, map(hash, name_texts), itertools.repeat(_MASK64))):
            return False
        self.direct.extend(zip(map(and_, packs, itertools.repeat(_MASK32)), amounts, jsons,
                               days))
        return True

    def _careful_rows(self, sp: SheetPlan, lo: int, hi: int) -> None:
        """Rows lo..hi-1 of the sheet, one at a time: blank and totals rows
        skipped, the rest checked with the general parsers, each refused with
        its reason or added."""
        report, work, seen, today = self.report, self.work, self.seen, self.today
        # Bound once: this loop may run for every row of a county's list.
        id_match, plain_name = _CANONICAL_ID.match, _PLAIN_NAME.fullmatch
        rows, header, sheet_name = sp.sheet.rows, sp.header, sp.sheet.name
        m = header.mapping
        c_id, c_name = m["id_number"], m.get("name", -1)
        c_date, c_amount = m.get("paid_date", -1), m.get("amount", -1)
        added: list[tuple[Any, ...]] = []   # (k, number, name, day, amount, its JSON)
        for i in range(lo, hi):
            cells = rows[i]
            width = len(cells)
            raw_id = cells[c_id] if c_id < width else None
            first = cells[0] if width else None
            number: str | None = None
            if type(raw_id) is str and len(raw_id) == 18 and id_match(raw_id) \
                    and not _may_be_total(first):
                number = raw_id   # checked in full later if nobody has it
            else:
                row = _Row(sheet_name, i + 1, cells, header)
                if not any(present(c) for c in cells) or _is_total(cells, row):
                    continue  # a blank or totals row, not a person
            report.read += 1
            if number is None:
                number = _checked_id(report, row)
                if number is None:
                    continue
            if number in seen:
                row = _Row(sheet_name, i + 1, cells, header)
                _refuse(report, row, "id_number", _duplicate(seen[number], row),
                        id_text=number)
                continue
            raw_name = cells[c_name] if 0 <= c_name < width else None
            if type(raw_name) is str and plain_name(raw_name):
                name_text = raw_name
            elif raw_name in (None, ""):
                name_text = None
            else:
                # A name that may not be one is refused now, before it can
                # make a later row of the same person look like a duplicate.
                try:
                    parse_name(cell_text(raw_name))
                except ValidationError as exc:
                    _refuse(report, _Row(sheet_name, i + 1, cells, header), "name",
                            str(exc), id_text=number)
                    continue
                name_text = _name_text(raw_name)
            seen[number] = (sheet_name, i + 1)
            # The common case, ISO date text and a number, without the
            # general parsers; anything else goes the careful way below.
            raw_day = cells[c_date] if 0 <= c_date < width else None
            raw_amount = cells[c_amount] if 0 <= c_amount < width else None
            day = raw_day if _iso_day(raw_day, today) else None
            amount: float | None = None
            if raw_amount is not None and raw_amount != "":
                if type(raw_amount) in (int, float) and 0 <= raw_amount <= 100000:
                    amount = float(raw_amount)
                else:
                    day = None
            if day is None:
                row = _Row(sheet_name, i + 1, cells, header)
                try:
                    day = parse_date(excel_date(row.get("paid_date")) or today, "缴费日期")
                    if day > today:
                        raise ValidationError(f"缴费日期 {day} 在今天之后")
                except ValidationError as exc:
                    _refuse(report, row, "paid_date", str(exc), id_text=number)
                    continue
                try:
                    amount = parse_amount(row.get("amount"), "缴费金额")
                except ValidationError as exc:
                    _refuse(report, row, "amount", str(exc), id_text=number)
                    continue
            k = len(work)
            # A plain tuple: _Paid's own constructor costs more, and most
            # rows are never looked at again (see _paid).
            work.append((sp, i + 1, number, raw_name, day, amount))
            added.append((k, number, name_text, day, amount, self._amount_json(amount)))
        if added:
            self._route(*zip(*added))


_BLOCK = 4096   # rows of the file checked together (_PaidReader._plain_block)


def _may_be_total(first: Any) -> bool:
    """A first cell that may start a 合计/小计 row (or is blank text): such a
    row is looked at with _is_total, never taken as plain."""
    return type(first) is str and first.lstrip()[:1] in "合总小共"


def _iso_day(value: Any, today: str) -> bool:
    """Whether a cell is a date as ISO text, no later than `today`: the
    common case, taken without the general date parser."""
    if not (type(value) is str and len(value) == 10 and value[4] == "-" and value[7] == "-"
            and value <= today):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


_CANONICAL_ID = re.compile(r"[0-9]{17}[0-9X]")
_PLAIN_NAME = re.compile(r"[\u4e00-\u9fff·•]{1,30}")
# The same, for a block's cells joined by newlines (no cell holds one: its
# pattern has none).
_CANONICAL_IDS = re.compile(r"(?:[0-9]{17}[0-9X]\n)*[0-9]{17}[0-9X]")
_PLAIN_NAMES = re.compile(r"(?:[\u4e00-\u9fff·•]{1,30}\n)*[\u4e00-\u9fff·•]{1,30}")


def _duplicate(first: tuple[str, int], row: _Row) -> str:
    """The reason for refusing a second row of one ID number."""
    sheet, number = first
    where = f"第{number}行" if sheet == row.sheet else f"工作表“{sheet}”第{number}行"
    return f"与{where}重复（同一身份证号）"


def _checked_id(report: ImportReport, row: _Row) -> str | None:
    """The row's ID number normalised, or None after refusing the row."""
    raw_id = row.get("id_number")
    if isinstance(raw_id, float) and raw_id.is_integer() and raw_id < 1e15:
        raw_id = cell_text(raw_id)  # an old 15-digit number is exact as a float
    if raw_id is None:
        _refuse(report, row, "id_number", "身份证号为空")
        return None
    try:
        return idcard.normalize(raw_id)
    except ValidationError as exc:
        _refuse(report, row, "id_number", str(exc), id_text=cell_text(raw_id))
        return None


def _find_persons(conn: sqlite3.Connection, numbers: list[str]) -> dict[str, int]:
    """ID number → rowid of a person with it (deleted ones too: _confirm_rest
    tells those apart). The join reads only the ID index; the rows themselves
    are read later in rowid order."""
    out: dict[str, int] = {}
    for number, pid in _by_number(
            conn, numbers, "SELECT i.number, p.id FROM temp.import_ids i "
            "JOIN person p INDEXED BY person_id_number ON p.id_number = i.number"):
        out.setdefault(number, pid)
    return out


# A row of {rows} and its person (p) and this year's enrollment (e): the
# enrollment by the rowid LedgerIds gave, else found by gid; either way its
# gid is checked ('+' keeps the planner off the gid index for that check).
# CROSS JOIN keeps this order: the chunk's persons by rowid, rather than a scan
# of every person for each chunk.
_PAID_JOIN = (
    "{rows} x CROSS JOIN person p ON p.id = x.pid "
    "{outer} JOIN enrollment e ON e.id = coalesce(nullif(x.eid, 0), "
    "(SELECT id FROM enrollment WHERE gid = p.gid || '/' || ?1)) "
    "AND +e.gid = p.gid || '/' || ?1")


_PAID_FIELDS = ["confirmed_amount", "confirmed_date"]   # sorted: bulk_write_fresh

# Persons live, named alike, whose enrollment's date and amount were never
# set since it was made (a worker's tick sets other fields). The test is
# one iif() compared with the file's number on purpose: given filters on
# person or enrollment alone, SQLite builds a Bloom filter by scanning all of
# that table for every chunk (a second or more for a county's list).
_FRESH_COLUMNS = "id, confirmed_amount_new, confirmed_amount_json, confirmed_date_new"
_PAID_FRESH = (
    f"INSERT INTO temp.chunk_fresh(seq, {_FRESH_COLUMNS}) "
    "SELECT x.seq, e.id, x.amount, x.amount_json, x.day "
    f"FROM {_PAID_JOIN.format(rows='temp.import_rows', outer='')} "
    "WHERE iif(p.deleted = 0 AND (x.name IS NULL OR x.name = p.name) "
    f"AND {unclocked_sql('enrollment', _PAID_FIELDS, 'e.clk')}, p.id_number, NULL) "
    "= x.number")

# bulk_write_fresh's source: a range of temp.paid_fresh, with what the
# enrollment holds now read again rather than copied there when staged (a
# ticked enrollment's clock map is some 190 bytes; measured 0.3 s faster
# for a county half ticked). The day is ISO date text (checked while
# reading), so quoted it is its own JSON.
_PAID_SOURCE = (
    "(SELECT f.id, e.gid, e.clk, e.confirmed_amount, f.confirmed_amount_new, "
    "f.confirmed_amount_json, e.confirmed_date, f.confirmed_date_new, "
    "'\"' || f.confirmed_date_new || '\"' AS confirmed_date_json "
    "FROM temp.paid_fresh f JOIN enrollment e ON e.id = f.id "
    "WHERE f.id > {lo} AND f.id <= {hi})")

_ROW_COLUMNS = "pid, eid, k, number, name, day, amount, amount_json"


def _paid_tables(conn: sqlite3.Connection) -> None:
    """The temp tables of a paid-list import: import_rows (one chunk of the
    file's rows), chunk_fresh (those of the chunk for paid_fresh),
    paid_fresh (those confirmed in SQL) and paid_rest (the others, until
    every row is read)."""
    for table in ("import_rows", "paid_rest"):
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table}(seq INTEGER PRIMARY KEY, "
                     "pid INTEGER, eid INTEGER, k INTEGER, number TEXT, name TEXT, day TEXT, "
                     "amount REAL, amount_json TEXT)")
        conn.execute(f"DELETE FROM temp.{table}")
    # Keyed by enrollment: it is written a range of the table at a time.
    # Each chunk comes sorted, so its rows go in a pass along the tree: for a
    # county's list that costs about what appending them and indexing the
    # enrollment rowid did (0.25 s), and reading a range then takes 0.29 s
    # rather than 0.35-0.40 s (no index to go through).
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS paid_fresh(id INTEGER PRIMARY KEY, "
                 "confirmed_amount_new, confirmed_amount_json TEXT, confirmed_date_new)")
    # One chunk's rows for paid_fresh, by the import_rows row they came from.
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS chunk_fresh(seq INTEGER PRIMARY KEY, "
                 "id INTEGER, confirmed_amount_new, confirmed_amount_json TEXT, "
                 "confirmed_date_new)")
    for table in ("paid_fresh", "chunk_fresh"):
        conn.execute(f"DELETE FROM temp.{table}")


def _insert_rows(conn: sqlite3.Connection, into: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT INTO `into` VALUES (…), (…), … a few thousand rows at a time.

    Not executemany: that lets go of the GIL for every row, and while the
    reading thread holds it each row would wait for it (core.ahead)."""
    if not rows:
        return
    width = len(rows[0])
    per = max(1, min(2000, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    one = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), per):
        part = rows[start:start + per]
        conn.execute(f"INSERT INTO {into} VALUES " + ", ".join([one] * len(part)),
                     list(itertools.chain.from_iterable(part)))


def _stage(ledger: Ledger, chunk: list[tuple[Any, ...]],
           direct: Sequence[tuple[Any, ...]] = ()) -> int:
    """Rows of temp.import_rows (person rowid, enrollment rowid or 0, k, ID
    number, name, day, amount, amount's JSON), each chunk in person rowid
    order, sorted into two tables: temp.paid_fresh, the rows of live persons,
    named alike, whose enrollment's date and amount were never set since it
    was made (most of them), to be confirmed in SQL once all are read;
    temp.paid_rest, the others, for _confirm_rest. `direct` are rows of
    temp.paid_fresh (enrollment rowid, amount, amount's JSON, day) that a
    current hint vouches for (see _hint_holds): they go there without being
    read again. Returns how many rows this chunk added to paid_fresh. A few
    long statements: this runs while the reading thread checks the next
    chunk (core.ahead)."""
    conn = ledger.conn
    added = 0
    if chunk:
        _insert_rows(conn, f"temp.import_rows({_ROW_COLUMNS})", chunk)
        added = conn.execute(_PAID_FRESH, (ledger.year,)).rowcount
        conn.execute(f"INSERT INTO temp.paid_fresh({_FRESH_COLUMNS}) SELECT {_FRESH_COLUMNS} "
                     "FROM temp.chunk_fresh ORDER BY id")
        conn.execute(f"INSERT INTO temp.paid_rest({_ROW_COLUMNS}) SELECT {_ROW_COLUMNS} "
                     "FROM temp.import_rows WHERE seq NOT IN "
                     "(SELECT seq FROM temp.chunk_fresh) ORDER BY seq")
        conn.execute("DELETE FROM temp.chunk_fresh")
        conn.execute("DELETE FROM temp.import_rows")
    _insert_rows(conn, f"temp.paid_fresh({_FRESH_COLUMNS})", direct)
    return added + len(direct)


# The rows of temp.paid_rest in a range of seq that the paid list may change:
# (k, not this person (deleted, or the number is no longer theirs), ledger
# name if it differs from the file's, enrollment id and gid, clk, confirmed
# date and amount, person gid if no enrollment for the year). Rows whose
# person is live, named alike and already confirmed with the same date and
# amount are left out: they are unchanged.
_PAID_REST = (
    "SELECT x.k, p.deleted != 0 OR p.id_number IS NOT x.number, "
    "CASE WHEN x.name IS NULL OR x.name = p.name THEN NULL ELSE p.name END, "
    "e.id, e.gid, e.clk, e.confirmed_date, e.confirmed_amount, "
    "CASE WHEN e.id IS NULL THEN p.gid END "
    f"FROM {_PAID_JOIN.format(rows='temp.paid_rest', outer='LEFT')} "
    "WHERE x.seq > ?2 AND x.seq <= ?3 AND (p.deleted != 0 OR p.id_number IS NOT x.number "
    "OR e.id IS NULL OR (x.name IS NOT NULL AND x.name != p.name) "
    "OR e.confirmed_date IS NOT x.day OR e.confirmed_amount IS NOT x.amount) "
    "ORDER BY x.seq")


def _confirm_rest(ledger: Ledger, work: list[tuple[Any, ...]], report: ImportReport, txn: str,
                  total: int) -> Iterator[Progress]:
    """The rows bulk_write_fresh could not take, through bulk_write: checked
    against the person as it is now, 50,000 at a time."""
    conn = ledger.conn
    rest = conn.execute("SELECT count(*) FROM temp.paid_rest").fetchone()[0]
    missing: list[tuple[str, dict[str, Any]]] = []
    for start in range(0, rest, _CHUNK):
        if rest > _CHUNK:
            yield Progress(total, total, f"核对其余 {start:,}/{rest:,} 人")
        targets = conn.execute(_PAID_REST, (ledger.year, start, start + _CHUNK)).fetchall()
        report.unchanged += min(rest - start, _CHUNK) - len(targets)
        items = []
        for k, other, lname, eid, egid, clk, day, amount, pgid in targets:
            w = _paid(work, k)
            if other:  # a deleted person, or one whose number changed since prepare
                live = conn.execute("SELECT gid, name FROM person WHERE id_number=? AND "
                                    "deleted=0", (w.id_number,)).fetchone()
                if live is None:
                    _refuse(report, _row_of(w), "id_number", "台账中没有此人：请核实是否本"
                            "辖区人员，或先导入花名册", id_text=w.id_number)
                    continue
                pgid, eid = live[0], None
                lname = live[1] if w.name not in (None, "") and live[1] != w.name else None
            if lname is not None:
                try:
                    name = parse_name(cell_text(w.name))
                except ValidationError as exc:
                    _refuse(report, _row_of(w), "name", str(exc), id_text=w.id_number)
                    continue
                if not _same_name(name, lname):
                    _refuse(report, _row_of(w), "name", f"姓名不一致：台账中为“{lname}”，"
                            "未确认，请核对", name, w.id_number, flag=True)
                    continue
            values = {"confirmed_date": w.day, "confirmed_amount": w.amount}
            if eid is None:  # rare: added before this year was opened, or see above
                missing.append((enrollment_gid(pgid, ledger.year), values))
                continue
            # confirmed_date decides the status alone: no other facts are read.
            items.append(BulkItem(eid, egid, clk, {"confirmed_date": day,
                                                   "confirmed_amount": amount}, values))
        result = ledger.bulk_write("enrollment", items, op="import_paid", txn=txn)
        report.updated += result.changed
        report.unchanged += result.unchanged
    if missing:
        _bulk(ledger, missing, "import_paid", txn, report)
    conn.execute("DELETE FROM temp.paid_rest")


def _name_text(cell: Any) -> str | None:
    """A paid list's name cell as compared with the ledger's name."""
    return cell if type(cell) is str and cell else cell_text(cell) or None


def _row_of(w: _Paid) -> _Row:
    return _Row(w.sheet.sheet.name, w.number, w.sheet.sheet.rows[w.number - 1], w.sheet.header)


def _bulk(ledger: Ledger, updates: list[tuple[str, dict[str, Any]]], op: str, txn: str,
          report: ImportReport) -> None:
    """Enrollment updates; a person without this year's enrollment (rare: added
    before the year was opened) gets one first, then the update."""
    result = ledger.bulk_update("enrollment", updates, op=op, txn=txn)
    if result.missing:
        missing = set(result.missing)
        for egid in missing:
            person, year = egid.rsplit("/", 1)
            ledger._enrollment(person, int(year))
        again = ledger.bulk_update("enrollment", [u for u in updates if u[0] in missing],
                                   op=op, txn=txn)
        result.changed += again.changed
        result.unchanged += again.unchanged
    report.updated += result.changed
    report.unchanged += result.unchanged


def _apply_persons(ledger: Ledger, kind: Kind, work: list[tuple[_Row, str, str]],
                   report: ImportReport, units: UnitIndex, options: ImportOptions,
                   rules: Mapping[str, Any], txn: str) -> Iterator[Progress]:
    conn = ledger.conn
    known = _lookup(conn, [n for _, n, _ in work])
    last_year = {Kind.LAPSED: LastYear.PAID.value,
                 Kind.UNENROLLED: LastYear.UNPAID.value}.get(kind)
    bulk: list[tuple[str, dict[str, Any]]] = []
    households: dict[tuple[str, str], str] = {}
    for i, (row, number, name) in enumerate(work):
        if i % 2000 == 0:
            yield Progress(i, len(work), "写入台账")
        person = known.get(number)
        try:
            if person is None:
                # Check what would refuse the row before anything is added for it.
                subsidy = _subsidy_args(row, options, rules) if kind == Kind.SPECIAL else None
                gid = _add_person(ledger, kind, row, number, name, units, options, households,
                                  report, last_year)
                if gid is None:
                    continue
                report.new += 1
                person = (gid, name)
                if subsidy is not None:
                    ledger.set_subsidy(gid, **subsidy)
                continue
            if name and not _same_name(name, person[1]):
                _refuse(report, row, "name", f"姓名不一致：台账中为“{person[1]}”，"
                        "已按身份证号处理，请核对", name, number, flag=True)
            if last_year is not None:
                bulk.append((enrollment_gid(person[0], ledger.year),
                             {"last_year_status": last_year}))
                continue
            # Whether the row changed anything: the change rows its calls wrote
            # (not a count over the whole change log, once per row).
            with ledger.collect() as results:
                if kind == Kind.SPECIAL:
                    _subsidy(ledger, row, person[0], options, rules)
                elif kind == Kind.ROSTER:
                    _roster_update(ledger, row, person[0])
            if any(r.changes for r in results):
                report.updated += 1
            else:
                report.unchanged += 1
        except CbtError as exc:
            _refuse(report, row, _field_of(exc), str(exc), name, number)
    if bulk:
        _bulk(ledger, bulk, f"import_{kind.value}", txn, report)


def _field_of(exc: CbtError) -> str:
    mapping = {"phone": "phone", "电话": "phone", "与户主关系": "relation", "资助类别": "category",
               "资助金额": "subsidy_amount", "代缴部门": "department"}
    return mapping.get(exc.field or "", "id_number")


def _add_person(ledger: Ledger, kind: Kind, row: _Row, number: str, name: str,
                units: UnitIndex, options: ImportOptions, households: dict[tuple[str, str], str],
                report: ImportReport, last_year: str | None) -> str | None:
    place = _place_text(row.cells, row.header)
    group = units.find(place, options) if place else options.default_group
    if group is None:
        column = "village" if row.header.mapping.get("village") is not None else "id_number"
        reason = (f"村组“{place}”未匹配到台账中的组，请在导入时指定对应的组" if place else
                  "台账中没有此人，且名单中没有村、组，无法确定加到哪一户；请在导入时指定默认的组")
        _refuse(report, row, column, reason, name, number)
        return None
    hh_number = cell_text(row.get("household_number"))
    key = (group, hh_number or f"#{number}")
    hgid = households.get(key)
    if hgid is None and hh_number:
        existing = ledger.conn.execute(
            "SELECT gid FROM household WHERE unit_code=? AND number=? AND deleted=0",
            (group, hh_number)).fetchone()
        hgid = existing[0] if existing else None
    if hgid is None:
        hgid = ledger.add_household(group, number=hh_number or None,
                                    address=cell_text(row.get("address")) or None,
                                    phone=_phone(row))
    households[key] = hgid
    relation = _relation(row)
    if relation is None and cell_text(row.get("head_name")) == name:
        relation = Relation.HEAD.value
    if relation is None and not hh_number:
        relation = Relation.HEAD.value  # a household of their own
    return ledger.add_person(hgid, name=name, id_number=number, relation=relation,
                             phone=_phone(row), last_year_status=last_year)


def _phone(row: _Row) -> str | None:
    text = cell_text(row.get("phone"))
    if not text:
        return None
    try:
        return parse_phone(text)
    except ValidationError:
        return None  # a bad phone does not stop a person being imported


def _relation(row: _Row) -> str | None:
    text = cell_text(row.get("relation"))
    if not text:
        return None
    aliases = {"本人": "head", "户主本人": "head", "妻": "spouse", "夫": "spouse",
               "妻子": "spouse", "丈夫": "spouse", "长子": "son", "次子": "son", "儿子": "son",
               "长女": "daughter", "次女": "daughter", "女儿": "daughter", "孙子": "grandchild",
               "孙女": "grandchild", "外孙子": "grandchild", "外孙女": "grandchild",
               "父亲": "parent", "母亲": "parent", "儿媳": "child_in_law", "女婿": "child_in_law",
               "兄": "sibling", "弟": "sibling", "姐": "sibling", "妹": "sibling"}
    if text in aliases:
        return aliases[text]
    try:
        return Relation.parse(text, "与户主关系").value
    except ValidationError:
        return Relation.OTHER.value


def _category(text: str) -> str | None:
    if not text:
        return None
    for member in SubsidyCategory:
        if text in (member.value, member.label) or member.label.startswith(text) \
                or text.startswith(member.label[:2]):
            return member.value
    if "特困" in text or "五保" in text:
        return SubsidyCategory.TEKUN.value
    if "低保" in text:
        return SubsidyCategory.DIBAO.value
    if "脱贫" in text or "建档立卡" in text:
        return SubsidyCategory.TUOPIN.value
    if "监测" in text:
        return SubsidyCategory.MONITORED.value
    if "残" in text:
        return SubsidyCategory.DISABLED.value
    if "孤儿" in text or "无人抚养" in text:
        return SubsidyCategory.ORPHAN.value
    return None


def _subsidy(ledger: Ledger, row: _Row, gid: str, options: ImportOptions,
             rules: Mapping[str, Any]) -> None:
    args = _subsidy_args(row, options, rules)
    # A department's list says who is entitled, not whether the money came:
    # keep an arrival already recorded.
    current = ledger.conn.execute(
        "SELECT subsidy_arrived FROM enrollment WHERE gid=?",
        (enrollment_gid(gid, ledger.year),)).fetchone()
    if current and current[0]:
        args["arrived"] = current[0]
    ledger.set_subsidy(gid, **args)


def _subsidy_args(row: _Row, options: ImportOptions,
                  rules: Mapping[str, Any]) -> dict[str, Any]:
    text = cell_text(row.get("category")) or (options.category or "")
    category = _category(text)
    if category is None:
        raise ValidationError(f"人员类别“{text}”无法识别" if text else
                              "缺少人员类别：请在名单中提供“人员类别”列，或导入时指定类别",
                              field="资助类别")
    rule = rules.get(category, {})
    amount = parse_amount(row.get("subsidy_amount"), "资助金额")
    kind = rule.get("kind") or (SubsidyKind.FIXED.value if amount else SubsidyKind.FULL.value)
    if amount is None:
        amount = rule.get("amount")
    if kind == SubsidyKind.FIXED.value and amount is None:
        raise ValidationError("定额资助缺少资助金额", field="资助金额")
    dept_text = cell_text(row.get("department")) or options.department or rule.get("department")
    dept = None
    if dept_text:
        dept = next((d.value for d in Department if dept_text in (d.value, d.label)
                     or d.label in dept_text), Department.OTHER.value)
    return {"category": category, "kind": kind, "amount": amount, "department": dept}


def _roster_update(ledger: Ledger, row: _Row, gid: str) -> None:
    fields: dict[str, Any] = {}
    phone = _phone(row)
    if phone:
        fields["phone"] = phone
    relation = _relation(row)
    if relation:
        fields["relation"] = relation
    name = cell_text(row.get("name"))
    if name:
        fields["name"] = name
    if fields:
        ledger.edit_person(gid, **fields)


# ---------------------------------------------------------------------------
# Reports out


def shown_id(text: str, full: bool = False) -> str:
    """An ID number from a list as the app shows it: masked (DESIGN §9: lists
    and the files people pass on) unless the user asks for it in full. Text
    with too few digits to tell anyone apart, such as 4.50321e+17 (Excel
    dropped the digits), is shown as written: it is what the user must fix."""
    if full or sum(ch.isdigit() for ch in text) < 10:
        return text
    return idcard.mask(text)


def report_rows(report: ImportReport, full_id: bool = False) -> list[list[str]]:
    """The report's table (header row first): skipped sheets, refused and
    flagged rows, ID numbers masked unless `full_id`."""
    rows = [["类别", "工作表", "行号", "列", "姓名", "身份证号", "原因"]]
    for sheet in report.skipped_sheets:
        rows.append(["跳过", sheet, "", "", "", "", "没有找到表头（身份证号、姓名等列），整张工作表未导入"])
    for label, entries in (("拒收", report.refused), ("需核对", report.flagged)):
        for r in entries:
            rows.append([label, r.sheet, str(r.row), r.column, r.name,
                         shown_id(r.id_text, full_id), r.reason])
    return rows


__all__ = ["Kind", "ImportOptions", "ImportPlan", "ImportReport", "RefusedRow", "prepare",
           "run_import", "report_rows", "shown_id", "derive_status"]
