"""首页: the installation's units with their progress counts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QHeaderView, QLabel, QTreeView, QVBoxLayout, QWidget

from core.stats import UnitCounts
from ui.unit_tree import COLUMNS, UnitTreeModel


class HomePage(QWidget):
    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 6)
        self.title = QLabel(f"{session.year}年度城乡居民医保参保进度")
        self.title.setStyleSheet("font-size: 18px; font-weight: bold;")
        layout.addWidget(self.title)

        summary = QHBoxLayout()
        self.cards: dict[str, QLabel] = {}
        for key, label in (("total", "应参保人数"), ("enrolled", "已参保"), ("unpaid", "未缴"),
                           ("lapsed", "断保"), ("rate", "完成率")):
            card = QLabel(f"{label}\n—")
            card.setAlignment(Qt.AlignmentFlag.AlignCenter)
            card.setStyleSheet("QLabel { border: 1px solid #d0d5dd; border-radius: 6px;"
                               " padding: 6px 18px; font-size: 14px; background: #f9fafb; }")
            card.setProperty("caption", label)
            self.cards[key] = card
            summary.addWidget(card)
        summary.addStretch(1)
        layout.addLayout(summary)

        self.model = UnitTreeModel(self)
        self.tree = QTreeView()
        self.tree.setModel(self.model)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.tree, 1)

    def show_counts(self, units: dict[str, UnitCounts]) -> None:
        self.model.load(units)
        # Open down to the villages; groups stay folded until asked for.
        for row in range(self.model.rowCount()):
            top = self.model.index(row, 0)
            self.tree.expand(top)
            for t in range(self.model.rowCount(top)):
                self.tree.expand(self.model.index(t, 0, top))
        scope = self.session.scope
        roots = [units[scope]] if scope in units else \
            [u for u in units.values() if len(u.code) == min(len(c) for c in units)]
        if not roots:
            return
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
