"""台账: the grid worker's screen — units, persons, one household, and ticking."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
    QMenu, QMessageBox, QPushButton, QSplitter, QTableView, QToolButton, QTreeView,
    QVBoxLayout, QWidget,
)

from core.domain import Level, Status
from core.errors import CbtError
from core.personlist import UNPAID, PersonFilter, PersonRow
from core.policy import load_policy
from core.search import search
from core.stats import UnitCounts, tree_counts
from core.store import open_reader
from ui.dialogs import (
    ElsewhereDialog, ExcludeDialog, HouseholdDialog, PaymentDialog, PersonDialog,
    SubsidyDialog, VisitDialog,
)
from ui.household_panel import HouseholdPanel
from ui.person_model import COLUMNS, PersonTableModel
from ui.tasks import Task, TaskContext, start
from ui.unit_tree import CODE_ROLE, UnitTreeModel

SEARCH_LIMIT = 500
PAID_STATES = {Status.CLAIMED.value, Status.CONFIRMED.value, Status.SUBSIDIZED.value}


def load_tree(ctx: TaskContext, db_path: str, year: int) -> dict[str, UnitCounts]:
    conn = open_reader(db_path)
    try:
        return tree_counts(conn, year)
    finally:
        conn.close()


class PersonTable(QTableView):
    """Typing on the table starts a search instead of Qt's type-to-find, which
    would walk every row of a lazy million-row model."""

    typed = Signal(str)

    def keyboardSearch(self, search: str) -> None:  # noqa: N802 - Qt's name
        if search.strip():
            self.typed.emit(search)


class LedgerPage(QWidget):
    counts_loaded = Signal()

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.policy = load_policy(session.year)
        self._tree_task: Task | None = None
        self._units: dict[str, UnitCounts] = {}

        # --- unit tree ---
        self.tree_model = UnitTreeModel(self)
        self.tree = QTreeView()
        self.tree.setModel(self.tree_model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setIndentation(12)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, self.tree_model.columnCount()):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
            # Narrow: persons, unpaid and rate are what a worker scans for.
            self.tree.setColumnHidden(col, col not in (3, 6))
        self.tree.selectionModel().currentChanged.connect(self._unit_chosen)

        # --- filters ---
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("查找：姓名、身份证号、电话或拼音首字母（Ctrl+F）")
        self.search_box.setClearButtonEnabled(True)
        self.search_hint = QLabel()
        self.search_timer = QTimer(self)
        self.search_timer.setSingleShot(True)
        self.search_timer.setInterval(200)
        self.search_timer.timeout.connect(self.apply_filter)
        self.search_box.textChanged.connect(lambda _: self.search_timer.start())
        self.search_box.returnPressed.connect(self._search_enter)

        self.status_combo = QComboBox()
        self.status_combo.addItem("全部状态", None)
        self.status_combo.addItem("未缴（含资助待到账）", "unpaid_all")
        for s in (Status.UNPAID, Status.CLAIMED, Status.CONFIRMED, Status.ELSEWHERE,
                  Status.EXCLUDED, Status.SUBSIDY_PENDING, Status.SUBSIDIZED):
            self.status_combo.addItem(s.label, s.value)
        self.lapsed_check = QCheckBox("只看断保")
        self.special_check = QCheckBox("特殊群体")
        self.never_check = QCheckBox("从未走访")
        self.due_check = QCheckBox("回访到期")
        self.worker_combo = QComboBox()
        self.worker_combo.addItem("全部网格员", None)
        for w in (self.status_combo, self.worker_combo):
            w.currentIndexChanged.connect(self.apply_filter)
        for c in (self.lapsed_check, self.special_check, self.never_check, self.due_check):
            c.toggled.connect(self.apply_filter)

        self.search_box.setMinimumWidth(240)
        filters = QHBoxLayout()
        filters.addWidget(self.search_box, 1)
        filters.addWidget(self.status_combo)
        filters.addWidget(self.worker_combo)
        checks = QHBoxLayout()
        for c in (self.lapsed_check, self.special_check, self.never_check, self.due_check):
            checks.addWidget(c)
        checks.addStretch(1)

        # --- table ---
        self.model = PersonTableModel(session, self)
        self.table = PersonTable()
        self.table.typed.connect(self._typed_on_table)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.horizontalHeader().setHighlightSections(False)
        # Never narrower than the header's own text: fixed pixels cut 与户主关系
        # off under a wider CJK font.
        header = self.table.horizontalHeader()
        for col, width in enumerate((58, 160, 34, 60, 56, 52, 96, 50, 70, 80, 80)):
            self.table.setColumnWidth(col, max(width, header.sectionSizeHint(col)))
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        # Enter or double-click: the payment form (Space ticks with the defaults).
        self.table.activated.connect(lambda _: self.pay_details())
        self.model.count_changed.connect(self._update_count)
        self.model.rowsInserted.connect(self._select_pending)
        self.model.loading_changed.connect(self._select_pending)
        self.model.modelReset.connect(self._select_pending)
        self._pending_person: int | None = None
        self.model.loading_changed.connect(self._update_count)
        self.model.modelReset.connect(self._after_reset)
        self.count_label = QLabel()

        # --- actions ---
        self.actions_: dict[str, QAction] = {}
        self._action("tick", "标记已缴", "Space", self.tick, "标记已缴（今天，上次用的渠道）；空格键")
        self._action("pay", "已缴…", "Ctrl+P", self.pay_details, "选择缴费渠道、档次和日期")
        self._action("household_paid", "全户已缴", "Ctrl+Shift+P", self.household_paid)
        self._action("visit", "记走访…", "Ctrl+R", self.record_visit)
        self._action("elsewhere", "外地参保…", None, self.mark_elsewhere)
        self._action("exclude", "剔除…", None, self.exclude)
        self._action("subsidy", "特殊群体资助…", None, self.set_subsidy)
        self._action("clear", "取消标记", None, self.clear_marks,
                     "取消已缴(自报)、外地参保、剔除或资助标记")
        self._action("move_in", "迁入本户…", None, self.move_in,
                     "把已登记在别处的人（按身份证号）迁入选中的这一户")
        self._action("add_person", "新增成员…", "Ctrl+N", self.add_person)
        self._action("edit_person", "编辑人员…", "F2", self.edit_person)
        self._action("add_household", "新增户…", "Ctrl+Shift+N", self.add_household)
        self._action("edit_household", "编辑户…", None, self.edit_household)
        self._action("full_id", "显示完整身份证号", "Ctrl+Shift+I", self.toggle_full_id)
        self.actions_["full_id"].setCheckable(True)
        # Space belongs to the table only: in a text box it must type a space.
        tick = self.actions_["tick"]
        tick.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.table.addAction(tick)

        buttons = QHBoxLayout()
        for key in ("tick", "pay", "household_paid", "visit"):
            button = QPushButton(self.actions_[key].text())
            button.setToolTip(self.actions_[key].toolTip())
            button.clicked.connect(self.actions_[key].trigger)
            button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            buttons.addWidget(button)
        more = QToolButton()
        more.setText("更多")
        more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(more)
        for key in ("elsewhere", "exclude", "subsidy", "clear", None, "add_person", "move_in",
                    "edit_person", "add_household", "edit_household", None, "full_id"):
            if key is None:
                menu.addSeparator()
            else:
                menu.addAction(self.actions_[key])
        more.setMenu(menu)
        buttons.addWidget(more)
        buttons.addStretch(1)
        buttons.addWidget(self.count_label)

        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(0, 0, 0, 0)
        center_layout.addLayout(filters)
        center_layout.addLayout(checks)
        center_layout.addWidget(self.search_hint)
        self.search_hint.hide()
        center_layout.addWidget(self.table, 1)
        center_layout.addLayout(buttons)

        self.panel = HouseholdPanel(session)
        self.panel.member_activated.connect(self.select_person)

        splitter = QSplitter()
        splitter.addWidget(self.tree)
        splitter.addWidget(center)
        splitter.addWidget(self.panel)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setSizes([250, 760, 280])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)

        self.setTabOrder(self.search_box, self.status_combo)
        self.setTabOrder(self.status_combo, self.worker_combo)
        self.setTabOrder(self.worker_combo, self.table)

        session.changed.connect(self._changed)
        self.counts_timer = QTimer(self)
        self.counts_timer.setSingleShot(True)
        self.counts_timer.setInterval(300)
        self.counts_timer.timeout.connect(self.reload_counts)
        self.unit: str | None = session.scope or None
        self._refill_workers()
        self.apply_filter()
        self.reload_counts()

    # --- helpers -------------------------------------------------------------

    def _action(self, key: str, text: str, keys: str | None, slot, tip: str | None = None) -> None:
        action = QAction(text, self)
        if keys:
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.setToolTip(tip or text + (f"（{keys}）" if keys else ""))
        action.triggered.connect(slot)
        self.addAction(action)
        self.actions_[key] = action

    def current(self) -> PersonRow | None:
        index = self.table.currentIndex()
        return self.model.row_at(index.row()) if index.isValid() else None

    def _need_person(self) -> PersonRow | None:
        row = self.current()
        if row is None:
            self.session.message.emit("请先在列表中选中一个人")
        return row

    def _write(self, text: str, fn) -> bool:
        ok, value = self.session.try_write(text, fn)
        if not ok:
            QMessageBox.warning(self, "未保存", value)
        return ok

    def _dialog_write(self, dialog, text: str, fn) -> bool:
        """Open a form; on OK write through the ledger; a refusal keeps it open."""
        dialog.submit = lambda: self.session.write(text, lambda ledger: fn(ledger, dialog.values()))
        return bool(dialog.exec())

    # --- filters -------------------------------------------------------------

    def current_filter(self) -> PersonFilter:
        status = self.status_combo.currentData()
        statuses = UNPAID if status == "unpaid_all" else (frozenset({status}) if status
                                                          else frozenset())
        ids = None
        text = self.search_box.text().strip()
        self.search_hint.hide()
        if text:
            try:
                result = search(self.session.store.conn, text, limit=SEARCH_LIMIT,
                                unit_code=self.unit)
            except CbtError as exc:
                self.search_hint.setText(str(exc))
                self.search_hint.setStyleSheet("color: #b42318;")
                self.search_hint.show()
                result = None
            if result is not None:
                ids = tuple(result.ids)
                if result.more:
                    self.search_hint.setText(f"只显示前 {SEARCH_LIMIT} 个结果，请多输入几个字")
                    self.search_hint.setStyleSheet("color: #b54708;")
                    self.search_hint.show()
            else:
                ids = ()
        return PersonFilter(
            year=self.session.year, unit=self.unit, statuses=statuses,
            lapsed_only=self.lapsed_check.isChecked(),
            special_only=self.special_check.isChecked(),
            worker=self.worker_combo.currentData(), never_visited=self.never_check.isChecked(),
            follow_up_due=dt.date.today() if self.due_check.isChecked() else None, ids=ids)

    def apply_filter(self) -> None:
        keep = self.current()
        if keep is not None and self._pending_person is None:
            self._pending_person = keep.id
        self.model.set_filter(self.current_filter())
        self._select_pending()

    def _select_pending(self, *_: Any) -> None:
        """Select the person we were on (or were asked to show) once their row is
        in the list. While the list is still streaming in and they are not there
        yet, nothing is selected — so Space can never tick someone else."""
        pid = self._pending_person
        if pid is None:
            return
        row = self.model.row_of(pid)
        if row >= 0:
            self._pending_person = None
            self.table.setCurrentIndex(self.model.index(row, 0))
            self.table.selectRow(row)
            self.table.scrollTo(self.model.index(row, 0))
        elif self.model.loading:
            self.table.selectionModel().clearCurrentIndex()
            self.table.clearSelection()
        else:
            self._pending_person = None  # not in this list at all
            if self.model.rowCount():
                self.table.setCurrentIndex(self.model.index(0, 0))

    def _after_reset(self) -> None:
        if self._pending_person is not None:
            return  # _select_pending decides
        if self.model.rowCount() and not self.table.currentIndex().isValid():
            self.table.setCurrentIndex(self.model.index(0, 0))
        elif not self.model.rowCount():
            self.panel.show_household(None)

    def _search_enter(self) -> None:
        self.search_timer.stop()
        self.apply_filter()
        self.table.setFocus()

    def _typed_on_table(self, text: str) -> None:
        # The first key starts a new search; once typing has moved there, the
        # rest of the keys land in the search box itself.
        if self.search_box.hasFocus():
            self.search_box.insert(text[-1:])
        else:
            self.search_box.setFocus()
            self.search_box.setText(text[-1:])

    def focus_search(self) -> None:
        self.search_box.setFocus()
        self.search_box.selectAll()

    def _update_count(self, *_: Any) -> None:
        n = self.model.rowCount()
        self.count_label.setText(f"共 {n:,} 人" + ("（正在加载…）" if self.model.loading else ""))

    def _refill_workers(self) -> None:
        from core.personlist import workers

        current = self.worker_combo.currentData()
        self.worker_combo.blockSignals(True)
        self.worker_combo.clear()
        self.worker_combo.addItem("全部网格员", None)
        for name in workers(self.session.store.conn, self.unit):
            self.worker_combo.addItem(name, name)
        i = self.worker_combo.findData(current)
        self.worker_combo.setCurrentIndex(max(0, i))
        self.worker_combo.blockSignals(False)

    def _unit_chosen(self, index: QModelIndex, _previous: QModelIndex) -> None:
        code = self.tree_model.index(index.row(), 0, index.parent()).data(CODE_ROLE)
        if code == self.unit:
            return
        self.unit = code
        self._refill_workers()
        self.apply_filter()

    # --- counts --------------------------------------------------------------

    def reload_counts(self) -> None:
        if self._tree_task is not None:
            self._tree_task.cancel()
        task = Task(load_tree, str(self.session.store.path), self.session.year)
        task.signals.finished.connect(lambda units: self._show_counts(units, task))
        task.signals.failed.connect(lambda message: self._counts_failed(message, task))
        self._tree_task = start(task)

    def _counts_failed(self, message: str, task: Task) -> None:
        if task is self._tree_task:   # not a replaced reload's
            self._tree_task = None
            self.session.message.emit(message)

    def _show_counts(self, units: dict[str, UnitCounts], task: Task) -> None:
        if task is not self._tree_task:
            return   # a replaced reload that finished before its cancel reached it
        self._tree_task = None
        if self.session.closed:
            return
        first = not self._units
        self._units = units
        expanded = self._expanded_codes()
        self.tree.selectionModel().blockSignals(True)
        self.tree_model.load(units)
        self._restore(expanded if not first else None)
        self.tree.selectionModel().blockSignals(False)
        self.counts_loaded.emit()

    def _expanded_codes(self) -> set[str]:
        out = set()

        def walk(parent: QModelIndex) -> None:
            for row in range(self.tree_model.rowCount(parent)):
                index = self.tree_model.index(row, 0, parent)
                if self.tree.isExpanded(index):
                    out.add(index.data(CODE_ROLE))
                    walk(index)

        walk(QModelIndex())
        return out

    def _restore(self, expanded: set[str] | None) -> None:
        def walk(parent: QModelIndex, depth: int) -> None:
            for row in range(self.tree_model.rowCount(parent)):
                index = self.tree_model.index(row, 0, parent)
                code = index.data(CODE_ROLE)
                if (expanded is None and (depth < 2 or (self.unit or "").startswith(code))) \
                        or (expanded is not None and code in expanded):
                    self.tree.expand(index)
                if code == self.unit:
                    self.tree.selectionModel().setCurrentIndex(
                        index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                        | QItemSelectionModel.SelectionFlag.Rows)
                    self.tree.scrollTo(index)
                walk(index, depth + 1)

        walk(QModelIndex(), 0)

    # --- after a write -------------------------------------------------------

    def _changed(self, persons: set[str], households: set[str]) -> None:
        self.model.refresh_rows()
        self.panel.refresh()
        self.counts_timer.start()

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = self.model.row_at(current.row()) if current.isValid() else None
        hgid = row.household_gid if row else None
        if self.panel.detail is None or self.panel.detail.gid != hgid:
            self.panel.show_household(hgid)

    def select_person(self, gid: str) -> None:
        row = self.session.store.conn.execute("SELECT id FROM person WHERE gid=?",
                                              (gid,)).fetchone()
        if row is None:
            return
        self._pending_person = row[0]
        self._select_pending()

    def open_household(self, household_gid: str, unit_code: str) -> None:
        """Show a household (from the follow-up queue): its group, its head selected."""
        self.search_box.blockSignals(True)
        self.search_box.clear()
        self.search_box.blockSignals(False)
        for box in (self.lapsed_check, self.special_check, self.never_check, self.due_check):
            box.blockSignals(True)
            box.setChecked(False)
            box.blockSignals(False)
        for combo in (self.status_combo, self.worker_combo):
            combo.blockSignals(True)
            combo.setCurrentIndex(0)
            combo.blockSignals(False)
        self.unit = unit_code
        self._refill_workers()
        self._restore(self._expanded_codes() | {unit_code[:w] for w in (6, 9, 12)})
        member = self.session.store.conn.execute(
            "SELECT p.id FROM person p WHERE p.household_gid=? AND p.deleted=0 "
            "ORDER BY p.relation != 'head', p.birth_date LIMIT 1", (household_gid,)).fetchone()
        self._pending_person = member[0] if member else None
        self.apply_filter()
        self.panel.show_household(household_gid)
        self.table.setFocus()

    # --- ticking and marks ---------------------------------------------------

    def tick(self) -> None:
        row = self._need_person()
        if row is None:
            return
        if row.deleted:
            self.session.message.emit(f"{row.name} 已删除")
            return
        if row.status in PAID_STATES:
            self.session.message.emit(f"{row.name} 已是“{Status.label_of(row.status)}”，不用再标记")
            return
        if row.status in (Status.ELSEWHERE.value, Status.EXCLUDED.value):
            self.session.message.emit(
                f"{row.name} 已标记为“{Status.label_of(row.status)}”；如确已缴费，请先“取消标记”")
            return
        channel = self.session.setting("last_channel") or "wechat"
        self._write(f"标记已缴：{row.name}",
                    lambda ledger: ledger.claim_paid(row.gid, channel=channel))

    def pay_details(self) -> None:
        row = self._need_person()
        if row is None:
            return
        dialog = PaymentDialog(row.name, channel=self.session.setting("last_channel"),
                               tiers=self.policy.get("tiers", []), parent=self)

        def write(ledger, v):
            ledger.claim_paid(row.gid, channel=v["channel"], tier=v["tier"], date=v["date"])

        if self._dialog_write(dialog, f"标记已缴：{row.name}", write):
            self.session.set_settings(last_channel=dialog.values()["channel"])

    def household_paid(self) -> None:
        row = self._need_person()
        if row is None:
            return
        detail = self.panel.detail
        if detail is None:
            return
        todo = [m for m in detail.members if m.status in UNPAID]
        if not todo:
            self.session.message.emit("这一户没有未缴的成员")
            return
        channel = self.session.setting("last_channel") or "wechat"

        def write(ledger):
            for m in todo:
                ledger.claim_paid(m.gid, channel=channel)

        self._write(f"全户已缴：{detail.number}户 {len(todo)}人", write)

    def clear_marks(self) -> None:
        row = self._need_person()
        if row is None:
            return

        def write(ledger):
            if row.status == Status.CLAIMED.value:
                ledger.retract_claim(row.gid)
            elif row.status == Status.ELSEWHERE.value:
                ledger.clear_elsewhere(row.gid)
            elif row.status == Status.EXCLUDED.value:
                ledger.clear_exclusion(row.gid)
            elif row.status in (Status.SUBSIDY_PENDING.value, Status.SUBSIDIZED.value):
                ledger.clear_subsidy(row.gid)
            else:
                raise CbtError("该人员没有可取消的标记（税务已确认的以税务名单为准）")

        self._write(f"取消标记：{row.name}", write)

    def mark_elsewhere(self) -> None:
        row = self._need_person()
        if row:
            self._dialog_write(ElsewhereDialog(row.name, self), f"外地参保：{row.name}",
                               lambda ledger, v: ledger.mark_elsewhere(row.gid, **v))

    def exclude(self) -> None:
        row = self._need_person()
        if row:
            self._dialog_write(ExcludeDialog(row.name, self), f"剔除：{row.name}",
                               lambda ledger, v: ledger.exclude(row.gid, **v))

    def set_subsidy(self) -> None:
        row = self._need_person()
        if row:
            self._dialog_write(SubsidyDialog(row.name, self.policy.get("subsidy_rules", []),
                                             self),
                               f"特殊群体资助：{row.name}",
                               lambda ledger, v: ledger.set_subsidy(row.gid, **v))

    def record_visit(self) -> None:
        row = self.current()
        detail = self.panel.detail
        if detail is None:
            self.session.message.emit("请先选中一户")
            return
        members = [(m.gid, m.name) for m in detail.members]
        dialog = VisitDialog(f"{detail.number}户", members, self,
                             person_gid=row.gid if row else None)
        unpaid = {m.gid for m in detail.members if m.status in UNPAID}

        def write(ledger, v):
            paid_now = v.pop("paid_now", False)
            ledger.record_visit(detail.gid, **v)
            if paid_now:  # 当场缴费: tick who paid in the same step
                who = [v["person_gid"]] if v.get("person_gid") else sorted(unpaid)
                for gid in who:
                    if gid in unpaid:
                        ledger.claim_paid(gid, date=v["date"])

        # A visit is a record of what happened: saved for good, not on the undo stack.
        dialog.submit = lambda: self.session.write(f"走访：{detail.number}户",
                                                   lambda ledger: write(ledger, dialog.values()),
                                                   undoable=False)
        dialog.exec()

    def toggle_full_id(self, on: bool) -> None:
        self.model.full_id = on
        self.model.refresh_rows()

    # --- add and edit --------------------------------------------------------

    def _duplicate_check(self, except_gid: str | None = None):
        ledger = self.session.ledger

        def check(number: str) -> str | None:
            row = self.session.store.conn.execute(
                "SELECT gid, name FROM person WHERE id_number=? AND deleted=0 AND gid IS NOT ?",
                (number, except_gid)).fetchone()
            return f"身份证号已登记在 {ledger.where_is(row[0])}，姓名 {row[1]}" if row else None

        return check

    def add_person(self) -> None:
        detail = self.panel.detail
        if detail is None:
            self.session.message.emit("请先选中要加入的那一户")
            return
        dialog = PersonDialog(f"新增成员 — {detail.number}户",
                              check_duplicate=self._duplicate_check(), parent=self)
        if self._dialog_write(dialog, "新增成员",
                              lambda ledger, v: ledger.add_person(detail.gid, **v)):
            gid = dialog.result_value
            self.apply_filter()
            if gid:
                self.select_person(gid)

    def move_in(self) -> None:
        """Someone moving in: find them by ID number wherever they are registered."""
        from PySide6.QtWidgets import QInputDialog

        from core import idcard

        detail = self.panel.detail
        if detail is None:
            self.session.message.emit("请先选中要迁入的那一户")
            return
        text, ok = QInputDialog.getText(self, "迁入本户", f"迁入 {detail.number}户 的人的身份证号：")
        if not ok or not text.strip():
            return
        try:
            number = idcard.normalize(text)
        except CbtError as exc:
            QMessageBox.warning(self, "迁入本户", str(exc))
            return
        row = self.session.store.conn.execute(
            "SELECT gid, name, household_gid FROM person WHERE id_number=? AND deleted=0",
            (number,)).fetchone()
        if row is None:
            QMessageBox.information(self, "迁入本户", "台账中没有这个身份证号，请用“新增成员”登记。")
            return
        if row[2] == detail.gid:
            self.session.message.emit(f"{row[1]} 已在本户")
            return
        where = self.session.ledger.where_is(row[0])
        if QMessageBox.question(self, "迁入本户", f"{row[1]} 现登记在 {where}。\n迁入 "
                                f"{detail.number}户？") != QMessageBox.StandardButton.Yes:
            return
        if self._write(f"迁入本户：{row[1]}", lambda ledger: ledger.move_person(row[0], detail.gid)):
            self._pending_person = None
            self.apply_filter()
            self.select_person(row[0])

    def edit_person(self) -> None:
        row = self._need_person()
        if row is None:
            return
        person = dict(zip(("name", "id_number", "relation", "phone", "categories", "notes"),
                          self.session.store.conn.execute(
                              "SELECT name, id_number, relation, phone, categories, notes "
                              "FROM person WHERE gid=?", (row.gid,)).fetchone()))
        dialog = PersonDialog(f"编辑人员 — {row.name}",
                              check_duplicate=self._duplicate_check(row.gid), person=person,
                              parent=self)
        self._dialog_write(dialog, f"编辑人员：{row.name}",
                           lambda ledger, v: ledger.edit_person(row.gid, **v))

    def _groups(self) -> list[tuple[str, str]]:
        under = self.unit or self.session.scope or ""
        rows = self.session.store.conn.execute(
            "SELECT gid FROM unit WHERE level=? AND deleted=0 AND gid >= ? AND gid < ? "
            "ORDER BY gid", (Level.GROUP.value, under, under + "\uffff")).fetchall()
        return [(code, self.session.place(code)) for (code,) in rows]

    def add_household(self) -> None:
        groups = self._groups()
        if not groups:
            self.session.message.emit("请先在左侧选中一个村或组")
            return
        group = self.unit if self.unit and len(self.unit) == 15 else None
        dialog = HouseholdDialog("新增户", groups, group=group, parent=self)

        def write(ledger, v):
            unit = v.pop("unit_code")
            return ledger.add_household(unit, **v)

        if self._dialog_write(dialog, "新增户", write):
            gid = dialog.result_value
            self.panel.show_household(gid)
            QMessageBox.information(self, "新增户", "已新增户。请接着“新增成员”，先录入户主。")

    def edit_household(self) -> None:
        detail = self.panel.detail
        if detail is None:
            return
        household = {"unit_code": detail.unit_code, "number": detail.number,
                     "address": detail.address, "phone": detail.phone, "worker": detail.worker}
        dialog = HouseholdDialog(f"编辑户 — {detail.number}户", self._groups() or [
            (detail.unit_code, detail.place)], household=household, parent=self)
        self._dialog_write(dialog, f"编辑户：{detail.number}户",
                           lambda ledger, v: ledger.edit_household(detail.gid, **v))

    def _context_menu(self, pos) -> None:
        if not self.table.indexAt(pos).isValid():
            return
        menu = QMenu(self)
        for key in ("tick", "pay", "household_paid", "visit", None, "elsewhere", "exclude",
                    "subsidy", "clear", None, "add_person", "edit_person", "edit_household"):
            if key is None:
                menu.addSeparator()
            else:
                menu.addAction(self.actions_[key])
        menu.exec(self.table.viewport().mapToGlobal(pos))


__all__ = ["LedgerPage", "COLUMNS"]
