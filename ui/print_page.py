"""打印: choose a document, build the PDF off the GUI thread (progress, cancel),
preview it page by page, then print (QPrinter) or save it as a PDF.

Pages are rendered for preview and printing with pypdfium2: Qt's own PDF
module ships only in the large Addons wheel.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QMessageBox,
    QProgressBar, QProgressDialog, QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget,
)

from core.printing import documents as docs
from core.store import open_reader
from ui.tasks import Task, TaskContext, start

KINDS = (("notices", "缴费告知书"), ("forms", "入户动员登记表"), ("cards", "政策明白卡"),
         ("list", "未缴费名单"))


def _build(ctx: TaskContext, db_path: str, kind: str, out: str, options: dict) -> str:
    conn = open_reader(db_path)
    try:
        year = options.pop("year")
        if kind != "cards":
            options["check"] = ctx.check  # cancel reaches into the PDF writing too
        if kind == "notices":
            steps = docs.notices(conn, out, year=year, **options)
        elif kind == "forms":
            steps = docs.forms(conn, out, year=year, **options)
        elif kind == "cards":
            steps = docs.cards(out, year=year, **options)
        else:
            steps = docs.unpaid_list(conn, out, year=year, **options)
        ctx.follow(steps)   # cancel: the partial file is removed
        return out
    finally:
        conn.close()


def render_page(path: str | Path, index: int, dpi: float) -> QImage:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        bitmap = pdf[index].render(scale=dpi / 72, rev_byteorder=True)
        image = QImage(bitmap.buffer, bitmap.width, bitmap.height, bitmap.stride,
                       QImage.Format.Format_RGB888 if bitmap.n_channels == 3
                       else QImage.Format.Format_RGBA8888)
        return image.copy()  # own the pixels before the bitmap goes away
    finally:
        pdf.close()


def page_count(path: str | Path) -> int:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return len(pdf)
    finally:
        pdf.close()


class PrintPage(QWidget):
    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._task: Task | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="cbt-print-"))
        self.pdf: Path | None = None
        self.pages = 0
        self.index = 0

        self.kind = QComboBox()
        for key, label in KINDS:
            self.kind.addItem(label, key)
        self.unit = QComboBox()
        self._fill_units()
        self.unpaid_only = QCheckBox("只打有未缴人员的户")
        self.unpaid_only.setChecked(True)
        self.blank = QSpinBox()
        self.blank.setRange(0, 500)
        self.blank.setSuffix(" 张空白表")
        self.per_page = QComboBox()
        for n in (2, 4, 8):
            self.per_page.addItem(f"每页 {n} 张", n)
        self.per_page.setCurrentIndex(1)
        self.card_pages = QSpinBox()
        self.card_pages.setRange(1, 1000)
        self.card_pages.setSuffix(" 页")
        self.large = QCheckBox("大字版（老年人）")
        self.full_id = QCheckBox("显示完整身份证号（默认打码）")
        self.build_button = QPushButton("生成预览")
        self.build_button.clicked.connect(self.build)
        self.cancel_button = QPushButton("取消")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: self._task and self._task.cancel())
        self.progress = QProgressBar()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.save_button = QPushButton("另存为PDF…")
        self.print_button = QPushButton("打印…")
        for b in (self.save_button, self.print_button):
            b.setEnabled(False)
        self.save_button.clicked.connect(self.save)
        self.print_button.clicked.connect(self.print_)

        form = QFormLayout()
        form.addRow("内容：", self.kind)
        form.addRow("单位：", self.unit)
        form.addRow("", self.unpaid_only)
        form.addRow("登记表：", self.blank)
        form.addRow("明白卡：", self.per_page)
        form.addRow("", self.card_pages)
        form.addRow("", self.large)
        form.addRow("", self.full_id)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.build_button)
        row.addWidget(self.cancel_button)
        left_layout.addLayout(row)
        left_layout.addWidget(self.progress)
        left_layout.addWidget(self.status)
        row2 = QHBoxLayout()
        row2.addWidget(self.save_button)
        row2.addWidget(self.print_button)
        left_layout.addLayout(row2)
        hint = QLabel("PDF内嵌中文字体，在任何电脑和打印机上显示一致。身份证号默认打码。")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #667085;")
        left_layout.addWidget(hint)
        left_layout.addStretch(1)
        left.setFixedWidth(330)

        self.view = QLabel("预览在这里显示")
        self.view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.view)
        self.scroll.setWidgetResizable(True)
        self.prev_button = QPushButton("◀ 上一页")
        self.next_button = QPushButton("下一页 ▶")
        self.page_label = QLabel()
        self.prev_button.clicked.connect(lambda: self.show_page(self.index - 1))
        self.next_button.clicked.connect(lambda: self.show_page(self.index + 1))
        nav = QHBoxLayout()
        nav.addWidget(self.prev_button)
        nav.addWidget(self.page_label, 1, Qt.AlignmentFlag.AlignCenter)
        nav.addWidget(self.next_button)
        right = QVBoxLayout()
        right.addWidget(self.scroll, 1)
        right.addLayout(nav)

        layout = QHBoxLayout(self)
        layout.addWidget(left)
        layout.addLayout(right, 1)
        self.kind.currentIndexChanged.connect(self._enable)
        self._enable()

    def _enable(self) -> None:
        kind = self.kind.currentData()
        self.unpaid_only.setEnabled(kind in ("notices", "forms"))
        self.blank.setEnabled(kind == "forms")
        for w in (self.per_page, self.card_pages, self.large):
            w.setEnabled(kind == "cards")
        self.unit.setEnabled(kind != "cards")
        self.full_id.setEnabled(kind != "cards")

    def options(self) -> dict:
        kind = self.kind.currentData()
        options: dict = {"year": self.session.year}
        if kind == "cards":
            scope = self.session.scope
            options.update(per_page=self.per_page.currentData(), pages=self.card_pages.value(),
                           large=self.large.isChecked(),
                           unit_name=self.session.place(scope) or self.session.unit_name(scope),
                           settings=self._settings())
            return options
        options.update(unit=self.unit.currentData(), full_id=self.full_id.isChecked())
        if kind == "notices":
            options.update(unpaid_only=self.unpaid_only.isChecked(), settings=self._settings())
        elif kind == "forms":
            options.update(unpaid_only=self.unpaid_only.isChecked(), blank=self.blank.value())
        return options

    def _settings(self) -> dict[str, str]:
        return {k: v for k in ("payment_link", "contact_phone") if (v := self.session.setting(k))}

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._fill_units()  # units may have come in by import or first run since

    def _fill_units(self) -> None:
        session = self.session
        current = self.unit.currentData()
        scope = session.scope or ""
        self.unit.blockSignals(True)
        self.unit.clear()
        self.unit.addItem(session.place(scope) or session.unit_name(scope) or "全部", scope or None)
        for code, in session.store.conn.execute(
                "SELECT gid FROM unit WHERE deleted=0 AND level IN ('township', 'village', 'group')"
                " AND gid > ? AND gid < ? ORDER BY gid", (scope, scope + "\uffff")):
            indent = "　" * ((len(code) - 9) // 3) if len(code) > 9 else ""
            self.unit.addItem(indent + session.unit_name(code), code)
        self.unit.setCurrentIndex(max(0, self.unit.findData(current)))
        self.unit.blockSignals(False)

    def build(self) -> None:
        from core.errors import CbtError
        from core.printing import fonts

        try:  # a configured font first; otherwise the usual search
            fonts.register(self.session.setting("pdf_font"))
        except CbtError as exc:
            self.status.setText(str(exc))
            return
        kind = self.kind.currentData()
        # A fresh file per build: a cancelled or failed build never replaces
        # the PDF being previewed.
        self._builds = getattr(self, "_builds", 0) + 1
        out = self._dir / f"{kind}-{self._builds}.pdf"
        self.save_button.setEnabled(False)
        self.print_button.setEnabled(False)
        self.build_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("正在生成…")
        task = Task(_build, str(self.session.store.path), kind, str(out), self.options())
        task.signals.progress.connect(lambda d, t, m: (self.progress.setRange(0, max(t, 1)),
                                                       self.progress.setValue(min(d, t)),
                                                       self.status.setText(f"{m} {d:,}/{t:,}")))
        task.signals.finished.connect(self._built)
        task.signals.failed.connect(lambda m: self._ended(m))
        task.signals.cancelled.connect(lambda: self._ended("已取消。"))
        self._task = start(task)

    def _ended(self, text: str) -> None:
        self._task = None
        self.build_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.status.setText(text)
        ready = self.pdf is not None and self.pdf.exists()
        self.save_button.setEnabled(ready)
        self.print_button.setEnabled(ready)

    def _built(self, path: str) -> None:
        self._ended("")
        self.pdf = Path(path)
        self.pages = page_count(self.pdf)
        self.status.setText(f"共 {self.pages:,} 页。可打印或另存为PDF。")
        self.save_button.setEnabled(True)
        self.print_button.setEnabled(True)
        self.show_page(0)

    def show_page(self, index: int) -> None:
        if self.pdf is None or not self.pages:
            return
        self.index = max(0, min(index, self.pages - 1))
        image = render_page(self.pdf, self.index, 96)
        self.view.setPixmap(QPixmap.fromImage(image))
        self.page_label.setText(f"第 {self.index + 1} / {self.pages} 页")
        self.prev_button.setEnabled(self.index > 0)
        self.next_button.setEnabled(self.index < self.pages - 1)

    def save(self) -> None:
        if self.pdf is None:
            return
        label = self.kind.currentText()
        path, _ = QFileDialog.getSaveFileName(self, "另存为PDF", str(Path.home() / f"{label}.pdf"),
                                              "PDF (*.pdf)")
        if path:
            try:
                shutil.copyfile(self.pdf, path)
            except OSError as exc:
                QMessageBox.warning(self, "另存为PDF", f"无法保存到 {path}：文件可能正被其他程序打开"
                                    f"（{exc.strerror or exc}）")
                return
            self.status.setText(f"已保存：{path}")

    def print_(self) -> None:
        if self.pdf is None:
            return
        from PySide6.QtPrintSupport import QPrintDialog, QPrinter

        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        printer.setDocName(self.kind.currentText())
        printer.setFromTo(1, self.pages)
        dialog = QPrintDialog(printer, self)
        dialog.setWindowTitle("打印")
        if dialog.exec() != QPrintDialog.DialogCode.Accepted:
            return
        self.print_to(printer)

    def print_to(self, printer) -> int:
        """Render the pages onto a printer (or a PDF QPrinter in tests)."""
        from PySide6.QtCore import QRectF
        from PySide6.QtGui import QPageLayout

        # Page ranges as chosen ("1-2,5"), not just from the first to the last.
        ranges = printer.pageRanges().toRangeList() if not printer.pageRanges().isEmpty() \
            else []
        pages = [p - 1 for r in ranges for p in range(r.from_, r.to + 1)
                 if 1 <= p <= self.pages] if ranges else list(range(self.pages))
        if not pages:
            return 0
        first_image = render_page(self.pdf, pages[0], 24)
        if first_image.width() > first_image.height():  # 2-per-page cards are landscape
            printer.setPageOrientation(QPageLayout.Orientation.Landscape)
        painter = QPainter()
        if not painter.begin(printer):
            QMessageBox.warning(self, "打印", "打印机无法开始打印，请检查打印机是否连接。")
            return 0
        progress = QProgressDialog("正在打印…", "取消", 0, len(pages), self)
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        done = 0
        try:
            # 200 dpi greyscale is sharp on paper and keeps the spool small;
            # the painter scales it to the printer without an upscaled copy.
            dpi = min(printer.resolution(), 200)
            for n, i in enumerate(pages):
                if progress.wasCanceled():
                    break
                if n:
                    printer.newPage()
                image = render_page(self.pdf, i, dpi).convertToFormat(
                    QImage.Format.Format_Grayscale8)
                target = painter.viewport()
                size = image.size().scaled(target.size(), Qt.AspectRatioMode.KeepAspectRatio)
                painter.drawImage(QRectF(0, 0, size.width(), size.height()), image)
                done += 1
                progress.setValue(n + 1)
        finally:
            painter.end()
            progress.close()
        self.status.setText(f"已发送打印 {done} 页")
        return done
