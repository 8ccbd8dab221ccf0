"""The detail panel of the ledger screen: one household, its members and visits."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QHeaderView, QLabel, QListWidget, QListWidgetItem, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from core import idcard
from core.domain import Reason, Relation, Status, VisitMethod, VisitOutcome
from core.personlist import HouseholdDetail, household_detail
from ui.person_model import STATUS_COLOURS


def _item(text: str, colour: str | None = None) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if colour:
        item.setForeground(QBrush(QColor(colour)))
    return item


class HouseholdPanel(QWidget):
    member_activated = Signal(str)   # person gid

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.detail: HouseholdDetail | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 0, 0, 0)
        self.title = QLabel("请选择一个人")
        self.title.setStyleSheet("font-size: 15px; font-weight: bold;")
        self.title.setWordWrap(True)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.title)
        layout.addWidget(self.info)

        layout.addWidget(QLabel("家庭成员"))
        self.members = QTableWidget(0, 4)
        self.members.setHorizontalHeaderLabels(["姓名", "关系", "年龄", "今年状态"])
        self._table_style(self.members)
        self.members.itemActivated.connect(self._activated)
        layout.addWidget(self.members, 2)

        layout.addWidget(QLabel("走访记录"))
        # A list, not a table: a visit reads as a sentence and the panel is narrow.
        self.visits = QListWidget()
        self.visits.setWordWrap(True)
        self.visits.setAlternatingRowColors(True)
        layout.addWidget(self.visits, 3)

    @staticmethod
    def _table_style(table: QTableWidget) -> None:
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setAlternatingRowColors(True)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.setWordWrap(False)

    def show_household(self, gid: str | None) -> None:
        conn = self.session.store.conn
        self.detail = household_detail(conn, gid, self.session.year) if gid else None
        d = self.detail
        if d is None:
            self.title.setText("请选择一个人")
            self.info.setText("")
            self.members.setRowCount(0)
            self.visits.clear()
            return
        head = next((m.name for m in d.members if m.gid == d.head_gid), None)
        self.title.setText(f"{d.number or ''}户 {head or '（未设户主）'}")
        parts = [d.place]
        if d.address:
            parts.append(d.address)
        line2 = []
        if d.phone:
            line2.append(f"电话 {d.phone}")
        if d.worker:
            line2.append(f"网格员 {d.worker}")
        self.info.setText("　".join(parts) + ("\n" + "　".join(line2) if line2 else ""))
        today = dt.date.today()
        self.members.setRowCount(len(d.members))
        for i, m in enumerate(d.members):
            status = Status.label_of(m.status) + ("（断保）" if m.lapsed else "")
            age = m.age(today)
            cells = [_item(m.name), _item(Relation.label_of(m.relation)),
                     _item("" if age is None else str(age)),
                     _item(status, STATUS_COLOURS.get(m.status or ""))]
            cells[0].setToolTip(idcard.mask(m.id_number) if m.id_number else "无身份证号")
            cells[0].setData(Qt.ItemDataRole.UserRole, m.gid)
            for col, cell in enumerate(cells):
                self.members.setItem(i, col, cell)
        self.visits.clear()
        if not d.visits:
            self.visits.addItem("还没有走访记录")
        for v in d.visits:
            head = " · ".join(x for x in (
                v.date, VisitMethod.label_of(v.method), VisitOutcome.label_of(v.outcome),
                Reason.label_of(v.reason)) if x)
            lines = [head]
            detail = []
            if v.person_name:
                detail.append(f"对象：{v.person_name}")
            if v.next_date:
                detail.append(f"下次回访 {v.next_date}")
            if detail:
                lines.append("　".join(detail))
            if v.note:
                lines.append(v.note)
            item = QListWidgetItem("\n".join(lines))
            item.setToolTip(f"走访人：{v.visitor or '未记'}")
            self.visits.addItem(item)

    def refresh(self) -> None:
        self.show_household(self.detail.gid if self.detail else None)

    def _activated(self, item: QTableWidgetItem) -> None:
        gid = self.members.item(item.row(), 0).data(Qt.ItemDataRole.UserRole)
        if gid:
            self.member_activated.emit(gid)
