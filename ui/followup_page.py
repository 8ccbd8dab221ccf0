"""回访: who is due for a follow-up, easiest first, and what to try."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTreeWidget,
    QTreeWidgetItem, QVBoxLayout, QWidget,
)

from core.domain import Reason, VisitOutcome
from core.followup import BUCKET_LABELS, OVERDUE, SOON, TODAY, FollowUp, queue
from core.personlist import workers
from core.store import open_reader
from ui.tasks import Task, TaskContext, start

def _mask_phone(phone: str | None) -> str:
    # Lists mask phones (DESIGN §9); the full number shows on hover and in the household.
    if not phone:
        return ""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 11 else phone


COLUMNS = ("户", "所在组", "电话", "未缴", "其中断保", "上次原因", "上次结果", "应回访", "建议做法")
BUCKET_COLOURS = {OVERDUE: "#b42318", TODAY: "#b54708", SOON: "#175cd3"}


def load_queue(ctx: TaskContext, db_path: str, year: int, unit: str | None,
               worker: str | None) -> list[FollowUp]:
    conn = open_reader(db_path)
    try:
        return queue(conn, year, dt.date.today(), unit=unit, worker=worker)
    finally:
        conn.close()


class FollowUpPage(QWidget):
    open_household = Signal(str, str)   # household gid, group code
    loaded = Signal()

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._task: Task | None = None
        self.items: list[FollowUp] = []

        self.who = QComboBox()
        self.unit = QComboBox()
        self.refresh_button = QPushButton("刷新")
        self.refresh_button.clicked.connect(self.reload)
        self.summary = QLabel()
        top = QHBoxLayout()
        top.addWidget(QLabel("网格员："))
        top.addWidget(self.who)
        top.addWidget(QLabel("范围："))
        top.addWidget(self.unit, 1)
        top.addWidget(self.refresh_button)
        top.addStretch(1)
        top.addWidget(self.summary)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.tree.header()
        header.setStretchLastSection(True)
        for col in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemActivated.connect(self._activated)
        # One click on the household opens it; the other columns just select.
        self.tree.itemClicked.connect(lambda item, col: self._activated(item) if col == 0 else None)
        hint = QLabel("单击户名、双击或按回车打开这一户。排序：逾期、今天、近7天；每一类里，"
                      "上年缴过费的（断保）在前——他们最容易续上；再按日期。")
        hint.setStyleSheet("color: #667085;")
        hint.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addWidget(hint)

        self._fill_choices()
        self.who.currentIndexChanged.connect(self.reload)
        self.unit.currentIndexChanged.connect(self.reload)
        self._dirty = True
        session.changed.connect(self._changed)

    def _changed(self, *_: object) -> None:
        # Recount only when looked at: a tick on the ledger screen must not start
        # a county-wide query behind it.
        self._dirty = True
        if self.isVisible():
            self.reload()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._dirty:
            self.reload()

    def _fill_choices(self) -> None:
        conn = self.session.store.conn
        scope = self.session.scope or None
        self.who.blockSignals(True)
        self.unit.blockSignals(True)
        self.who.clear()
        names = workers(conn, scope)
        me = self.session.operator
        if me in names:
            self.who.addItem(f"我（{me}）", me)
        self.who.addItem("全部", None)
        for name in names:
            if name != me:
                self.who.addItem(name, name)
        self.unit.clear()
        self.unit.addItem(self.session.place(scope) or "全部" if scope else "全部", scope)
        rows = conn.execute(
            "SELECT gid FROM unit WHERE deleted=0 AND level IN ('village', 'group') "
            "AND gid >= ? AND gid < ? ORDER BY gid", (scope or "", (scope or "") + "\uffff"))
        for (code,) in rows:
            if code != scope:
                indent = "　" if len(code) == 15 else ""
                self.unit.addItem(indent + self.session.place(code), code)
        self.who.blockSignals(False)
        self.unit.blockSignals(False)

    def reload(self) -> None:
        self._dirty = False
        if self._task is not None:
            self._task.cancel()
        self.summary.setText("正在统计…")
        task = Task(load_queue, str(self.session.store.path), self.session.year,
                    self.unit.currentData(), self.who.currentData())
        task.signals.finished.connect(lambda items: self._show(items, task))
        task.signals.failed.connect(lambda message: self._failed(message, task))
        self._task = start(task)

    def _failed(self, message: str, task: Task) -> None:
        if task is not self._task:
            return   # a replaced reload: its error is not the page's any more
        self._task = None
        self.summary.setText("统计失败")
        self.session.message.emit(message)

    def _show(self, items: list[FollowUp], task: Task) -> None:
        if task is not self._task:
            return   # a replaced reload that finished before its cancel reached it
        self._task = None
        if self.session.closed:
            return
        self.items = items
        self.tree.clear()
        groups: dict[str, QTreeWidgetItem] = {}
        counts = {OVERDUE: 0, TODAY: 0, SOON: 0}
        for bucket in (OVERDUE, TODAY, SOON):
            top = QTreeWidgetItem([BUCKET_LABELS[bucket]])
            top.setForeground(0, QBrush(QColor(BUCKET_COLOURS[bucket])))
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(top)
            groups[bucket] = top
        for f in items:
            counts[f.bucket] += 1
            item = QTreeWidgetItem([
                f"{f.household_number or ''}户 {f.head_name or ''}",
                self.session.place(f.unit_code), _mask_phone(f.phone), str(f.unpaid),
                str(f.lapsed),
                Reason.label_of(f.reason), VisitOutcome.label_of(f.outcome),
                f.next_date + (f"（逾期{f.overdue_days}天）" if f.bucket == OVERDUE else ""),
                f.action])
            item.setData(0, Qt.ItemDataRole.UserRole, (f.household_gid, f.unit_code))
            item.setForeground(0, QBrush(QColor("#175cd3")))
            item.setToolTip(0, "单击打开这一户")
            item.setToolTip(8, f.action)
            item.setToolTip(2, f.phone or "")  # the full number on hover, to call
            if f.bucket == OVERDUE:
                item.setForeground(7, QBrush(QColor(BUCKET_COLOURS[OVERDUE])))
            groups[f.bucket].addChild(item)
        for bucket, top in groups.items():
            top.setText(0, f"{BUCKET_LABELS[bucket]}（{counts[bucket]}户）")
            top.setExpanded(True)
        self.summary.setText(f"逾期 {counts[OVERDUE]} 户，今天 {counts[TODAY]} 户，"
                             f"近7天 {counts[SOON]} 户")
        first = next((groups[b].child(0) for b in (OVERDUE, TODAY, SOON)
                      if groups[b].childCount()), None)
        if first is not None:
            self.tree.setCurrentItem(first)
        self.loaded.emit()

    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        data = item.data(0, Qt.ItemDataRole.UserRole)
        if data:
            self.open_household.emit(*data)
