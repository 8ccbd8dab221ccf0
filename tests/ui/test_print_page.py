"""The print page: build a PDF off the GUI thread, preview it, print it."""

from __future__ import annotations

from pypdf import PdfReader


def test_build_preview_and_print(qtbot, window, demo_store, tmp_path):
    from PySide6.QtPrintSupport import QPrinter

    window.nav.setCurrentRow(4)
    page = window.print_page
    group = demo_store.conn.execute(
        "SELECT e.group_code FROM enrollment e WHERE e.status='unpaid' LIMIT 1").fetchone()[0]
    page.unit.setCurrentIndex(page.unit.findData(group))
    page.kind.setCurrentIndex(page.kind.findData("notices"))
    page.build()
    qtbot.waitUntil(lambda: page.pdf is not None, timeout=20_000)
    assert page.pages > 0 and "共" in page.status.text()
    assert page.view.pixmap() is not None and not page.view.pixmap().isNull()
    page.show_page(page.pages - 1)
    assert page.page_label.text() == f"第 {page.pages} / {page.pages} 页"

    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    out = tmp_path / "printed.pdf"
    printer.setOutputFileName(str(out))
    printer.setResolution(96)
    assert page.print_to(printer) == page.pages
    assert len(PdfReader(out).pages) == page.pages


def test_cards_options(qtbot, window):
    page = window.print_page
    page.kind.setCurrentIndex(page.kind.findData("cards"))
    assert page.per_page.isEnabled() and not page.unpaid_only.isEnabled()
    page.per_page.setCurrentIndex(page.per_page.findData(8))
    page.card_pages.setValue(3)
    page.build()
    qtbot.waitUntil(lambda: page.pdf is not None, timeout=20_000)
    assert page.pages == 3
