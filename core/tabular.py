"""Reading the lists people send: .xlsx, .xls and .csv, as they are.

Workbooks are read with python-calamine (Rust; reads .xlsx and the old .xls
that county systems still export, about ten times faster than openpyxl).
CSV files come in UTF-8 (with or without BOM) or GBK/GB18030.

A sheet is a grid of cells; merged cells are filled with their top-left
value (a village name merged down the rows of its households counts for each
row). Finding the header row and matching its columns is done here too: the
header is the row, among the first 20, whose cells best match the known
synonyms of the fields a kind of list needs.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import gcpause
from core.errors import ValidationError

HEADER_SCAN_ROWS = 20

# Field → header synonyms, as they appear in the tax bureau's, civil affairs'
# and villages' spreadsheets. Matching ignores spaces, brackets and case.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "id_number": ("身份证号", "身份证号码", "公民身份号码", "证件号码", "证件号", "身份证",
                  "社会保障号码", "社会保障号", "身份证件号码", "参保人身份证号", "缴费人证件号码"),
    "name": ("姓名", "参保人姓名", "缴费人姓名", "人员姓名", "名字", "参保人", "缴费人"),
    "township": ("乡镇", "乡镇街道", "镇", "乡", "街道", "所属乡镇", "乡镇(街道)"),
    "village": ("村", "村社区", "村(社区)", "村委会", "社区", "行政村", "所属村", "村居",
                "村名", "所在村", "村(居)"),
    "group": ("组", "村民小组", "小组", "网格", "组别", "所在组", "村组"),
    "household_number": ("户号", "户编号", "户籍编号", "家庭编号"),
    "head_name": ("户主姓名", "户主"),
    "relation": ("与户主关系", "关系", "家庭关系"),
    "phone": ("联系电话", "电话", "手机号", "手机号码", "联系方式", "手机"),
    "address": ("住址", "地址", "家庭住址", "户籍地址", "居住地址"),
    "paid_date": ("缴费日期", "缴费时间", "入库日期", "征收日期", "缴款日期", "开票日期", "申报日期"),
    "amount": ("缴费金额", "金额", "实缴金额", "个人缴费金额", "应缴金额", "缴费额"),
    "category": ("人员类别", "资助类别", "困难类别", "人群类别", "身份类别", "特殊人群类别",
                 "类别", "人员类型"),
    "subsidy_amount": ("资助金额", "代缴金额", "资助标准", "补助金额"),
    "department": ("资助部门", "代缴部门", "认定部门"),
    "last_year": ("上年参保状态", "上年是否参保", "2026年参保状态", "上年度参保"),
    "note": ("备注", "说明"),
}

FIELD_LABELS = {
    "id_number": "身份证号", "name": "姓名", "township": "乡镇", "village": "村(社区)",
    "group": "组", "household_number": "户号", "head_name": "户主姓名",
    "relation": "与户主关系", "phone": "联系电话", "address": "住址", "paid_date": "缴费日期",
    "amount": "缴费金额", "category": "人员类别", "subsidy_amount": "资助金额",
    "department": "资助部门", "last_year": "上年参保状态", "note": "备注",
}

_NORMALIZE = re.compile(r"[\s\u3000()（）\[\]【】:：*＊]|必填|选填|可选|必录")


def header_key(text: Any) -> str:
    return _NORMALIZE.sub("", str(text or "")).lower()


_SYNONYM_INDEX = {header_key(s): f for f, names in SYNONYMS.items() for s in names}


def match_header(text: Any) -> str | None:
    """The field a header cell names, or None. Exact synonym first, then a
    synonym contained in the header (公民身份号码(必填) → id_number)."""
    key = header_key(text)
    if not key:
        return None
    if key in _SYNONYM_INDEX:
        return _SYNONYM_INDEX[key]
    best: tuple[int, str] | None = None
    for synonym, fieldname in _SYNONYM_INDEX.items():
        if len(synonym) >= 2 and synonym in key:
            if best is None or len(synonym) > best[0]:
                best = (len(synonym), fieldname)
    return best[1] if best else None


@dataclass
class Sheet:
    name: str
    rows: list[list[Any]]           # cell values, merged cells filled

    @property
    def width(self) -> int:
        return max((len(r) for r in self.rows), default=0)


@dataclass
class Header:
    row: int                         # 0-based index of the header row in the sheet
    titles: list[str]                # the header cells as written
    mapping: dict[str, int] = field(default_factory=dict)   # field → column index

    def describe(self) -> str:
        return "，".join(f"{FIELD_LABELS.get(f, f)}=第{c + 1}列“{self.titles[c]}”"
                        for f, c in sorted(self.mapping.items(), key=lambda kv: kv[1]))


def read_sheets(path: str | Path) -> list[Sheet]:
    """Every non-empty sheet of a workbook or CSV file. Raises ValidationError
    with a Chinese message for files that cannot be read."""
    path = Path(path)
    if not path.exists():
        raise ValidationError(f"文件不存在：{path}")
    suffix = path.suffix.lower()
    if suffix == ".csv" or suffix == ".txt":
        return [Sheet(path.stem, _read_csv(path.read_bytes()))]
    if suffix not in (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"):
        raise ValidationError(f"不支持的文件类型“{suffix}”：请用 .xlsx、.xls 或 .csv")
    import python_calamine as pc

    try:
        book = pc.CalamineWorkbook.from_path(str(path))
    except pc.PasswordError:
        raise ValidationError(f"{path.name} 设有打开密码，请先在Excel中去掉密码再导入") from None
    except Exception as exc:  # noqa: BLE001 - calamine raises several kinds for a bad file
        raise ValidationError(f"{path.name} 无法读取，文件可能已损坏或不是Excel文件（{exc}）") from None
    sheets = []
    try:
        with gcpause.paused():
            for name in book.sheet_names:
                sheet = book.get_sheet_by_name(name)
                rows = sheet.to_python(skip_empty_area=False)
                if rows and type(rows[0]) is not list:  # older python-calamine: tuples
                    rows = [list(r) for r in rows]
                _fill_merged(rows, getattr(sheet, "merged_cell_ranges", None) or [])
                if any(any(present(c) for c in r) for r in rows):
                    sheets.append(Sheet(name, rows))
    finally:
        book.close()
    if not sheets:
        raise ValidationError(f"{path.name} 里没有数据")
    return sheets


def _fill_merged(rows: list[list[Any]], ranges: Sequence[Any]) -> None:
    for (r0, c0), (r1, c1) in ranges:
        if r0 >= len(rows) or c0 >= len(rows[r0]):
            continue
        value = rows[r0][c0]
        for r in range(r0, min(r1, len(rows) - 1) + 1):
            row = rows[r]
            for c in range(c0, min(c1, len(row) - 1) + 1):
                if not present(row[c]):
                    row[c] = value


def _read_csv(data: bytes) -> list[list[Any]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ValidationError("CSV文件编码无法识别，请另存为UTF-8或GBK编码")
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;，")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    return [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)]


def present(value: Any) -> bool:
    return value is not None and value != "" and not (isinstance(value, str) and not value.strip())


def find_header(sheet: Sheet, required: Sequence[str] = ("id_number",),
                saved: Mapping[str, str] | None = None) -> Header | None:
    """The header row among the first rows: the one matching the most fields,
    which must include the required ones. `saved` is a remembered mapping
    (field → header text) for this source, tried first."""
    best: Header | None = None
    for i, row in enumerate(sheet.rows[:HEADER_SCAN_ROWS]):
        titles = [str(c).strip() if present(c) else "" for c in row]
        mapping: dict[str, int] = {}
        if saved:
            by_title = {header_key(t): c for c, t in enumerate(titles) if t}
            for fieldname, title in saved.items():
                c = by_title.get(header_key(title))
                if c is not None:
                    mapping[fieldname] = c
        # Exact synonyms first, then headers that merely contain one: '身份证号'
        # must win over '身份证件类型' or '户主身份证号' to its left.
        for exact in (True, False):
            for c, title in enumerate(titles):
                if not title or (header_key(title) in _SYNONYM_INDEX) != exact:
                    continue
                f = match_header(title)
                if f and f not in mapping and c not in mapping.values():
                    mapping[f] = c
        if not all(r in mapping for r in required):
            continue
        if best is None or len(mapping) > len(best.mapping):
            best = Header(i, titles, mapping)
    return best


def cell_text(value: Any) -> str:
    """A cell as text: 12.0 → '12', dates ISO, None → ''."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def excel_date(value: Any) -> Any:
    """An Excel serial day number (45900 → 2025-09-01) as a date; other values
    unchanged. Only plausible serials (1955–2119) are converted."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 20000 <= value <= 80000:
        return dt.date(1899, 12, 30) + dt.timedelta(days=int(value))
    if isinstance(value, str) and re.fullmatch(r"\d{5}(\.0+)?", value.strip()):
        n = int(float(value))
        if 20000 <= n <= 80000:
            return dt.date(1899, 12, 30) + dt.timedelta(days=n)
    return value


def iter_data(sheet: Sheet, header: Header) -> Iterator[tuple[int, list[Any]]]:
    """(1-based row number as Excel shows it, cells) of each data row after the
    header; blank rows skipped."""
    for i in range(header.row + 1, len(sheet.rows)):
        row = sheet.rows[i]
        if any(present(c) for c in row):
            yield i + 1, row
