"""core/tabular.py: reading the lists people send (.xlsx, .csv) and finding their headers.

Every workbook is generated here with openpyxl or the csv module; every ID
number is synthetic (core.idcard.make on the made-up address codes 99990x).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from core import idcard
from core.errors import ValidationError
from core.tabular import (
    HEADER_SCAN_ROWS, SYNONYMS, Sheet, cell_text, excel_date, find_header, header_key,
    iter_data, match_header, read_sheets,
)
from tests.core.factories import make_id

# When an example fails, hypothesis's pytest plugin imports libcst to suggest a
# patch, and libcst trips a DeprecationWarning that filterwarnings=error turns
# into an INTERNALERROR hiding the real failure (as in test_convergence.py).
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")

SETTINGS = settings(max_examples=200, deadline=None, database=None)

ALL_SYNONYMS = [(f, s) for f, names in SYNONYMS.items() for s in names]
# Single characters are deliberately not matched inside longer headers (村 is in
# 村民小组, 组 in 组别…); they are only matched when the header is exactly them.
MULTI_CHAR = [(f, s) for f, s in ALL_SYNONYMS if len(header_key(s)) >= 2]
SINGLE_CHAR = [(f, s) for f, s in ALL_SYNONYMS if len(header_key(s)) < 2]

# Headers that appear next to the ID column in real lists and are not it.
UNRELATED = ("序号", "备注", "说明", "性别", "民族", "出生日期", "年龄", "签字", "签名", "险种",
             "缴费档次", "所属期起", "所属期止", "证件类型", "票证号码", "银行账号", "籍贯",
             "文化程度", "户籍性质", "是否参保", "编号", "经办人", "审核意见", "税款所属机关")


def xlsx(path: Path, sheets: dict[str, list[list]], merges: dict[str, list[str]] | None = None
         ) -> Path:
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for r in rows:
            sheet.append(r)
        for rng in (merges or {}).get(name, []):
            sheet.merge_cells(rng)
    book.save(path)
    return path


def csv_bytes(rows: list[list], encoding: str, delimiter: str = ",") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter).writerows(rows)
    return buf.getvalue().encode(encoding)


# ---------------------------------------------------------------------------
# Header matching


@pytest.mark.parametrize("fieldname,synonym", ALL_SYNONYMS)
def test_every_synonym_matches_its_field(fieldname, synonym):
    assert match_header(synonym) == fieldname


@pytest.mark.parametrize("title", ["证件号码", "身份证号", "公民身份号码", "身份证号码"])
def test_the_usual_id_headers(title):
    assert match_header(title) == "id_number"
    assert match_header(f"{title}(必填)") == "id_number"
    assert match_header(f" 【{title}】 ") == "id_number"


def test_empty_and_none_headers_match_nothing():
    assert match_header(None) is None
    assert match_header("") is None
    assert match_header("  \t") is None
    assert match_header("（）") is None


_SPACE = st.sampled_from([" ", "  ", "\t", "\u3000", "\n", "\r\n"])
_PREFIX = st.lists(st.sampled_from(["*", "＊", " ", "\t", "\u3000"]), max_size=3).map("".join)
_SUFFIX = st.sampled_from(["", "(必填)", "（必填）", "(选填)", "（必录）", "*", "＊", ":", "：",
                           "(18位)", "（请填写）", " (必填)", "\n(必填)"])
_BRACKETS = st.sampled_from([("", ""), ("(", ")"), ("（", "）"), ("【", "】"), ("[", "]")])


@st.composite
def decorated(draw, text: str) -> str:
    """The header as people type it: spaces inside and around, brackets, a marker."""
    chars = list(text)
    out = ""
    for ch in chars:
        out += ch
        if draw(st.integers(0, 4)) == 0:
            out += draw(_SPACE)
    open_, close = draw(_BRACKETS)
    before = draw(st.lists(_SPACE, max_size=2).map("".join))
    after = draw(st.lists(_SPACE, max_size=2).map("".join))
    return f"{draw(_PREFIX)}{before}{open_}{out}{close}{after}{draw(_SUFFIX)}"


@SETTINGS
@given(data=st.data(), pair=st.sampled_from(MULTI_CHAR))
def test_property_decorated_synonyms_are_recognised(data, pair):
    fieldname, synonym = pair
    title = data.draw(decorated(synonym))
    assert match_header(title) == fieldname, title


@SETTINGS
@given(data=st.data(), pair=st.sampled_from(SINGLE_CHAR))
def test_property_single_character_synonyms_with_brackets_and_spaces(data, pair):
    fieldname, synonym = pair
    open_, close = data.draw(_BRACKETS)
    title = f"{data.draw(_PREFIX)}{open_}{data.draw(_SPACE)}{synonym}{close}{data.draw(_SPACE)}"
    assert match_header(title) == fieldname, title


@pytest.mark.parametrize("fieldname,synonym", SINGLE_CHAR)
def test_single_character_synonym_with_required_marker(fieldname, synonym):
    assert match_header(f"{synonym}(必填)") == fieldname


@SETTINGS
@given(data=st.data(), title=st.sampled_from(UNRELATED))
def test_property_unrelated_headers_never_map_to_id_number(data, title):
    header = data.draw(decorated(title))
    assert match_header(header) != "id_number", header


_ID_CHARS = set("".join(SYNONYMS["id_number"]))
_OTHER_CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5).filter(
    lambda c: c not in _ID_CHARS)


@SETTINGS
@given(text=st.text(alphabet=st.one_of(_OTHER_CJK, st.sampled_from(" ()（）*0123456789")),
                    max_size=12))
def test_property_random_headers_without_id_words_never_map_to_id_number(text):
    assert match_header(text) != "id_number"


def test_unrelated_headers_exactly():
    assert match_header("序号") is None
    assert match_header("备注") == "note"
    assert match_header("证件类型") is None
    assert match_header("出生日期") is None


@pytest.mark.parametrize("titles,expected", [
    (["序号", "缴费人姓名", "身份证件类型", "身份证件号码", "缴费金额"], 3),
    (["户号", "户主姓名", "户主身份证号", "姓名", "与户主关系", "身份证号"], 5),
])
def test_exact_id_header_wins_over_one_that_only_contains_it(titles, expected):
    """'身份证件类型' (document type) or '户主身份证号' (the head's ID) to the left of the
    real ID column must not take id_number from it (found as a bug in d9bc510)."""
    header = find_header(Sheet("s", [titles]), ("id_number",))
    assert header is not None
    assert header.mapping["id_number"] == expected


# ---------------------------------------------------------------------------
# ID normalisation (property)

_FULL = {str(d): chr(ord("０") + d) for d in range(10)} | {"X": "Ｘ"}


@st.composite
def messy(draw) -> tuple[str, str]:
    address = draw(st.sampled_from([f"99990{i}" for i in range(10)]))
    born = draw(st.dates(dt.date(1900, 1, 1), dt.date.today()))
    number = idcard.make(address, born, draw(st.integers(0, 999)))
    out = draw(st.sampled_from(["", " ", "\t", "\u3000"]))
    for ch in number:
        how = draw(st.integers(0, 3))
        if how == 1:
            ch = _FULL[ch]
        elif how == 2 and ch == "X":
            ch = draw(st.sampled_from(["x", "ｘ"]))
        out += ch
        if draw(st.integers(0, 4)) == 0:
            out += draw(st.sampled_from([" ", "  ", "\t", " \t", "\u3000"]))
    return number, out


@SETTINGS
@given(pair=messy())
def test_property_normalize_recovers_the_canonical_id(pair):
    number, text = pair
    assert idcard.normalize(text) == number


def test_normalize_handles_lowercase_x_and_fullwidth_explicitly():
    number = make_id(7, check="X")
    assert number.endswith("X")
    assert idcard.normalize(number.lower()) == number
    assert idcard.normalize("".join(_FULL[c] for c in number)) == number
    assert idcard.normalize(f" {number[:6]}\t{number[6:14]} {number[14:]}\t") == number


@pytest.mark.parametrize("raw", ["4.50321E+17", "4.50321e+17", "9.999011990010112E+17"])
def test_normalize_refuses_excel_scientific_notation(raw):
    with pytest.raises(ValidationError) as err:
        idcard.normalize(raw)
    assert str(err.value) == "身份证号被Excel存成了数字，后几位已丢失，请将该列设为文本后重新导出"


# ---------------------------------------------------------------------------
# Cells


def test_cell_text():
    assert cell_text(None) == ""
    assert cell_text(12.0) == "12"
    assert cell_text(" 上坪村 ") == "上坪村"
    assert cell_text(dt.date(2026, 9, 1)) == "2026-09-01"
    assert cell_text(dt.datetime(2026, 9, 1)) == "2026-09-01"
    assert cell_text(dt.datetime(2026, 9, 1, 10, 30)) == "2026-09-01 10:30:00"
    # A number too large to be exact is not turned into digits that look right.
    assert re.fullmatch(r"4\.50321e\+17", cell_text(4.50321e17))


def test_excel_date():
    serial = (dt.date(2026, 9, 1) - dt.date(1899, 12, 30)).days
    assert excel_date(serial) == dt.date(2026, 9, 1)
    assert excel_date(float(serial) + 0.4375) == dt.date(2026, 9, 1)  # with a time of day
    assert excel_date(str(serial)) == dt.date(2026, 9, 1)
    assert excel_date(400) == 400                  # an amount, not a date
    assert excel_date("2026-09-01") == "2026-09-01"
    assert excel_date(True) is True


# ---------------------------------------------------------------------------
# Reading workbooks


def test_merged_title_row_and_village_column_merged_down(tmp_path):
    ids = [make_id(n) for n in range(1, 6)]
    rows = [
        ["青山镇2027年度城乡居民医保断保人员名单", None, None, None],
        ["村", "组", "姓名", "身份证号"],
        ["上坪村", "一组", "王伟", ids[0]],
        [None, None, "李芳", ids[1]],
        [None, "二组", "张娜", ids[2]],
        ["下坪村", "一组", "刘敏", ids[3]],
        [None, None, "陈静", ids[4]],
    ]
    path = xlsx(tmp_path / "merged.xlsx", {"名单": rows},
                {"名单": ["A1:D1", "A3:A5", "B3:B4", "A6:A7", "B6:B7"]})
    (sheet,) = read_sheets(path)
    header = find_header(sheet, ("id_number", "name"))
    assert header is not None and header.row == 1
    assert header.mapping == {"village": 0, "group": 1, "name": 2, "id_number": 3}
    data = [(n, cell_text(r[0]), cell_text(r[1]), r[2]) for n, r in iter_data(sheet, header)]
    assert data == [
        (3, "上坪村", "一组", "王伟"), (4, "上坪村", "一组", "李芳"), (5, "上坪村", "二组", "张娜"),
        (6, "下坪村", "一组", "刘敏"), (7, "下坪村", "一组", "陈静"),
    ]


def test_merge_does_not_overwrite_values_and_starts_at_the_right_cell(tmp_path):
    """A sheet whose data starts at C3: merged ranges are placed by absolute position."""
    book = Workbook()
    s = book.active
    s["C3"], s["D3"] = "村", "姓名"
    s["C4"] = "上坪村"
    s["D4"], s["D5"], s["D6"] = "王伟", "李芳", "张娜"
    s.merge_cells("C4:C6")
    book.save(tmp_path / "offset.xlsx")
    (sheet,) = read_sheets(tmp_path / "offset.xlsx")
    assert [r[2:4] for r in sheet.rows[3:6]] == [["上坪村", "王伟"], ["上坪村", "李芳"],
                                                ["上坪村", "张娜"]]
    assert all(not any(r[:2]) for r in sheet.rows)


def _with_title_rows(n_above: int) -> list[list]:
    """`n_above` rows (a title, who filled it in, blank rows) above the header."""
    rows: list[list] = [["2027年度未参保人员名单"]]
    rows += [["填报单位：青山镇"] if i == 0 else [None] for i in range(n_above - 1)]
    rows.append(["序号", "姓名", "公民身份号码", "联系电话"])
    rows.append([1, "王伟", make_id(1), "13900000001"])
    return rows


@pytest.mark.parametrize("header_line", [2, 5, HEADER_SCAN_ROWS])
def test_header_found_below_title_rows(tmp_path, header_line):
    rows = _with_title_rows(header_line - 1)
    assert rows[header_line - 1][0] == "序号"
    path = xlsx(tmp_path / "t.xlsx", {"名单": rows})
    (sheet,) = read_sheets(path)
    header = find_header(sheet, ("id_number", "name"))
    assert header is not None
    assert header.row == header_line - 1
    assert header.mapping == {"name": 1, "id_number": 2, "phone": 3}
    assert [n for n, _ in iter_data(sheet, header)] == [header_line + 1]


def test_header_below_the_first_20_rows_is_not_found(tmp_path):
    rows = _with_title_rows(HEADER_SCAN_ROWS)
    assert rows[HEADER_SCAN_ROWS][0] == "序号"   # Excel row 21
    path = xlsx(tmp_path / "t.xlsx", {"名单": rows})
    (sheet,) = read_sheets(path)
    assert find_header(sheet, ("id_number", "name")) is None


@pytest.mark.parametrize("title", ["证件号码", "身份证号", "公民身份号码", "身份证号码"])
def test_header_synonyms_for_the_id_column(title):
    sheet = Sheet("s", [["名单"], ["序号", "姓名", "性别", title, "备注"]])
    header = find_header(sheet, ("id_number", "name"))
    assert header is not None and header.row == 1
    assert header.mapping["id_number"] == 3
    assert header.mapping["name"] == 1
    assert "第4列“" + title + "”" in header.describe()


def test_header_requires_the_required_fields():
    sheet = Sheet("s", [["姓名", "联系电话"], ["王伟", "13900000001"]])
    assert find_header(sheet, ("id_number",)) is None
    assert find_header(sheet, ("name",)) is not None


def test_header_prefers_the_row_that_matches_most_fields():
    """A note row naming the ID column above the real header is not the header."""
    sheet = Sheet("s", [["说明：身份证号请填写18位"], ["姓名", "身份证号", "联系电话", "住址"]])
    header = find_header(sheet, ("id_number",))
    assert header.row == 1
    assert header.mapping == {"name": 0, "id_number": 1, "phone": 2, "address": 3}


def test_several_sheets_each_with_its_own_header(tmp_path):
    path = xlsx(tmp_path / "multi.xlsx", {
        "上坪村": [["上坪村名单"], ["姓名", "身份证号"], ["王伟", make_id(1)]],
        "下坪村": [["身份证号码", "户主", "姓名"], [make_id(2), "刘敏", "刘敏"]],
        "填表说明": [["本表由村委会填写"], ["请核对后上报"]],
        "空表": [],
    })
    sheets = read_sheets(path)
    assert [s.name for s in sheets] == ["上坪村", "下坪村", "填表说明"]  # the empty one is left out
    headers = [find_header(s, ("id_number", "name")) for s in sheets]
    assert headers[0].row == 1 and headers[0].mapping == {"name": 0, "id_number": 1}
    assert headers[1].row == 0 and headers[1].mapping == {"id_number": 0, "head_name": 1,
                                                          "name": 2}
    assert headers[2] is None


def test_blank_rows_are_not_data(tmp_path):
    path = xlsx(tmp_path / "blank.xlsx", {"s": [
        ["姓名", "身份证号"], ["王伟", make_id(1)], [None, None], ["", "  "], ["李芳", make_id(2)]]})
    (sheet,) = read_sheets(path)
    header = find_header(sheet, ("id_number",))
    assert [n for n, _ in iter_data(sheet, header)] == [2, 5]


def test_real_date_cells_and_numbers_come_back_typed(tmp_path):
    number = make_id(3)
    path = xlsx(tmp_path / "types.xlsx", {"s": [
        ["身份证号", "缴费日期", "金额", "数字身份证"],
        [number, dt.date(2026, 9, 1), 400, float(number)],
        [number, dt.datetime(2026, 9, 2, 10, 30), "400元", 4.50321e17],
    ]})
    (sheet,) = read_sheets(path)
    assert sheet.rows[1][0] == number
    assert excel_date(sheet.rows[1][1]) == dt.date(2026, 9, 1)
    assert cell_text(sheet.rows[1][2]) == "400"
    assert cell_text(sheet.rows[2][1]) == "2026-09-02 10:30:00"
    # An ID typed into a number cell is a float: its last digits are already gone.
    assert isinstance(sheet.rows[1][3], float)
    with pytest.raises(ValidationError, match="被Excel存成了数字"):
        idcard.normalize(cell_text(sheet.rows[1][3]))
    with pytest.raises(ValidationError, match="被Excel存成了数字"):
        idcard.normalize(cell_text(sheet.rows[2][3]))


# ---------------------------------------------------------------------------
# CSV

CSV_ROWS = [["序号", "姓名", "身份证号", "住址"],
            ["1", "王伟", make_id(1), "上坪村一组3号"],
            ["2", "阿依古丽·买买提", make_id(2, check="X").lower(), "上坪村，二组"]]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gbk", "gb18030"])
def test_csv_encodings(tmp_path, encoding):
    path = tmp_path / "名单.csv"
    path.write_bytes(csv_bytes(CSV_ROWS, encoding))
    if encoding == "utf-8-sig":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    (sheet,) = read_sheets(path)
    assert sheet.name == "名单"
    assert sheet.rows == CSV_ROWS
    header = find_header(sheet, ("id_number", "name"))
    assert header.row == 0 and header.mapping["id_number"] == 2


def test_gbk_bytes_are_not_read_as_utf8(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(csv_bytes(CSV_ROWS, "gbk"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the file really is not UTF-8
    assert read_sheets(path)[0].rows[2][1] == "阿依古丽·买买提"


def test_csv_with_title_lines_and_commas_inside_cells(tmp_path):
    rows = [["2027年度断保名单"], ["制表：青山镇", "", ""], ["姓名", "身份证号", "住址"],
            ["王伟", make_id(1), "上坪村，一组"], ["李芳", make_id(2), "下坪村,二组,5号"]]
    path = tmp_path / "断保.csv"
    path.write_bytes(csv_bytes(rows, "gbk"))
    (sheet,) = read_sheets(path)
    assert sheet.rows == rows
    header = find_header(sheet, ("id_number", "name"))
    assert header.row == 2 and header.mapping == {"name": 0, "id_number": 1, "address": 2}


def test_tab_separated_text(tmp_path):
    path = tmp_path / "名单.txt"
    path.write_bytes(csv_bytes(CSV_ROWS, "utf-8", delimiter="\t"))
    assert read_sheets(path)[0].rows == CSV_ROWS


# ---------------------------------------------------------------------------
# .xls (BIFF8), as older county systems export it. No library here writes .xls,
# so a minimal one is built: an OLE2 compound file holding a BIFF8 "Workbook"
# stream with LABEL (text), NUMBER and MERGEDCELLS records.


def _rec(kind: int, data: bytes = b"") -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def _bof(substream: int) -> bytes:
    return _rec(0x0809, struct.pack("<HHHHII", 0x0600, substream, 0x0DBB, 0x07CC, 0, 6))


def _biff_sheet(rows: list[list], merges: list[tuple[int, int, int, int]]) -> bytes:
    out = [_bof(0x0010), _rec(0x0200, struct.pack(
        "<IIHHH", 0, len(rows), 0, max((len(r) for r in rows), default=0), 0))]
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if v is None:
                continue
            if isinstance(v, (int, float)):
                out.append(_rec(0x0203, struct.pack("<HHHd", r, c, 0, float(v))))
            else:
                text = str(v)
                out.append(_rec(0x0204, struct.pack("<HHHHB", r, c, 0, len(text), 1)
                                + text.encode("utf-16-le")))
    if merges:   # (first row, last row, first col, last col), 0-based
        out.append(_rec(0x00E5, struct.pack("<H", len(merges)) + b"".join(
            struct.pack("<HHHH", *m) for m in merges)))
    out.append(_rec(0x000A))
    return b"".join(out)


def _biff_workbook(sheets: list[tuple[str, list[list], list]]) -> bytes:
    bodies = [_biff_sheet(rows, merges) for _, rows, merges in sheets]

    def globals_(offsets: list[int]) -> bytes:
        parts = [_bof(0x0005), _rec(0x0042, struct.pack("<H", 1200))]   # CODEPAGE: UTF-16
        for (name, _, _), offset in zip(sheets, offsets):
            parts.append(_rec(0x0085, struct.pack("<IBBBB", offset, 0, 0, len(name), 1)
                              + name.encode("utf-16-le")))
        return b"".join(parts) + _rec(0x000A)

    offsets, pos = [], len(globals_([0] * len(sheets)))
    for body in bodies:
        offsets.append(pos)
        pos += len(body)
    return globals_(offsets) + b"".join(bodies)


def _compound_file(stream: bytes) -> bytes:
    """OLE2 v3: sector 0 the FAT, sector 1 the directory, then the stream (padded to
    4096 bytes so it lives in normal sectors, not the mini stream)."""
    size = max(len(stream), 4096)
    stream = stream.ljust(-(-size // 512) * 512, b"\0")
    count = len(stream) // 512
    fat = [0xFFFFFFFD, 0xFFFFFFFE] + [3 + i for i in range(count - 1)] + [0xFFFFFFFE]
    assert len(fat) <= 128
    fat += [0xFFFFFFFF] * (128 - len(fat))

    def entry(name: str, kind: int, start: int, length: int, child: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0" if name else b""
        return (raw.ljust(64, b"\0") + struct.pack("<HBBIII", len(raw), kind, 1, 0xFFFFFFFF,
                                                   0xFFFFFFFF, child)
                + b"\0" * 36 + struct.pack("<IQ", start, length))

    directory = (entry("Root Entry", 5, 0xFFFFFFFE, 0, 1)
                 + entry("Workbook", 2, 2, size, 0xFFFFFFFF)
                 + entry("", 0, 0, 0, 0xFFFFFFFF) * 2)
    header = (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1" + b"\0" * 16
              + struct.pack("<HHHHH", 0x003E, 3, 0xFFFE, 9, 6) + b"\0" * 6
              + struct.pack("<9I", 0, 1, 1, 0, 4096, 0xFFFFFFFE, 0, 0xFFFFFFFE, 0)
              + struct.pack("<I", 0) + struct.pack("<108I", *([0xFFFFFFFF] * 108)))
    return header + struct.pack("<128I", *fat) + directory + stream


def write_xls(path: Path, sheets: dict[str, list[list]],
              merges: dict[str, list[tuple[int, int, int, int]]] | None = None) -> Path:
    """A .xls file (BIFF8) with text and number cells and merged ranges."""
    path.write_bytes(_compound_file(_biff_workbook(
        [(name, rows, (merges or {}).get(name, [])) for name, rows in sheets.items()])))
    return path


def test_xls_sheets_merged_cells_and_number_cells(tmp_path):
    number = make_id(5)
    path = write_xls(tmp_path / "旧系统.xls", {
        "名单": [["2027年度断保人员名单", None, None, None],
               ["村", "组", "姓名", "身份证号"],
               ["上坪村", "一组", "王伟", number],
               [None, "二组", "李芳", 4.50321e17],
               [None, None, "张娜", make_id(6)]],
        "说明": [["本表由系统导出"]],
    }, {"名单": [(0, 0, 0, 3), (2, 4, 0, 0), (3, 4, 1, 1)]})
    assert path.stat().st_size < 8192
    sheets = read_sheets(path)
    assert [s.name for s in sheets] == ["名单", "说明"]
    sheet = sheets[0]
    header = find_header(sheet, ("id_number", "name"))
    assert header.row == 1
    data = [[cell_text(c) for c in r] for _, r in iter_data(sheet, header)]
    assert data == [["上坪村", "一组", "王伟", number],
                    ["上坪村", "二组", "李芳", "4.50321e+17"],
                    ["上坪村", "二组", "张娜", make_id(6)]]
    assert find_header(sheets[1], ("id_number",)) is None


# ---------------------------------------------------------------------------
# Files that cannot be read


def test_missing_file(tmp_path):
    with pytest.raises(ValidationError, match="文件不存在"):
        read_sheets(tmp_path / "nope.xlsx")


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "名单.docx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValidationError, match="不支持的文件类型"):
        read_sheets(path)


def test_corrupt_workbook(tmp_path):
    path = tmp_path / "坏.xlsx"
    path.write_bytes(b"this is not a workbook" * 10)
    with pytest.raises(ValidationError, match="无法读取"):
        read_sheets(path)


def test_workbook_without_data(tmp_path):
    path = xlsx(tmp_path / "空.xlsx", {"Sheet1": [], "Sheet2": [[None, ""]]})
    with pytest.raises(ValidationError, match="没有数据"):
        read_sheets(path)
