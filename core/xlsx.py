"""A small streaming .xlsx writer for the big exports.

openpyxl's write-only mode costs about 7 µs a cell; a county's 台账 is nine
million cells, over a minute on a village laptop. This writes the same
SpreadsheetML directly — one sheet, inline strings, a bold title and header,
frozen header rows, column widths — at well under a microsecond a cell,
streaming into the zip so memory stays flat. Excel, WPS and LibreOffice
open it; tests read it back with openpyxl and python-calamine.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>
</Types>"""

_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""

_WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets>
</workbook>"""

_WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
</Relationships>"""

# Style 0: normal. 1: bold title (13pt). 2: bold header on a light fill. 3: text (@),
# so a number typed into an ID cell later stays text.
_STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<fonts count="3"><font><sz val="11"/><name val="宋体"/></font><font><b/><sz val="13"/><name val="宋体"/></font><font><b/><sz val="11"/><name val="宋体"/></font></fonts>
<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill><fill><patternFill patternType="solid"><fgColor rgb="FFDDE7F7"/><bgColor indexed="64"/></patternFill></fill></fills>
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/><xf numFmtId="0" fontId="2" fillId="2" borderId="0" xfId="0" applyFont="1" applyFill="1" applyAlignment="1"><alignment horizontal="center"/></xf><xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""


def column_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


# One translate() both escapes XML's special characters and drops the control
# characters XML 1.0 forbids (spreadsheets from other systems sometimes carry them).
_XML_TABLE = {i: None for i in range(32) if chr(i) not in "\t\n\r"}
_XML_TABLE.update({ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"})


def _clean(text: str) -> str:
    return text.translate(_XML_TABLE)


class XlsxWriter:
    """One sheet, written row by row.

        with XlsxWriter(path, "台账", widths=[10, 21], freeze_rows=2,
                        text_columns={1}) as w:
            w.row(["某村台账"], style=1)
            w.row(["姓名", "身份证号"], style=2)
            w.row(["张三", "4503**********123X"])
    """

    def __init__(self, path: str | Path, sheet_name: str, *, widths: Sequence[float] = (),
                 freeze_rows: int = 0, text_columns: Iterable[int] = ()) -> None:
        self.path = Path(path)
        self._zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_DEFLATED,
                                    compresslevel=1)
        self._zip.writestr("[Content_Types].xml", _CONTENT_TYPES)
        self._zip.writestr("_rels/.rels", _RELS)
        self._zip.writestr("xl/workbook.xml", _WORKBOOK.format(name=escape(sheet_name[:31])))
        self._zip.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        self._zip.writestr("xl/styles.xml", _STYLES)
        self._sheet = self._zip.open("xl/worksheets/sheet1.xml", "w", force_zip64=True)
        self._text_columns = frozenset(text_columns)
        self._refs = [column_letter(i) for i in range(max(len(widths), 64))]
        self._row = 0
        self._buffer: list[str] = []
        head = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">']
        if freeze_rows:
            head.append(f'<sheetViews><sheetView workbookViewId="0"><pane ySplit="{freeze_rows}" '
                        f'topLeftCell="A{freeze_rows + 1}" activePane="bottomLeft" '
                        'state="frozen"/></sheetView></sheetViews>')
        if widths:
            head.append("<cols>" + "".join(
                f'<col min="{i + 1}" max="{i + 1}" width="{w}" customWidth="1"/>'
                for i, w in enumerate(widths)) + "</cols>")
        head.append("<sheetData>")
        self._sheet.write("".join(head).encode())

    def row(self, values: Sequence[Any], style: int = 0) -> None:
        self._row += 1
        r = self._row
        refs = self._refs
        text_cols = self._text_columns
        parts = [f'<row r="{r}">']
        for c, v in enumerate(values):
            if v is None or v == "":
                continue
            if c >= len(refs):
                refs.extend(column_letter(i) for i in range(len(refs), c + 1))
            s = f' s="{style}"' if style else (' s="3"' if c in text_cols else "")
            if isinstance(v, bool):
                parts.append(f'<c r="{refs[c]}{r}"{s} t="b"><v>{int(v)}</v></c>')
            elif isinstance(v, (int, float)):
                parts.append(f'<c r="{refs[c]}{r}"{s}><v>{v}</v></c>')
            else:
                parts.append(f'<c r="{refs[c]}{r}"{s} t="inlineStr"><is><t>{_clean(str(v))}'
                             f'</t></is></c>')
        parts.append("</row>")
        self._buffer.append("".join(parts))
        if len(self._buffer) >= 2000:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._sheet.write("".join(self._buffer).encode())
            self._buffer.clear()

    def close(self) -> None:
        self._flush()
        self._sheet.write(b"</sheetData></worksheet>")
        self._sheet.close()
        self._zip.close()

    def abort(self) -> None:
        """Stop without a usable file (the caller removes it)."""
        try:
            self._sheet.close()
            self._zip.close()
        except Exception:  # noqa: BLE001 - the file is being thrown away anyway
            pass

    def __enter__(self) -> "XlsxWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
