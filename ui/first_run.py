"""First run: who is using this laptop, for which unit."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QSpinBox, QWidget

from core.domain import CODE_LENGTH, Level, Role
from core.errors import ValidationError
from ui.dialogs import FormDialog

_NUMERALS = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十"] + [
    f"十{d}" for d in "一二三四五六七八九"] + ["二十"] + [f"二十{d}" for d in "一二三四五六七八九"] + ["三十"]

ROLE_LEVEL = {Role.VILLAGE.value: Level.VILLAGE, Role.TOWNSHIP.value: Level.TOWNSHIP,
              Role.COUNTY.value: Level.COUNTY}


class FirstRunDialog(FormDialog):
    """Role, unit and operator. With units in the database the unit is chosen
    from them; on an empty database the unit chain is typed in (codes and names
    as the county uses them) and created through the ledger service."""

    def __init__(self, session, parent: QWidget | None = None, *, title: str = "首次使用设置") -> None:
        super().__init__(title, parent)
        self.session = session
        conn = session.store.conn
        self.role = QComboBox()
        for r in Role:
            self.role.addItem(r.label, r.value)
        current = session.role
        if current:
            self.role.setCurrentIndex(max(0, self.role.findData(current)))
        self.unit = QComboBox()
        self.unit.setEditable(False)
        self.operator = QLineEdit(session.operator)
        self.operator.setPlaceholderText("您的姓名，记在每一条修改上")
        self.has_units = bool(conn.execute("SELECT 1 FROM unit LIMIT 1").fetchone())
        intro = QLabel("请选择本机的角色和单位，并填写操作员姓名。以后可在“设置”中修改。")
        intro.setWordWrap(True)
        self.form.addRow(intro)
        self.form.addRow("本机角色(&R)：", self.role)
        self.code = QLineEdit()
        self.name = QLineEdit()
        if self.has_units:
            self.form.addRow("单位(&U)：", self.unit)
        else:
            self.code.setPlaceholderText("如 村：12位代码；乡镇：9位；县：6位")
            self.name.setPlaceholderText("如：上家头村")
            self.parent_names = QLineEdit()
            self.parent_names.setPlaceholderText("上级单位名称，用空格分开，如：示范县 青山镇")
            self.groups = QSpinBox()
            self.groups.setRange(0, 30)
            self.groups.setValue(6)
            self.groups.setSuffix(" 个组")
            self.groups.setToolTip("村/社区下的组（网格），建成“第一组”“第二组”……，以后可改名")
            self.form.addRow("单位代码(&C)：", self.code)
            self.form.addRow("单位名称(&N)：", self.name)
            self.form.addRow("上级单位(&P)：", self.parent_names)
            self.form.addRow("下设组(&G)：", self.groups)
        self.form.addRow("操作员(&O)：", self.operator)
        self.role.currentIndexChanged.connect(self._fill_units)
        self._fill_units()
        self.submit = self._save

    def _fill_units(self) -> None:
        if not self.has_units:
            return
        level = ROLE_LEVEL[self.role.currentData()]
        self.unit.clear()
        for code, in self.session.store.conn.execute(
                "SELECT gid FROM unit WHERE level=? AND deleted=0 ORDER BY gid", (level.value,)):
            self.unit.addItem(self.session.place(code) or self.session.unit_name(code), code)
        i = self.unit.findData(self.session.scope)
        self.unit.setCurrentIndex(max(0, i))

    def _save(self) -> None:
        operator = self.operator.text().strip()
        if not operator:
            raise ValidationError("请填写操作员姓名")
        role = self.role.currentData()
        if self.has_units:
            scope = self.unit.currentData()
            if not scope:
                raise ValidationError("请选择单位")
        else:
            scope = self._create_units(role)
        self.session.set_settings(role=role, scope=scope, operator=operator)

    def _create_units(self, role: str) -> str:
        code = self.code.text().strip()
        name = self.name.text().strip()
        level = ROLE_LEVEL[role]
        if len(code) != CODE_LENGTH[level] or not code.isdigit():
            raise ValidationError(f"{Role(role).label}的单位代码应为{CODE_LENGTH[level]}位数字")
        if not name:
            raise ValidationError("请填写单位名称")
        parents = self.parent_names.text().split()
        widths = [w for w in (6, 9, 12) if w < len(code)]
        if len(parents) != len(widths):
            raise ValidationError(f"请填写{len(widths)}个上级单位名称（从县开始），用空格分开"
                                  if widths else "县级单位没有上级")

        groups = self.groups.value() if role == Role.VILLAGE.value else 0

        def write(ledger):
            for width, parent in zip(widths, parents):
                ledger.add_unit(code[:width], parent)
            ledger.add_unit(code, name)
            for g in range(groups):  # a village's groups, so households can be added at once
                ledger.add_unit(f"{code}{g + 1:03d}", f"第{_NUMERALS[g]}组")

        self.session.write("建立单位", write, undoable=False)
        self.session.units_changed()
        return code
