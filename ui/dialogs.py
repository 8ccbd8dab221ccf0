"""Small forms for ledger writes. Each dialog only collects and checks input;
the caller writes through the session (the ledger service), and a refused
write keeps the dialog open with the message, so nothing typed is lost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QDate
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDateEdit, QDialog, QDialogButtonBox, QFormLayout, QGridLayout,
    QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QVBoxLayout, QWidget,
)

from core import idcard
from core.domain import (
    NEXT_ACTION, Channel, Department, ExcludeReason, LabelledEnum, LastYear, Reason,
    Relation, SubsidyCategory, SubsidyKind, VisitMethod, VisitOutcome,
)
from core.errors import CbtError, DuplicateIdError, ValidationError

ERROR_STYLE = "color: #b42318;"
OK_STYLE = "color: #027a48;"


def enum_combo(enum: type[LabelledEnum], current: str | None = None, *,
               blank: str | None = None) -> QComboBox:
    combo = QComboBox()
    if blank is not None:
        combo.addItem(blank, None)
    for member in enum:
        combo.addItem(member.label, member.value)
    if current is not None:
        i = combo.findData(current)
        if i >= 0:
            combo.setCurrentIndex(i)
    return combo


def date_edit(day: dt.date | str | None = None, *, optional: bool = False) -> QDateEdit:
    edit = QDateEdit()
    edit.setCalendarPopup(True)
    edit.setDisplayFormat("yyyy-MM-dd")
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    day = day or dt.date.today()
    edit.setDate(QDate(day.year, day.month, day.day))
    return edit


def qdate_iso(edit: QDateEdit) -> str:
    return edit.date().toString("yyyy-MM-dd")


class FormDialog(QDialog):
    """A form with OK/Cancel and a message line. `submit` is called on OK; if it
    raises CbtError the message is shown and the dialog stays open."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(420)
        self.layout_ = QVBoxLayout(self)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.layout_.addLayout(self.form)
        self.error = QLabel()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        self.layout_.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("保存")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("取消")
        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)
        self.layout_.addWidget(self.buttons)
        self.submit: Callable[[], Any] | None = None
        self.result_value: Any = None

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def _ok(self) -> None:
        if self.submit is None:
            self.accept()
            return
        try:
            self.result_value = self.submit()
        except CbtError as exc:
            self.show_error(str(exc))
            return
        self.accept()


class PaymentDialog(FormDialog):
    """Claimed paid with channel, tier and date (the one-click tick uses defaults)."""

    def __init__(self, name: str, *, channel: str | None, tiers: Sequence[dict[str, Any]],
                 parent: QWidget | None = None) -> None:
        super().__init__(f"标记已缴 — {name}", parent)
        self.channel = enum_combo(Channel, channel or Channel.WECHAT.value)
        self.tier = QComboBox()
        for t in tiers:
            self.tier.addItem(f"{t['name']}（{t['amount']}元）", t["code"])
        self.date = date_edit()
        self.date.setMaximumDate(QDate.currentDate())
        self.form.addRow("缴费渠道(&C)：", self.channel)
        self.form.addRow("缴费档次(&T)：", self.tier)
        self.form.addRow("缴费日期(&D)：", self.date)

    def values(self) -> dict[str, Any]:
        return {"channel": self.channel.currentData(), "tier": self.tier.currentData(),
                "date": qdate_iso(self.date)}


class ElsewhereDialog(FormDialog):
    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(f"标记外地参保 — {name}", parent)
        self.place = QLineEdit()
        self.place.setPlaceholderText("如：广东省深圳市、本县职工医保")
        self.evidence = QLineEdit()
        self.evidence.setPlaceholderText("如：参保凭证截图、单位证明")
        self.form.addRow("参保地(&P)：", self.place)
        self.form.addRow("取证说明(&E)：", self.evidence)

    def values(self) -> dict[str, Any]:
        return {"place": self.place.text(), "evidence": self.evidence.text() or None}


class ExcludeDialog(FormDialog):
    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(f"剔除 — {name}", parent)
        self.reason = enum_combo(ExcludeReason)
        self.evidence = QLineEdit()
        self.evidence.setPlaceholderText("如：村委会核实、死亡证明、迁出证明")
        self.form.addRow("剔除原因(&R)：", self.reason)
        self.form.addRow("依据(&E)：", self.evidence)

    def values(self) -> dict[str, Any]:
        return {"reason": self.reason.currentData(), "evidence": self.evidence.text() or None}


class SubsidyDialog(FormDialog):
    def __init__(self, name: str, rules: Sequence[dict[str, Any]],
                 parent: QWidget | None = None) -> None:
        super().__init__(f"特殊群体资助 — {name}", parent)
        self.rules = {r["category"]: r for r in rules}
        self.category = enum_combo(SubsidyCategory)
        self.kind = enum_combo(SubsidyKind)
        self.amount = QLineEdit()
        self.amount.setPlaceholderText("定额资助时填写，如 280")
        self.department = enum_combo(Department, blank="（未指定）")
        self.arrived_box = QCheckBox("资金已到账")
        self.arrived = date_edit()
        self.arrived.setEnabled(False)
        self.arrived_box.toggled.connect(self.arrived.setEnabled)
        self.form.addRow("资助类别(&G)：", self.category)
        self.form.addRow("资助方式(&K)：", self.kind)
        self.form.addRow("资助金额(&A)：", self.amount)
        self.form.addRow("代缴部门(&D)：", self.department)
        row = QHBoxLayout()
        row.addWidget(self.arrived_box)
        row.addWidget(self.arrived, 1)
        self.form.addRow("到账：", row)
        self.category.currentIndexChanged.connect(self._apply_rule)
        self._apply_rule()

    def _apply_rule(self) -> None:
        # The policy year's rule for the category fills in the usual kind and payer.
        rule = self.rules.get(self.category.currentData())
        if not rule:
            return
        self.kind.setCurrentIndex(max(0, self.kind.findData(rule.get("kind"))))
        # A rule's amount replaces what was there; no amount (full subsidy) clears it.
        self.amount.setText(str(rule["amount"]) if rule.get("amount") else "")
        if rule.get("department"):
            self.department.setCurrentIndex(max(0, self.department.findData(rule["department"])))

    def values(self) -> dict[str, Any]:
        return {"category": self.category.currentData(), "kind": self.kind.currentData(),
                "amount": self.amount.text() or None,
                "department": self.department.currentData(),
                "arrived": qdate_iso(self.arrived) if self.arrived_box.isChecked() else None}


class VisitDialog(FormDialog):
    """A visit: how, with whom, what came of it, why not paid, when to go back.
    The next date and the suggested action follow the reason chosen."""

    def __init__(self, household: str, members: Sequence[tuple[str, str]],
                 parent: QWidget | None = None, *, person_gid: str | None = None) -> None:
        super().__init__(f"记录走访 — {household}", parent)
        self.method = enum_combo(VisitMethod)
        self.person = QComboBox()
        self.person.addItem("（全户）", None)
        for gid, name in members:
            self.person.addItem(name, gid)
        if person_gid:
            self.person.setCurrentIndex(max(0, self.person.findData(person_gid)))
        self.date = date_edit()
        self.date.setMaximumDate(QDate.currentDate())
        self.outcome = enum_combo(VisitOutcome)
        self.outcome.setCurrentIndex(self.outcome.findData(VisitOutcome.UNDECIDED.value))
        self.reason = enum_combo(Reason, blank="（无 / 已缴）")
        self.action = QLabel()
        self.action.setWordWrap(True)
        self.action.setStyleSheet("color: #175cd3;")
        self.next_box = QCheckBox("安排回访")
        self.next_box.setChecked(True)
        self.next_date = date_edit(dt.date.today() + dt.timedelta(days=7))
        self.next_box.toggled.connect(self.next_date.setEnabled)
        self.paid_now = QCheckBox("同时标记已缴（对象或全户未缴的人）")
        self.paid_now.setVisible(False)
        self.note = QPlainTextEdit()
        self.note.setPlaceholderText("情况说明，如：本人在广东务工，已加微信")
        self.note.setMaximumHeight(70)
        self.note.setTabChangesFocus(True)
        self.form.addRow("方式(&M)：", self.method)
        self.form.addRow("对象(&W)：", self.person)
        self.form.addRow("日期(&D)：", self.date)
        self.form.addRow("结果(&O)：", self.outcome)
        self.form.addRow("未缴原因(&R)：", self.reason)
        self.form.addRow("建议做法：", self.action)
        row = QHBoxLayout()
        row.addWidget(self.next_box)
        row.addWidget(self.next_date, 1)
        self.form.addRow("下次回访：", row)
        self.form.addRow("", self.paid_now)
        self.form.addRow("备注(&E)：", self.note)
        self.reason.currentIndexChanged.connect(self._suggest)
        self.outcome.currentIndexChanged.connect(self._outcome)
        self._suggest()

    def _suggest(self) -> None:
        code = self.reason.currentData()
        if code is None:
            self.action.setText("")
            return
        action, days = NEXT_ACTION[Reason(code)]
        self.action.setText(action)
        base = self.date.date()
        self.next_date.setDate(base.addDays(days))
        self.next_box.setChecked(True)

    def _outcome(self) -> None:
        paid = self.outcome.currentData() == VisitOutcome.PAID.value
        self.paid_now.setVisible(paid)
        self.paid_now.setChecked(paid)
        if paid:
            self.next_box.setChecked(False)
            self.reason.setCurrentIndex(0)

    def values(self) -> dict[str, Any]:
        return {"method": self.method.currentData(), "person_gid": self.person.currentData(),
                "date": qdate_iso(self.date), "outcome": self.outcome.currentData(),
                "reason": self.reason.currentData(),
                "note": self.note.toPlainText() or None,
                "next_date": qdate_iso(self.next_date) if self.next_box.isChecked() else None,
                "paid_now": self.paid_now.isChecked()}


class IdField(QWidget):
    """An ID number box that checks as you type and says what is wrong."""

    def __init__(self, check_duplicate: Callable[[str], str | None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("18位身份证号，可留空（如新生儿尚未办证）")
        self.edit.setMaxLength(24)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        layout.addWidget(self.edit)
        layout.addWidget(self.hint)
        self.check_duplicate = check_duplicate
        self.edit.textChanged.connect(self._check)
        self.valid = True
        self._check()

    def _check(self) -> None:
        text = self.edit.text().strip()
        self.valid = True
        if not text:
            self.hint.setText("")
            return
        try:
            number = idcard.normalize(text)
        except ValidationError as exc:
            digits = len(idcard.clean(text))
            if digits < 18 and digits != 15:
                self.hint.setStyleSheet("color: #667085;")
                self.hint.setText(f"已输入 {digits} 位")
            else:
                self.hint.setStyleSheet(ERROR_STYLE)
                self.hint.setText(str(exc))
            self.valid = False
            return
        facts = idcard.facts(number)
        message = f"✓ {facts.birth_date:%Y年%m月%d日} 出生，{'男' if facts.sex == 'M' else '女'}"
        style = OK_STYLE
        if self.check_duplicate:
            where = self.check_duplicate(number)
            if where:
                message, style = where, ERROR_STYLE
                self.valid = False
        self.hint.setStyleSheet(style)
        self.hint.setText(message)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt style
        self.edit.setText(text)


class PersonDialog(FormDialog):
    def __init__(self, title: str, *, check_duplicate: Callable[[str], str | None],
                 person: dict[str, Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        person = person or {}
        self.name = QLineEdit(person.get("name") or "")
        self.id_field = IdField(check_duplicate)
        self.id_field.setText(person.get("id_number") or "")
        self.relation = enum_combo(Relation, person.get("relation"), blank="（未填）")
        self.phone = QLineEdit(person.get("phone") or "")
        self.phone.setPlaceholderText("手机或固话")
        cats = set(filter(None, (person.get("categories") or "").split(",")))
        box = QGroupBox("特殊群体")
        grid = QGridLayout(box)
        self.categories: dict[str, QCheckBox] = {}
        for i, member in enumerate(SubsidyCategory):
            check = QCheckBox(member.label)
            check.setChecked(member.value in cats)
            self.categories[member.value] = check
            grid.addWidget(check, i // 3, i % 3)
        self.notes = QLineEdit(person.get("notes") or "")
        self.form.addRow("姓名(&N)：", self.name)
        self.form.addRow("身份证号(&I)：", self.id_field)
        self.form.addRow("与户主关系(&R)：", self.relation)
        self.form.addRow("电话(&P)：", self.phone)
        self.last_year: QComboBox | None = None
        if not person:
            self.last_year = enum_combo(LastYear, LastYear.UNKNOWN.value)
            self.form.addRow("上年参保(&L)：", self.last_year)
        self.form.addRow(box)
        self.form.addRow("备注(&E)：", self.notes)

    def values(self) -> dict[str, Any]:
        out = {"name": self.name.text(), "id_number": self.id_field.text() or None,
               "relation": self.relation.currentData(), "phone": self.phone.text() or None,
               "categories": [c for c, box in self.categories.items() if box.isChecked()],
               "notes": self.notes.text() or None}
        if self.last_year is not None:
            out["last_year_status"] = self.last_year.currentData()
        return out


class HouseholdDialog(FormDialog):
    def __init__(self, title: str, groups: Sequence[tuple[str, str]], *,
                 household: dict[str, Any] | None = None, group: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        household = household or {}
        self.group = QComboBox()
        for code, place in groups:
            self.group.addItem(place, code)
        current = household.get("unit_code") or group
        if current:
            self.group.setCurrentIndex(max(0, self.group.findData(current)))
        self.number = QLineEdit(household.get("number") or "")
        self.number.setPlaceholderText("留空则自动编号")
        self.address = QLineEdit(household.get("address") or "")
        self.phone = QLineEdit(household.get("phone") or "")
        self.worker = QLineEdit(household.get("worker") or "")
        self.worker.setPlaceholderText("包保干部/网格员")
        self.form.addRow("所在组(&G)：", self.group)
        self.form.addRow("户号(&H)：", self.number)
        self.form.addRow("住址(&A)：", self.address)
        self.form.addRow("联系电话(&P)：", self.phone)
        self.form.addRow("网格员(&W)：", self.worker)

    def values(self) -> dict[str, Any]:
        return {"unit_code": self.group.currentData(), "number": self.number.text() or None,
                "address": self.address.text() or None, "phone": self.phone.text() or None,
                "worker": self.worker.text() or None}


def duplicate_message(exc: DuplicateIdError) -> str:
    return str(exc)


SHORTCUT_HELP = (
    ("Ctrl+F", "查找（姓名、身份证号、电话、拼音首字母）"),
    ("空格", "把选中的人标记为已缴（今天，上次用的渠道）"),
    ("Ctrl+P", "已缴（选渠道、档次、日期）"),
    ("Ctrl+Shift+P", "全户已缴"),
    ("Ctrl+R", "记录走访"),
    ("Ctrl+Z", "撤销上一步"),
    ("Ctrl+N", "新增成员"),
    ("F2", "编辑人员"),
)


def shortcut(text: str) -> QKeySequence:
    return QKeySequence(text)
