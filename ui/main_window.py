"""The main window: navigation on the left, one page at a time, and a status
bar saying who works here, for which unit, on which database."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMainWindow, QMessageBox, QPushButton,
    QStackedWidget, QVBoxLayout, QWidget,
)

from core import APP_NAME, __version__
from core.domain import Role
from core.stats import UnitCounts, tree_counts
from core.store import Store, open_reader
from ui.session import Session
from ui.tasks import TaskContext

PAGES = ("首页", "台账", "回访", "导入导出", "打印", "同步", "设置")


def load_counts(ctx: TaskContext, db_path: str, year: int) -> dict[str, UnitCounts]:
    """Runs on a pool thread, with its own read-only connection."""
    conn = open_reader(db_path)
    try:
        ctx.check()
        return tree_counts(conn, year)
    finally:
        conn.close()


class PlaceholderPage(QWidget):
    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        label = QLabel(f"<h2>{title}</h2><p>{text}</p>")
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignTop)
        layout.addWidget(label)
        layout.addStretch(1)


class SettingsPage(QWidget):
    def __init__(self, window: "MainWindow") -> None:
        super().__init__()
        self.window_ = window
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>设置</h2>"))
        self.form = QFormLayout()
        layout.addLayout(self.form)
        self.labels = {key: QLabel() for key in ("role", "scope", "operator", "db", "node")}
        for key, caption in (("role", "本机角色"), ("scope", "单位"), ("operator", "操作员"),
                             ("db", "数据库"), ("node", "本机编号")):
            self.labels[key].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.form.addRow(caption + "：", self.labels[key])
        change = QPushButton("修改角色、单位和操作员…")
        change.clicked.connect(window.configure)
        layout.addWidget(change, 0, Qt.AlignmentFlag.AlignLeft)

        layout.addWidget(QLabel("<h3>打印</h3>"))
        printing = QFormLayout()
        self.payment_link = QLineEdit()
        self.payment_link.setPlaceholderText("缴费小程序链接或说明文字；填写后告知书上印二维码")
        self.contact_phone = QLineEdit()
        self.contact_phone.setPlaceholderText("印在告知书和明白卡上的咨询电话")
        self.pdf_font = QLineEdit()
        self.pdf_font.setPlaceholderText("留空自动查找（如 C:\\Windows\\Fonts\\simhei.ttf）")
        printing.addRow("缴费二维码内容：", self.payment_link)
        printing.addRow("咨询电话：", self.contact_phone)
        printing.addRow("PDF字体文件：", self.pdf_font)
        layout.addLayout(printing)
        save = QPushButton("保存打印设置")
        save.clicked.connect(self.save_printing)
        layout.addWidget(save, 0, Qt.AlignmentFlag.AlignLeft)
        self.saved = QLabel()
        layout.addWidget(self.saved)
        from core.store import default_db_path

        local = default_db_path().parent / "policy" / f"{window.session.year}.json"
        note = QLabel(f"告知书和明白卡的金额、日期和问答取自政策年度文件（默认值，待乡镇核定）。"
                      f"要修改，请把 resources/policy/{window.session.year}.json 复制为 {local} "
                      "再用文本编辑器修改；该文件优先，升级软件也不会覆盖（见 README）。")
        note.setWordWrap(True)
        note.setStyleSheet("color: #667085;")
        layout.addWidget(note)
        layout.addStretch(1)
        self.refresh()

    def save_printing(self) -> None:
        from core.errors import CbtError
        from core.printing import fonts

        s = self.window_.session
        font = self.pdf_font.text().strip()
        if font:
            try:
                fonts.register(font)
            except CbtError as exc:
                self.saved.setText(str(exc))
                return
        s.set_settings(payment_link=self.payment_link.text().strip() or None,
                       contact_phone=self.contact_phone.text().strip() or None,
                       pdf_font=font or None)
        self.saved.setText("已保存")

    def refresh(self) -> None:
        s = self.window_.session
        self.payment_link.setText(s.setting("payment_link") or "")
        self.contact_phone.setText(s.setting("contact_phone") or "")
        self.pdf_font.setText(s.setting("pdf_font") or "")
        self.labels["role"].setText(Role.label_of(s.role) or "未设置")
        self.labels["scope"].setText(s.place(s.scope) or s.unit_name(s.scope) or "未设置")
        self.labels["operator"].setText(s.operator or "未设置")
        self.labels["db"].setText(str(s.store.path))
        self.labels["node"].setText(s.store.node)


class MainWindow(QMainWindow):
    def __init__(self, store: Store) -> None:
        super().__init__()
        from ui.followup_page import FollowUpPage
        from ui.home_page import HomePage
        from ui.ledger_page import LedgerPage

        self.store = store
        self.session = Session(store, self)
        self.year = self.session.year
        self.setWindowTitle(f"{APP_NAME} — {store.path.name if store.path else ''}")
        self.resize(1366, 740)

        self.nav = QListWidget()
        self.nav.setFixedWidth(84)
        self.nav.setIconSize(QSize(0, 0))
        self.nav.setStyleSheet(
            "QListWidget { border: none; background: #f2f4f7; font-size: 15px; }"
            "QListWidget::item { padding: 12px 8px; }"
            "QListWidget::item:selected { background: #d1e0ff; color: #101828; }")
        self.stack = QStackedWidget()
        self.home = HomePage(self.session)
        self.ledger = LedgerPage(self.session)
        self.followups = FollowUpPage(self.session)
        self.settings_page = SettingsPage(self)
        from ui.import_page import ImportPage

        self.import_page = ImportPage(self.session)
        from ui.print_page import PrintPage

        self.print_page = PrintPage(self.session)
        pages = [self.home, self.ledger, self.followups,
                 self.import_page,
                 self.print_page,
                 PlaceholderPage("同步", "用U盘在村、乡镇、县之间交换加密的同步文件。下一版本提供。"),
                 self.settings_page]
        for i, (title, page) in enumerate(zip(PAGES, pages)):
            item = QListWidgetItem(title)
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            item.setToolTip(f"{title}（Ctrl+{i + 1}）")
            self.nav.addItem(item)
            self.stack.addWidget(page)
        self.nav.currentRowChanged.connect(self.show_page)
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.nav)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.followups.open_household.connect(self.open_household)
        self.import_page.import_tab.imported.connect(self.refresh)
        self.ledger.counts_loaded.connect(lambda: self.home.show_counts(self.ledger._units))
        self.session.message.connect(lambda text: self.statusBar().showMessage(text, 8000))

        # Status bar: who, where, which file.
        self.loading = QLabel("")
        self.statusBar().addWidget(self.loading)
        self.who = QLabel()
        self.operator_label = QLabel()
        self.db_label = QLabel()
        for w in (self.who, self.operator_label, self.db_label):
            self.statusBar().addPermanentWidget(w)
        self._update_status()

        # Menus and window-wide shortcuts.
        self.undo_action = QAction("撤销(&U)", self)
        self.undo_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Undo))
        self.undo_action.setEnabled(False)
        self.undo_action.triggered.connect(self.undo)
        self.session.undo_available.connect(self.undo_action.setEnabled)
        find = QAction("查找(&F)", self)
        find.setShortcut(QKeySequence(QKeySequence.StandardKey.Find))
        find.triggered.connect(self.find)
        refresh = QAction("刷新(&R)", self)
        refresh.setShortcut(QKeySequence("F5"))
        refresh.triggered.connect(self.refresh)
        edit_menu = self.menuBar().addMenu("编辑(&E)")
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(find)
        view_menu = self.menuBar().addMenu("查看(&V)")
        view_menu.addAction(refresh)
        for i, title in enumerate(PAGES):
            action = QAction(title, self)
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda _=False, i=i: self.nav.setCurrentRow(i))
            view_menu.addAction(action)
        ledger_menu = self.menuBar().addMenu("台账(&L)")
        for action in self.ledger.actions_.values():
            ledger_menu.addAction(action)
        about = QAction("关于(&A)", self)
        about.triggered.connect(lambda: QMessageBox.about(
            self, f"关于{APP_NAME}", f"{APP_NAME} {__version__}\n城乡居民医保参保缴费台账（离线版）"))
        keys = QAction("快捷键(&K)", self)
        keys.triggered.connect(self.show_keys)
        help_menu = self.menuBar().addMenu("帮助(&H)")
        help_menu.addAction(keys)
        help_menu.addAction(about)
        for action in (self.undo_action, find, refresh):
            self.addAction(action)

        start_page = 1 if self.session.role == Role.VILLAGE.value else 0
        self.nav.setCurrentRow(start_page)

    # --- navigation ------------------------------------------------------------

    def show_page(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        if self.stack.currentWidget() is self.settings_page:
            self.settings_page.refresh()
        if self.stack.currentWidget() is self.ledger:
            self.ledger.table.setFocus()

    def open_household(self, household_gid: str, unit_code: str) -> None:
        self.nav.setCurrentRow(PAGES.index("台账"))
        self.ledger.open_household(household_gid, unit_code)

    def find(self) -> None:
        self.nav.setCurrentRow(PAGES.index("台账"))
        self.ledger.focus_search()

    def undo(self) -> None:
        note = self.session.undo()
        if note:
            self.statusBar().showMessage(note, 8000)

    def refresh(self) -> None:
        self.ledger.reload_counts()
        self.ledger.apply_filter()
        self.followups.reload()

    def configure(self) -> None:
        from ui.first_run import FirstRunDialog

        if FirstRunDialog(self.session, self, title="角色、单位和操作员").exec():
            self.session.units_changed()
            self.ledger.unit = self.session.scope or None
            self.followups._fill_choices()
            self._update_status()
            self.settings_page.refresh()
            self.refresh()

    def _update_status(self) -> None:
        s = self.session
        scope = s.place(s.scope) or s.unit_name(s.scope)
        self.who.setText(f"本机：{Role.label_of(s.role) or '未设置'} {scope}")
        self.operator_label.setText(f"操作员：{s.operator or '未设置'}")
        self.db_label.setText(f"数据库：{s.store.path}")
        self.db_label.setToolTip(str(s.store.path))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.session.closed = True
        for task in (self.ledger._tree_task, self.ledger.model._task, self.followups._task):
            if task is not None:
                task.cancel()
        super().closeEvent(event)

    def show_keys(self) -> None:
        from ui.dialogs import SHORTCUT_HELP

        rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in SHORTCUT_HELP)
        QMessageBox.information(self, "快捷键", f"<table cellspacing=6>{rows}</table>")


__all__ = ["MainWindow", "load_counts", "PAGES"]
