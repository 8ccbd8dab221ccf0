"""The person table of the ledger screen: a lazy model over SQL.

It holds only the ordered person ids (an array of 8-byte ints: 8 MB for a
million persons) and fetches display rows a block at a time as the view asks
for them. The first page comes from a LIMIT query on the GUI thread so the
table paints at once; the full id list streams in from a worker thread.
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from core import idcard
from core.domain import LastYear, Relation, Status, SubsidyCategory
from core.personlist import PersonFilter, PersonRow, first_ids, iter_ids, rows_for
from core.store import open_reader
from ui.tasks import Task, TaskContext, start

COLUMNS = ("姓名", "身份证号", "年龄", "与户主关系", "户主", "组", "今年状态", "上年状态",
           "特殊群体", "最近走访", "下次回访")
BLOCK = 100
FIRST_PAGE = 200
GID_ROLE = Qt.ItemDataRole.UserRole + 1
ROW_ROLE = Qt.ItemDataRole.UserRole + 2

STATUS_COLOURS = {
    Status.UNPAID.value: "#b42318", Status.SUBSIDY_PENDING.value: "#b54708",
    Status.CLAIMED.value: "#175cd3", Status.CONFIRMED.value: "#027a48",
    Status.SUBSIDIZED.value: "#027a48", Status.ELSEWHERE.value: "#475467",
    Status.EXCLUDED.value: "#98a2b3",
}


def _load_ids(ctx: TaskContext, db_path: str, f: PersonFilter) -> int:
    conn = open_reader(db_path)
    total = 0
    try:
        for chunk in iter_ids(conn, f):
            total += len(chunk)
            ctx.partial(chunk)
        return total
    finally:
        conn.close()


class PersonTableModel(QAbstractTableModel):
    loading_changed = Signal(bool)   # True while the full list is streaming in
    count_changed = Signal(int)

    def __init__(self, session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.conn = session.store.conn
        self.db_path = str(session.store.path)
        self.filter = PersonFilter(year=session.year)
        self.ids = array("q")
        self._streamed = 0            # how many ids of the streaming list we have seen
        self._blocks: OrderedDict[int, dict[int, PersonRow]] = OrderedDict()
        self._task: Task | None = None
        self._generation = 0
        self._today = dt.date.today()
        self.loading = False
        self.full_id = False

    # --- loading -------------------------------------------------------------

    def set_filter(self, f: PersonFilter) -> None:
        self.filter = f
        self.reload()

    def reload(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._generation += 1
        self.beginResetModel()
        self.ids = array("q", first_ids(self.conn, self.filter, FIRST_PAGE))
        self._streamed = 0
        self._blocks.clear()
        self._today = dt.date.today()
        self.endResetModel()
        self.count_changed.emit(len(self.ids))
        if len(self.ids) < FIRST_PAGE:
            self._set_loading(False)
            return  # the first page was everything
        generation = self._generation
        task = Task(_load_ids, self.db_path, self.filter)
        task.signals.partial.connect(lambda chunk: self._chunk(generation, chunk))
        task.signals.finished.connect(lambda total: self._done(generation, total))
        task.signals.failed.connect(lambda msg: self._done(generation, None, msg))
        self._task = start(task)
        self._set_loading(True)

    def _chunk(self, generation: int, chunk: list[int]) -> None:
        if generation != self._generation or self.session.closed:
            return
        start_at = self._streamed
        self._streamed += len(chunk)
        have = len(self.ids)
        if start_at == 0 and list(self.ids[:min(have, len(chunk))]) != chunk[:have]:
            # The ledger changed between the first page and this query (a tick
            # took someone out of the 未缴 list, an import added people): the
            # streamed list is the truth; show it and let the page reselect.
            self.beginResetModel()
            self.ids = array("q", chunk)
            self._blocks.clear()
            self.endResetModel()
            self.count_changed.emit(len(self.ids))
            return
        if self._streamed <= have:
            return  # still inside the first page we already show
        fresh = chunk[max(0, have - start_at):]
        self.beginInsertRows(QModelIndex(), have, have + len(fresh) - 1)
        self.ids.extend(fresh)
        self.endInsertRows()
        self.count_changed.emit(len(self.ids))

    def _done(self, generation: int, total: int | None, message: str | None = None) -> None:
        if generation != self._generation or self.session.closed:
            return
        self._task = None
        self._set_loading(False)
        if message:
            self.session.message.emit(message)

    def _set_loading(self, value: bool) -> None:
        self.loading = value
        self.loading_changed.emit(value)

    def wait_loaded(self) -> bool:
        return not self.loading

    def refresh_rows(self) -> None:
        """After a write: drop cached rows and repaint (the view re-reads only
        what is on screen). The list itself keeps its members until refiltered,
        so a ticked person stays in place and can be unticked."""
        self._blocks.clear()
        if self.ids:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.ids) - 1,
                                                               len(COLUMNS) - 1))

    # --- access --------------------------------------------------------------

    def row_at(self, row: int) -> PersonRow | None:
        if not 0 <= row < len(self.ids):
            return None
        block = row // BLOCK
        rows = self._blocks.get(block)
        if rows is None:
            ids = self.ids[block * BLOCK:(block + 1) * BLOCK]
            rows = rows_for(self.conn, ids, self.filter.year)
            self._blocks[block] = rows
            if len(self._blocks) > 64:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(block)
        return rows.get(self.ids[row])

    def row_of(self, person_id: int) -> int:
        try:
            return self.ids.index(person_id)
        except ValueError:
            return -1

    # --- Qt model ------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.ids)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
                return COLUMNS[section]
            if orientation == Qt.Orientation.Vertical:
                return str(section + 1)
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole,
                        Qt.ItemDataRole.ToolTipRole, GID_ROLE, ROW_ROLE,
                        Qt.ItemDataRole.TextAlignmentRole):
            return None
        r = self.row_at(index.row())
        if r is None:
            return None
        col = index.column()
        if role == GID_ROLE:
            return r.gid
        if role == ROW_ROLE:
            return r
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return (Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter) if col == 2 \
                else None
        if role == Qt.ItemDataRole.ForegroundRole:
            if r.deleted:
                return QBrush(QColor("#98a2b3"))
            if col == 6 and r.status in STATUS_COLOURS:
                return QBrush(QColor(STATUS_COLOURS[r.status]))
            if col == 10 and r.next_follow_up and \
                    r.next_follow_up <= self._today.isoformat() and r.status in (
                        Status.UNPAID.value, Status.SUBSIDY_PENDING.value):
                return QBrush(QColor("#b42318"))
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 1 and r.id_number:
                return "选中后按 Ctrl+Shift+I 可显示完整号码" if not self.full_id else r.id_number
            if col == 6 and r.lapsed:
                return "断保：上年已参保，今年尚未缴费"
            return None
        return self._text(r, col)

    def _text(self, r: PersonRow, col: int) -> str:
        if col == 0:
            return r.name + ("（已删除）" if r.deleted else "")
        if col == 1:
            return (r.id_number if self.full_id else idcard.mask(r.id_number)) \
                if r.id_number else "（无）"
        if col == 2:
            age = r.age(self._today)
            return "" if age is None else str(age)
        if col == 3:
            return Relation.label_of(r.relation)
        if col == 4:
            return r.head_name or ""
        if col == 5:
            return self.session.unit_name(r.group_code)
        if col == 6:
            text = Status.label_of(r.status) if r.status else "—"
            return text + "（断保）" if r.lapsed else text
        if col == 7:
            return LastYear.label_of(r.last_year_status)
        if col == 8:
            return "、".join(SubsidyCategory.label_of(c) for c in (r.categories or "").split(",")
                            if c)
        if col == 9:
            return r.last_visit or ""
        if col == 10:
            return r.next_follow_up or ""
        return ""
