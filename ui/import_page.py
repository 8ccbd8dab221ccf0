"""导入: bring in a list (preview, correct the columns, map unknown villages,
import with progress and cancel, read the report); 导出: the tables people
exchange; 核对: ticks the tax bureau has not confirmed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
    QHeaderView, QLabel, QLineEdit, QMessageBox, QProgressBar, QPushButton, QSpinBox,
    QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget,
)

from core.domain import Department, SubsidyCategory
from core.errors import CbtError
from core.importer import (ImportOptions, ImportPlan, ImportReport, Kind, LedgerIds, prepare,
                           report_rows, run_import)
from core.ledger import Ledger
from core.store import checkpoint, open_reader, open_store
from core.tabular import FIELD_LABELS, SYNONYMS
from ui.tasks import Task, TaskContext, start


def _cell(text: Any) -> QTableWidgetItem:
    item = QTableWidgetItem("" if text is None else str(text))
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    return item


def _prepare_task(ctx: TaskContext, db_path: str, path: str, kind: str,
                  options: ImportOptions) -> ImportPlan:
    conn = open_reader(db_path)
    try:
        ctx.progress(0, 1, "正在读取文件…")
        plan = prepare(conn, path, kind, options)
    except BaseException:
        conn.close()
        raise
    # A paid list's ID hint keeps this connection, and with it the means to
    # tell whether anything was written since (core.importer.LedgerIds): if
    # not, the import, on a connection of its own, takes the hint's word.
    # The import task closes it (_let_go), or the next read does.
    if plan.ledger_ids is None:
        conn.close()
    return plan


def _import_task(ctx: TaskContext, db_path: str, plan: ImportPlan, options: ImportOptions,
                 operator: str) -> ImportPlan:
    hint = plan.ledger_ids   # the import lets go of it once read
    # Its own connection: the window's belongs to the GUI thread. The window
    # already holds the file lock, so this one does not take it again.
    store = open_store(db_path, lock=False)
    try:
        ledger = Ledger(store, operator=operator)
        # A cancel rolls the whole import back, unless it came during the commit.
        ctx.follow(run_import(ledger, plan, options))
        # The plan has run: keep its preview, not the whole parsed list (some
        # 400 MB for a county's), freed here rather than on the GUI thread.
        # To import the file again it is read again (which also says so if
        # it was imported before).
        plan.release_rows()
        return plan
    finally:
        store.close()
        _let_go(hint)


def _let_go(hint: LedgerIds | None) -> None:
    """Close the reading task's connection that came with an ID hint (see
    _prepare_task). A plan run again after a failure or a cancel keeps the
    hint's numbers, only not its word (core.importer._hint_holds)."""
    if hint is not None and hint.conn is not None:
        hint.conn.close()


def _checkpoint_task(ctx: TaskContext, db_path: str) -> None:
    # The import committed without copying its WAL into the database file
    # (core.store.checkpoint_later): that second or so runs here, after the
    # user has the report, instead of at the window's next edit.
    checkpoint(db_path)


class ImportTab(QWidget):
    imported = Signal()

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.plan: ImportPlan | None = None
        self._task: Task | None = None
        self._cancel_asked = False   # for the import running now

        self.path = QLineEdit()
        self.path.setReadOnly(True)
        self.path.setPlaceholderText("选择税务局或各部门发来的名单（.xlsx、.xls、.csv）")
        browse = QPushButton("选择文件…")
        browse.clicked.connect(self.browse)
        self.kind = QComboBox()
        for k in Kind:
            self.kind.addItem(k.label, k.value)
        self.department = QComboBox()
        self.department.addItem("（按名单或政策默认）", None)
        for d in Department:
            self.department.addItem(d.label, d.value)
        self.category = QComboBox()
        self.category.addItem("（按名单中的类别列）", None)
        for c in SubsidyCategory:
            self.category.addItem(c.label, c.value)
        self.read_button = QPushButton("读取并预览")
        self.read_button.clicked.connect(self.read)

        top = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        top.addRow("名单文件：", row)
        row2 = QHBoxLayout()
        row2.addWidget(self.kind)
        row2.addWidget(QLabel("来源部门："))
        row2.addWidget(self.department)
        row2.addWidget(QLabel("类别："))
        row2.addWidget(self.category)
        row2.addStretch(1)
        row2.addWidget(self.read_button)
        top.addRow("名单类型：", row2)

        self.header_label = QLabel()
        self.header_label.setWordWrap(True)
        self.mapping = QTableWidget(0, 2)
        self.mapping.setHorizontalHeaderLabels(["内容", "对应的列（可修改）"])
        self.mapping.verticalHeader().hide()
        self.mapping.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.mapping.setMaximumHeight(190)
        self.units = QTableWidget(0, 3)
        self.units.setHorizontalHeaderLabels(["名单中的村组", "行数", "对应台账中的组"])
        self.units.verticalHeader().hide()
        self.units.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.units.setMaximumHeight(190)
        self.preview = QTableWidget(0, 0)
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview.verticalHeader().hide()

        map_box = QGroupBox("列的对应")
        QVBoxLayout(map_box).addWidget(self.mapping)
        unit_box = QGroupBox("找不到的村组")
        QVBoxLayout(unit_box).addWidget(self.units)
        middle = QHBoxLayout()
        middle.addWidget(map_box, 1)
        middle.addWidget(unit_box, 1)

        self.run_button = QPushButton("开始导入")
        self.run_button.setEnabled(False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("取消")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.report_button = QPushButton("导出报告…")
        self.report_button.setEnabled(False)
        self.report_button.clicked.connect(self.save_report)
        self.undo_button = QPushButton("撤销本次导入")
        self.undo_button.setEnabled(False)
        self.undo_button.setToolTip("把这次导入新增和修改的全部撤回（撤销本身也记入变更记录）")
        self.undo_button.clicked.connect(self.undo_import)
        # Lists mask ID numbers (DESIGN §9); the clerk fixing a source file may
        # need them whole, in the table and in the exported report alike.
        self._shown_report: ImportReport | None = None   # what the table shows, if a report
        self.full_id = QCheckBox("显示完整身份证号")
        self.full_id.setToolTip("预览、导入报告及导出的报告中显示完整身份证号（默认打码）")
        self.full_id.toggled.connect(self._refill)
        actions = QHBoxLayout()
        actions.addWidget(self.run_button)
        actions.addWidget(self.cancel_button)
        actions.addWidget(self.progress, 1)
        actions.addWidget(self.full_id)
        actions.addWidget(self.report_button)
        actions.addWidget(self.undo_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.header_label)
        layout.addLayout(middle)
        self.table_title = QLabel("预览（前20行，导入时如此读取）：")
        layout.addWidget(self.table_title)
        layout.addWidget(self.preview, 1)
        layout.addLayout(actions)
        layout.addWidget(self.status)

    # --- steps ---------------------------------------------------------------

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "选择名单文件", str(Path.home()),
                                              "表格文件 (*.xlsx *.xls *.csv);;所有文件 (*)")
        if path:
            self.path.setText(path)
            self.read()

    def options(self) -> ImportOptions:
        options = ImportOptions(department=self.department.currentData(),
                                category=self.category.currentData(),
                                scope=self.session.scope or None)
        for r in range(self.units.rowCount()):
            combo = self.units.cellWidget(r, 2)
            if combo is not None and combo.currentData():
                options.unit_map[self.units.item(r, 0).text()] = combo.currentData()
        if self.plan is not None:
            for sp in self.plan.usable:
                options.mappings[sp.sheet.name] = dict(sp.header.mapping)
        return options

    def read(self) -> None:
        if not self.path.text():
            self.status.setText("请先选择文件")
            return
        if self._task is None and self.plan is not None:
            # (While an import runs, its task closes the connection itself.)
            _let_go(self.plan.ledger_ids)
        self.plan = None
        self.run_button.setEnabled(False)
        self.status.setText("正在读取…")
        self.progress.setRange(0, 0)
        task = Task(_prepare_task, str(self.session.store.path), self.path.text(),
                    self.kind.currentData(), ImportOptions(scope=self.session.scope or None))
        task.signals.finished.connect(self._show_plan)
        task.signals.failed.connect(self._failed)
        self._task = start(task)

    def _show_plan(self, plan: ImportPlan) -> None:
        self._task = None
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.plan = plan
        skipped = [sp.sheet.name for sp in plan.sheets if sp.header is None]
        lines = [f"工作表“{sp.sheet.name}”：表头在第 {sp.header.row + 1} 行"
                 for sp in plan.usable]
        if skipped:
            lines.append("没有找到表头、将跳过的工作表：" + "、".join(skipped))
        self.header_label.setText("；".join(lines))
        sp = plan.usable[0]
        fields = list(SYNONYMS)
        self.mapping.setRowCount(len(fields))
        for r, f in enumerate(fields):
            self.mapping.setItem(r, 0, _cell(FIELD_LABELS[f]))
            combo = QComboBox()
            combo.addItem("（无）", None)
            for c, title in enumerate(sp.header.titles):
                if title:
                    combo.addItem(f"第{c + 1}列：{title}", c)
            current = sp.header.mapping.get(f)
            combo.setCurrentIndex(max(0, combo.findData(current)) if current is not None else 0)
            combo.currentIndexChanged.connect(lambda _=0, f=f, combo=combo: self._remap(f, combo))
            self.mapping.setCellWidget(r, 1, combo)
        self._fill_units(plan)
        self._fill_preview(plan)
        self.run_button.setEnabled(True)
        self.run_button.setToolTip("")
        self.status.setText(f"已读取 {plan.path.name}。请核对列的对应和预览，然后开始导入。")

    def _remap(self, fieldname: str, combo: QComboBox) -> None:
        if self.plan is None:
            return
        for sp in self.plan.usable:
            column = combo.currentData()
            if column is None:
                sp.header.mapping.pop(fieldname, None)
            else:
                sp.header.mapping[fieldname] = column
        self._fill_preview(self.plan)

    def _fill_units(self, plan: ImportPlan) -> None:
        groups = self.session.store.conn.execute(
            "SELECT gid FROM unit WHERE level='group' AND deleted=0 AND gid >= ? AND gid < ? "
            "ORDER BY gid", (self.session.scope or "", (self.session.scope or "") + "\uffff"))
        choices = [(code, self.session.place(code)) for (code,) in groups]
        self.units.setRowCount(len(plan.unknown_units))
        for r, (name, count) in enumerate(plan.unknown_units.most_common()):
            self.units.setItem(r, 0, _cell(name))
            self.units.setItem(r, 1, _cell(count))
            combo = QComboBox()
            combo.addItem("（不导入这些行中的新人员）", None)
            for code, place in choices:
                combo.addItem(place, code)
            self.units.setCellWidget(r, 2, combo)

    def _refill(self) -> None:
        """The table again, after the full-ID box was toggled."""
        if self._shown_report is not None:
            self._fill_report(self._shown_report)
        elif self.plan is not None:
            self._fill_preview(self.plan)

    def _fill_preview(self, plan: ImportPlan) -> None:
        self._shown_report = None
        self.table_title.setText("预览（前20行，导入时如此读取）：")
        rows = plan.preview(20, full_id=self.full_id.isChecked())
        fields = sorted({f for _, _, values in rows for f in values},
                        key=lambda f: list(SYNONYMS).index(f) if f in SYNONYMS else 99)
        self.preview.setColumnCount(2 + len(fields))
        self.preview.setHorizontalHeaderLabels(["工作表", "行号"] +
                                               [FIELD_LABELS.get(f, f) for f in fields])
        self.preview.setRowCount(len(rows))
        for r, (sheet, number, values) in enumerate(rows):
            self.preview.setItem(r, 0, _cell(sheet))
            self.preview.setItem(r, 1, _cell(number))
            for c, f in enumerate(fields):
                self.preview.setItem(r, 2 + c, _cell(values.get(f, "")))
        self.preview.resizeColumnsToContents()

    def run(self) -> None:
        if self.plan is None:
            return
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.report_button.setEnabled(False)
        self._cancel_asked = False
        self.status.setText("正在导入…（保存完成前可以取消，取消后台账不变）")
        task = Task(_import_task, str(self.session.store.path), self.plan, self.options(),
                    self.session.operator)
        task.signals.progress.connect(self._progress)
        task.signals.finished.connect(self._done)
        task.signals.failed.connect(self._failed)
        task.signals.cancelled.connect(self._cancelled)
        self._task = start(task)

    def cancel(self) -> None:
        if self._task is not None:
            self._cancel_asked = True
            self.status.setText("正在取消…" if self._task.cancel()
                                else "来不及取消，导入已保存。")

    def _progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, total))
        self.status.setText(f"{text} {done:,}/{total:,}")

    def _done(self, plan: ImportPlan) -> None:
        self._task = None
        self.cancel_button.setEnabled(False)
        self.run_button.setEnabled(False)   # the plan's rows are released (_import_task)
        self.run_button.setToolTip("这份名单已经导入。如需再次导入，请先点“读取并预览”。")
        report = plan.report
        undoable = bool(report.txn and (report.new or report.updated))
        late = ""
        if self._cancel_asked:
            # The cancel came while the import was being saved: it undid nothing.
            late = "来不及取消，导入已保存" + ("（要撤回请点“撤销本次导入”）" if undoable
                                               else "") + "。"
        self.status.setText(late + report.summary())
        self._fill_report(report)
        self.report_button.setEnabled(True)
        self.undo_button.setEnabled(undoable)
        self.session.units_changed()
        self.session.changed.emit(set(), set())
        self.imported.emit()
        if self.session.store.path is not None:
            start(Task(_checkpoint_task, str(self.session.store.path)))

    def _fill_report(self, report: ImportReport) -> None:
        self._shown_report = report
        rows = report_rows(report, self.full_id.isChecked())
        self.preview.clear()
        self.preview.setColumnCount(len(rows[0]))
        self.preview.setHorizontalHeaderLabels(rows[0])
        self.preview.setRowCount(len(rows) - 1)
        for r, values in enumerate(rows[1:]):
            for c, v in enumerate(values):
                self.preview.setItem(r, c, _cell(v))
        self.preview.resizeColumnsToContents()
        # An empty table under a heading that promises rows reads like a fault.
        self.table_title.setText("导入报告：拒收和需核对的行（可导出为Excel）：" if len(rows) > 1
                                 else "导入报告：没有拒收或需核对的行。")

    def _cancelled(self) -> None:
        self._task = None
        self.cancel_button.setEnabled(False)
        self.run_button.setEnabled(True)
        self.progress.setValue(0)
        self.status.setText("已取消，台账没有任何改动。")

    def _failed(self, message: str) -> None:
        self._task = None
        self.cancel_button.setEnabled(False)
        self.run_button.setEnabled(self.plan is not None)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.status.setText(message)
        QMessageBox.warning(self, "导入", message)

    def undo_import(self) -> None:
        report = self.plan.report if self.plan else None
        if report is None or not report.txn:
            return
        if QMessageBox.question(self, "撤销本次导入", f"撤销“{report.file}”的这次导入？\n"
                                f"新增的 {report.new:,} 人将删除，更新的 {report.updated:,} 人"
                                "恢复原状。") != QMessageBox.StandardButton.Yes:
            return
        _, message = self._undo(report)
        self.status.setText(message)

    def _undo(self, report) -> tuple[bool, str]:
        try:
            result = self.session.write(f"撤销导入：{report.file}",
                                        lambda ledger: ledger.undo(report.txn), undoable=False)
        except CbtError as exc:
            return False, f"无法撤销：{exc}"
        self.undo_button.setEnabled(False)
        self.imported.emit()
        skipped = f"（{result.skipped} 项此后已被修改，保留了新值）" if result.skipped else ""
        return True, f"已撤销这次导入{skipped}"

    def save_report(self) -> None:
        if self.plan is None or self.plan.report is None:
            return
        default = str(Path(self.plan.path).with_name(self.plan.path.stem + "_导入报告.xlsx"))
        path, _ = QFileDialog.getSaveFileName(self, "保存导入报告", default, "Excel (*.xlsx)")
        if path:
            from core.export import write_rows

            write_rows(path, "导入报告", report_rows(self.plan.report, self.full_id.isChecked()),
                       [8, 12, 7, 18, 10, 21, 50])
            self.status.setText(f"报告已保存：{path}")


def _export_task(ctx: TaskContext, db_path: str, kind: str, path: str, year: int,
                 unit: str | None, full_id: bool) -> str:
    from core.export import export

    conn = open_reader(db_path)
    try:
        # A cancel removes the partial file, unless it came as the file was saved.
        ctx.follow(export(conn, kind, path, year=year, unit=unit, full_id=full_id))
        return path
    finally:
        conn.close()


class ExportTab(QWidget):
    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from core.export import LABELS

        self.session = session
        self._task: Task | None = None
        self.what = QComboBox()
        for key, label in LABELS.items():
            self.what.addItem(label, key)
        self.unit = QComboBox()
        scope = session.scope or ""
        for code, in session.store.conn.execute(
                "SELECT gid FROM unit WHERE deleted=0 AND level != 'group' AND gid >= ? "
                "AND gid < ? ORDER BY gid", (scope, scope + "\uffff")):
            self.unit.addItem(session.place(code) or session.unit_name(code), code)
        self.full_id = QCheckBox("导出完整身份证号（默认打码；仅在确有需要时使用）")
        self.button = QPushButton("导出…")
        self.button.clicked.connect(self.run)
        self.cancel_button = QPushButton("取消")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: self._task and self._task.cancel())
        self.progress = QProgressBar()
        self.status = QLabel()
        form = QFormLayout(self)
        form.addRow("内容：", self.what)
        form.addRow("单位：", self.unit)
        form.addRow("", self.full_id)
        row = QHBoxLayout()
        row.addWidget(self.button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress, 1)
        form.addRow(row)
        form.addRow(self.status)

    def run(self) -> None:
        label = self.what.currentText()
        default = str(Path.home() / f"{self.unit.currentText().replace(' ', '')}{label}"
                      f"_{dt.date.today():%Y%m%d}.xlsx")
        path, _ = QFileDialog.getSaveFileName(self, "导出到", default, "Excel (*.xlsx)")
        if not path:
            return
        if not path.lower().endswith(".xlsx"):
            path += ".xlsx"
        self.button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        task = Task(_export_task, str(self.session.store.path), self.what.currentData(), path,
                    self.session.year, self.unit.currentData(), self.full_id.isChecked())
        task.signals.progress.connect(lambda d, t, m: (self.progress.setRange(0, max(t, 1)),
                                                       self.progress.setValue(min(d, t)),
                                                       self.status.setText(f"{m} {d:,}/{t:,}")))
        task.signals.finished.connect(lambda p: self._end(f"已导出：{p}"))
        task.signals.failed.connect(lambda m: self._end(m))
        task.signals.cancelled.connect(lambda: self._end("已取消，没有生成文件。"))
        self._task = start(task)

    def _end(self, text: str) -> None:
        self._task = None
        self.button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.status.setText(text)


class ReconcileTab(QWidget):
    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.days = QSpinBox()
        self.days.setRange(1, 120)
        self.days.setValue(15)
        self.days.setSuffix(" 天")
        refresh = QPushButton("查询")
        refresh.clicked.connect(self.refresh)
        save = QPushButton("导出…")
        save.clicked.connect(self.save)
        self.summary = QLabel()
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["所在", "户号", "姓名", "自报缴费日期", "已过天数",
                                              "渠道"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hint = QLabel("导入税务局的已缴费名单后：名单上有的人已自动确认（含未勾选的）；"
                      "这里列出自报已缴、超过设定天数仍未被税务确认的人，请逐一核实。")
        hint.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("自报已缴超过"))
        top.addWidget(self.days)
        top.addWidget(QLabel("仍未确认"))
        top.addWidget(refresh)
        top.addWidget(save)
        top.addStretch(1)
        top.addWidget(self.summary)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        self.rows: list = []

    def refresh(self) -> None:
        from core.reconcile import unconfirmed_claims

        self.rows = unconfirmed_claims(self.session.store.conn, self.session.year,
                                       days=self.days.value(), unit=self.session.scope or None)
        shown = self.rows[:5000]
        self.table.setRowCount(len(shown))
        for r, c in enumerate(shown):
            for col, value in enumerate((c.place, c.household_number, c.name, c.claim_date,
                                         c.days, c.channel)):
                self.table.setItem(r, col, _cell(value))
        more = f"（显示前 {len(shown):,} 人，全部请导出）" if len(self.rows) > len(shown) else ""
        self.summary.setText(f"共 {len(self.rows):,} 人{more}")

    def save(self) -> None:
        from core import idcard
        from core.export import write_rows

        if not self.rows:
            self.refresh()
        path, _ = QFileDialog.getSaveFileName(self, "导出待核对名单",
                                              str(Path.home() / "待核对_自报未确认.xlsx"),
                                              "Excel (*.xlsx)")
        if path:
            write_rows(path, "待核对", [["所在", "户号", "姓名", "身份证号", "自报缴费日期",
                                          "已过天数", "渠道", "登记人"]] + [
                [c.place, c.household_number, c.name, idcard.mask(c.id_number or ""),
                 c.claim_date, c.days, c.channel, c.claim_by] for c in self.rows],
                [24, 7, 9, 21, 12, 8, 8, 9])
            self.summary.setText(f"已导出：{path}")


class ImportPage(QTabWidget):
    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.import_tab = ImportTab(session)
        self.export_tab = ExportTab(session)
        self.reconcile_tab = ReconcileTab(session)
        self.addTab(self.import_tab, "导入名单")
        self.addTab(self.export_tab, "导出表格")
        self.addTab(self.reconcile_tab, "税务核对")
        self.currentChanged.connect(
            lambda i: self.reconcile_tab.refresh() if self.widget(i) is self.reconcile_tab else None)


__all__ = ["ImportPage", "CbtError"]
