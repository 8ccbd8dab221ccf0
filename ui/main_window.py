"""The main window. For now: the county's units with their progress counts;
the ledger, visits, import, printing and sync screens come with later issues."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout, QHeaderView, QLabel, QMainWindow, QMessageBox, QTreeView, QVBoxLayout, QWidget,
)

from core import APP_NAME, __version__
from core.domain import Role
from core.stats import UnitCounts, tree_counts
from core.store import Store, open_reader
from ui.tasks import Task, TaskContext, start
from ui.unit_tree import COLUMNS, UnitTreeModel


def load_counts(ctx: TaskContext, db_path: str, year: int) -> dict[str, UnitCounts]:
    """Runs on a pool thread, with its own read-only connection."""
    conn = open_reader(db_path)
    try:
        ctx.check()
        return tree_counts(conn, year)
    finally:
        conn.close()


class MainWindow(QMainWindow):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.year = int(store.setting("campaign_year", "2027") or 2027)
        self.setWindowTitle(f"{APP_NAME} — {store.path}")
        self.resize(1280, 720)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(12, 12, 12, 6)
        self.title = QLabel(f"{self.year}年度城乡居民医保参保进度")
        self.title.setObjectName("title")
        self.title.setStyleSheet("font-size: 18px; font-weight: bold;")
        layout.addWidget(self.title)

        self.summary = QHBoxLayout()
        self.cards: dict[str, QLabel] = {}
        for key, label in (("total", "应参保人数"), ("enrolled", "已参保"), ("unpaid", "未缴"),
                           ("lapsed", "断保"), ("rate", "完成率")):
            card = QLabel(f"{label}\n—")
            card.setAlignment(Qt.AlignmentFlag.AlignCenter)
            card.setStyleSheet("QLabel { border: 1px solid #d0d5dd; border-radius: 6px;"
                               " padding: 6px 18px; font-size: 14px; background: #f9fafb; }")
            self.cards[key] = card
            self.cards[key].setProperty("caption", label)
            self.summary.addWidget(card)
        self.summary.addStretch(1)
        layout.addLayout(self.summary)

        self.model = UnitTreeModel(self)
        self.tree = QTreeView()
        self.tree.setModel(self.model)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setSortingEnabled(False)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.tree, 1)
        self.setCentralWidget(central)

        self.loading = QLabel("正在统计…")
        self.statusBar().addWidget(self.loading)
        role = Role.label_of(store.setting("role")) or "未设置角色"
        scope = store.setting("scope") or ""
        scope_name = ""
        if scope:
            row = store.conn.execute("SELECT name FROM unit WHERE gid=?", (scope,)).fetchone()
            scope_name = row[0] if row else scope
        operator = store.setting("operator") or "未设置"
        self.statusBar().addPermanentWidget(QLabel(f"本机：{role} {scope_name}"))
        self.statusBar().addPermanentWidget(QLabel(f"操作员：{operator}"))
        self.statusBar().addPermanentWidget(QLabel(f"数据库：{store.path}"))

        refresh = QAction("刷新(&R)", self)
        refresh.setShortcut(QKeySequence(QKeySequence.StandardKey.Refresh))
        refresh.triggered.connect(self.refresh)
        about = QAction("关于(&A)", self)
        about.triggered.connect(lambda: QMessageBox.about(
            self, f"关于{APP_NAME}", f"{APP_NAME} {__version__}\n城乡居民医保参保缴费台账（离线版）"))
        menu = self.menuBar().addMenu("查看(&V)")
        menu.addAction(refresh)
        self.menuBar().addMenu("帮助(&H)").addAction(about)
        self._task: Task | None = None
        self.refresh()

    def refresh(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.loading.setText("正在统计…")
        task = Task(load_counts, str(self.store.path), self.year)
        task.signals.finished.connect(self._show_counts)
        task.signals.failed.connect(self._failed)
        self._task = start(task)

    def _show_counts(self, units: dict[str, UnitCounts]) -> None:
        self._task = None
        self.model.load(units)
        # Open down to the villages: a county has a few hundred, a township's
        # worth of groups stays folded until asked for.
        for row in range(self.model.rowCount()):
            county = self.model.index(row, 0)
            self.tree.expand(county)
            for t in range(self.model.rowCount(county)):
                self.tree.expand(self.model.index(t, 0, county))
        roots = [u for u in units.values() if len(u.code) == min(len(c) for c in units)]
        if roots:
            total = sum(u.total for u in roots)
            enrolled = sum(u.enrolled for u in roots)
            target = sum(u.target or 0 for u in roots)
            rate = enrolled / (target or total) if (target or total) else None
            values = {"total": f"{total:,}", "enrolled": f"{enrolled:,}",
                      "unpaid": f"{sum(u.unpaid for u in roots):,}",
                      "lapsed": f"{sum(u.lapsed for u in roots):,}",
                      "rate": "—" if rate is None else f"{rate:.1%}"}
            for key, card in self.cards.items():
                card.setText(f"{card.property('caption')}\n{values[key]}")
        self.loading.setText(f"共 {len(units):,} 个单位")

    def _failed(self, message: str) -> None:
        self._task = None
        self.loading.setText("统计失败")
        QMessageBox.warning(self, APP_NAME, message)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._task is not None:
            self._task.cancel()
        super().closeEvent(event)
