"""Plain-text tables for the terminal (CLI output, benchmark reports), where a
Chinese character takes two columns."""

from __future__ import annotations

from collections.abc import Sequence


def display_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def table_lines(rows: Sequence[Sequence[str]], *, sep: str = " | ", rule: bool = True,
                right_from: int | None = None) -> list[str]:
    """Rows (the first is the header) padded to aligned columns; columns from
    `right_from` on are right-aligned; a dashed rule under the header."""
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(row: Sequence[str]) -> str:
        cells = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - display_width(cell))
            right = right_from is not None and i >= right_from
            cells.append(pad + cell if right else cell + pad)
        return sep.join(cells).rstrip()

    out = [line(rows[0])]
    if rule:
        out.append(sep.join("-" * w for w in widths))
    out += [line(r) for r in rows[1:]]
    return out
