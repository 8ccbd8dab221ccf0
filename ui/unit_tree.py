"""The unit tree (county → township → village → group) with progress counts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel

from core.stats import UnitCounts, children_of

COLUMNS = ("单位", "总人数", "已参保", "未缴", "断保", "目标", "完成率")
CODE_ROLE = Qt.ItemDataRole.UserRole + 1


def _number(value: int | None) -> QStandardItem:
    item = QStandardItem("—" if value is None else f"{value:,}")
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    item.setEditable(False)
    return item


class UnitTreeModel(QStandardItemModel):
    """A few thousand units at most, so a standard item model is the right size;
    the person lists (a million rows) are lazy SQL models elsewhere."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))

    def load(self, units: dict[str, UnitCounts]) -> None:
        self.beginResetModel()
        self.blockSignals(True)
        try:
            self.removeRows(0, self.rowCount())
            tree = children_of(units)

            def add(parent: QStandardItem, code: str) -> None:
                parent.appendRow(self._row(units[code]))
                item = parent.child(parent.rowCount() - 1, 0)
                for child in tree.get(code, ()):
                    add(item, child)

            root = self.invisibleRootItem()
            for code in tree.get(None, ()):
                add(root, code)
        finally:
            self.blockSignals(False)
            self.endResetModel()

    @staticmethod
    def _row(u: UnitCounts) -> list[QStandardItem]:
        name = QStandardItem(u.name)
        name.setEditable(False)
        name.setData(u.code, CODE_ROLE)
        name.setToolTip(f"{u.name}（代码 {u.code}）")
        rate = u.rate
        rate_item = QStandardItem("—" if rate is None else f"{rate:.1%}")
        rate_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        rate_item.setEditable(False)
        if rate is not None:
            # Same colours as the bulletin: behind pace red, on track green.
            colour = "#b42318" if rate < 0.4 else ("#b54708" if rate < 0.7 else "#027a48")
            rate_item.setForeground(QBrush(QColor(colour)))
        return [name, _number(u.total), _number(u.enrolled), _number(u.unpaid),
                _number(u.lapsed), _number(u.target), rate_item]
