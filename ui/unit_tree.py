"""The unit tree (county → township → village → group) with progress counts.

A plain QAbstractItemModel over Python nodes rather than QStandardItemModel:
a county has a few thousand units, and PySide6 6.12's QStandardItem.setData
and appendRow drop a reference to None on every call, which after enough
reloads deallocates None and kills the process.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from core.stats import UnitCounts, children_of

COLUMNS = ("单位", "总人数", "已参保", "未缴", "断保", "目标", "完成率")
CODE_ROLE = Qt.ItemDataRole.UserRole + 1
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def rate_colour(rate: float) -> str:
    # Same colours as the bulletin: behind pace red, on track green.
    return "#b42318" if rate < 0.4 else ("#b54708" if rate < 0.7 else "#027a48")


class _Node:
    __slots__ = ("counts", "parent", "children", "row")

    def __init__(self, counts: UnitCounts | None, parent: "_Node | None", row: int) -> None:
        self.counts = counts
        self.parent = parent
        self.children: list[_Node] = []
        self.row = row


class UnitTreeModel(QAbstractItemModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._root = _Node(None, None, 0)
        self._brushes: dict[str, QBrush] = {}

    def load(self, units: dict[str, UnitCounts]) -> None:
        self.beginResetModel()
        self._root = _Node(None, None, 0)
        tree = children_of(units)

        def add(parent: _Node, code: str) -> None:
            node = _Node(units[code], parent, len(parent.children))
            parent.children.append(node)
            for child in tree.get(code, ()):
                add(node, child)

        for code in tree.get(None, ()):
            add(self._root, code)
        self.endResetModel()

    def _node(self, index: QModelIndex | QPersistentModelIndex) -> _Node:
        return index.internalPointer() if index.isValid() else self._root

    # --- Qt model ------------------------------------------------------------

    def index(self, row: int, column: int,
              parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:
        node = self._node(parent)
        if 0 <= row < len(node.children) and 0 <= column < len(COLUMNS):
            return self.createIndex(row, column, node.children[row])
        return QModelIndex()

    def parent(self, index: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        node: _Node = index.internalPointer()
        up = node.parent
        if up is None or up is self._root:
            return QModelIndex()
        return self.createIndex(up.row, 0, up)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._node(parent).children)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(COLUMNS)):
            return COLUMNS[section]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        u: UnitCounts = index.internalPointer().counts
        col = index.column()
        if role == CODE_ROLE:
            return u.code
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return u.name
            if col == 6:
                return "—" if u.rate is None else f"{u.rate:.1%}"
            value = (u.total, u.enrolled, u.unpaid, u.lapsed, u.target)[col - 1]
            return "—" if value is None else f"{value:,}"
        if role == Qt.ItemDataRole.TextAlignmentRole and col > 0:
            return _RIGHT
        if role == Qt.ItemDataRole.ToolTipRole and col == 0:
            return f"{u.name}（代码 {u.code}）"
        if role == Qt.ItemDataRole.ForegroundRole and col == 6 and u.rate is not None:
            colour = rate_colour(u.rate)
            if colour not in self._brushes:
                self._brushes[colour] = QBrush(QColor(colour))
            return self._brushes[colour]
        return None
