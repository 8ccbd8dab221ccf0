"""The ledger service: the one way to change the ledger.

Every write validates its input, then turns it into change rows and applies
them through core.changelog.apply_changes — the same function that applies
changes from other installations — in one transaction. Invalid input raises a
typed error (core.errors) with a Chinese message and writes nothing.

    ledger = Ledger(store, operator="王网格")
    hh = ledger.add_household("450999001001001", address="一组12号")
    p = ledger.add_person(hh, name="张秀英", id_number="...", relation="户主")
    ledger.claim_paid(p, channel="微信")
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core import changelog
from core import hlc as hlc_mod
from core import idcard
from core.changelog import (
    ENTITIES, ApplyReport, BulkItem, BulkUpdateResult, Change, apply_changes, change_values,
    dumps, field_clock,
)
from core.domain import (
    CODE_LENGTH, NEXT_ACTION, Channel, Department, ExcludeReason, LastYear, Level, Reason,
    Relation, SubsidyCategory, SubsidyKind, VisitMethod, VisitOutcome,
)
from core.errors import DuplicateIdError, NotFoundError, ValidationError
from core.store import Store, guard

DEFAULT_YEAR = 2027

_PHONE = re.compile(r"^(1\d{10}|0\d{2,3}-?\d{7,8}|\d{7,8})$")
# CJK Extensions B and later (U+20000…) hold rare characters that real names use.
_NAME_OK = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003134fA-Za-z·•・. ]{1,30}$")


# ---------------------------------------------------------------------------
# Identity


def person_gid_for(id_number: str | None) -> str:
    """A person's global id. Derived from the ID number when there is one, so two
    installations that add the same person independently agree on it; a hash,
    so the id itself does not reveal the number."""
    if id_number:
        digest = hashlib.blake2b(id_number.encode(), key=b"canbaotong-person",
                                 digest_size=10).hexdigest()
        return "p" + digest
    return "p" + uuid.uuid4().hex[:20]


def campaign_year(conn: sqlite3.Connection) -> int:
    """The year the campaign enrolls for (settings), as a Ledger on this
    database would take it."""
    row = conn.execute("SELECT value FROM settings WHERE key='campaign_year'").fetchone()
    return int(row[0]) if row and row[0] else DEFAULT_YEAR


def enrollment_gid(person_gid: str, year: int) -> str:
    return f"{person_gid}/{year}"


def new_gid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:20]


# ---------------------------------------------------------------------------
# Input parsing (shared with import)


# A time of day after the date (缴费时间 2026-09-01 10:20:30) is dropped.
_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")


def parse_date(value: Any, what: str = "日期", *, required: bool = True) -> str | None:
    """ISO date from a date, '2026-09-01', '2026/9/1', '2026.9.1', '20260901',
    '2026年9月1日'; ValidationError otherwise."""
    if value is None or value == "":
        if required:
            raise ValidationError(f"{what}不能为空", field=what)
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:  # already ISO: the common case in long lists, checked in C
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    m = _DATE.fullmatch(text) or _DATE_COMPACT.fullmatch(text)
    if m:
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        except ValueError:
            pass
    raise ValidationError(f"{what}“{text}”不是有效日期，请写成 2026-09-01 的形式", field=what)


def parse_phone(value: Any) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    text = re.sub(r"[\s()（）]", "", str(value).translate(idcard._FULLWIDTH))
    if text.startswith("+86"):
        text = text[3:]
    if not _PHONE.match(text):
        raise ValidationError(f"电话号码“{value}”格式不对：手机为11位，座机如 0773-1234567",
                              field="phone")
    return text


def parse_name(value: Any) -> str:
    text = re.sub(r"\s+", "", str(value or ""))
    if not text:
        raise ValidationError("姓名不能为空", field="name")
    if not _NAME_OK.match(text):
        raise ValidationError(f"姓名“{text}”含有不能用于姓名的字符", field="name")
    return text


def parse_amount(value: Any, what: str = "金额") -> float | None:
    if value is None:
        return None
    if type(value) in (int, float) and 0 <= value <= 100000:  # a number cell: most rows
        return float(value)
    if str(value).strip() == "":
        return None
    text = str(value).strip().replace(",", "").replace("，", "").removesuffix("元").strip()
    try:
        amount = float(text)
    except ValueError:
        raise ValidationError(f"{what}“{value}”不是数字", field=what) from None
    if not math.isfinite(amount) or amount < 0 or amount > 100000:
        raise ValidationError(f"{what}“{value}”超出合理范围", field=what)
    return amount


def _not_future(day: str, what: str) -> str:
    # One day of slack: a laptop clock a little behind the tax bureau's.
    if day > (dt.date.today() + dt.timedelta(days=1)).isoformat():
        raise ValidationError(f"{what} {day} 在今天之后", field=what)
    return day


def suggest_follow_up(reason: Reason | str | None, on: dt.date | None = None) -> tuple[str, str]:
    """(next follow-up date, suggested action) for a reason for not paying."""
    on = on or dt.date.today()
    r = Reason.parse(reason, "未缴原因") if reason else Reason.OTHER
    action, days = NEXT_ACTION[r]
    return (on + dt.timedelta(days=days)).isoformat(), action


# ---------------------------------------------------------------------------
# The service


@dataclass
class WriteResult:
    txn: str | None
    changes: list[Change] = field(default_factory=list)
    report: ApplyReport = field(default_factory=ApplyReport)
    skipped: int = 0  # undo: fields left alone because they were changed again since


class Ledger:
    """All writes to one store. Not thread-safe: one Ledger per connection."""

    def __init__(self, store: Store, operator: str | None = None,
                 year: int | None = None) -> None:
        self.store = store
        self.conn = store.conn
        self.operator = operator if operator is not None else (store.setting("operator") or "")
        self.year = year or campaign_year(self.conn)
        last = self.conn.execute("SELECT max(max_hlc) FROM knowledge").fetchone()[0]
        self.clock = hlc_mod.Clock(store.node, last=last)
        self._current: WriteResult | None = None
        self._collectors: list[list[WriteResult]] = []
        self._txn_override: str | None = None
        self._batch_depth = 0

    # --- transactions ----------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Run many writes in one transaction (imports, bulk ticks)."""
        if self._batch_depth:
            self._batch_depth += 1
            try:
                yield
            finally:
                self._batch_depth -= 1
            return
        with guard(), self.store.db.atomic():
            self._batch_depth = 1
            try:
                yield
            finally:
                self._batch_depth = 0

    @contextlib.contextmanager
    def _op(self, op: str) -> Iterator["_Op"]:
        if self._current is not None:  # an op inside an op: same transaction
            yield _Op(self, op, self._current)
            return
        result = WriteResult(txn=None)
        self._current = result
        try:
            if self._batch_depth:
                with self.store.db.atomic():  # savepoint: a failed op undoes only itself
                    yield _Op(self, op, result)
            else:
                with guard(), self.store.db.atomic():
                    yield _Op(self, op, result)
        finally:
            self._current = None
        self.last_result = result
        for results in self._collectors:
            results.append(result)

    @contextlib.contextmanager
    def one_step(self, txn: str) -> Iterator[None]:
        """Every ledger call inside carries the same txn, so undo(txn) takes the
        whole thing back (an import: new households and persons included)."""
        previous, self._txn_override = self._txn_override, txn
        try:
            yield
        finally:
            self._txn_override = previous

    @contextlib.contextmanager
    def collect(self) -> Iterator[list[WriteResult]]:
        """Gather the results of the ledger calls made inside (for undo and for
        telling the screens what changed)."""
        results: list[WriteResult] = []
        self._collectors.append(results)
        try:
            yield results
        finally:
            self._collectors.remove(results)

    def apply_remote(self, changes: Iterable[Change]) -> ApplyReport:
        """Apply change rows from another installation in one transaction."""
        changes = list(changes)
        with guard(), self.store.db.atomic():
            report = apply_changes(self.conn, changes)
        if changes:
            self.clock.observe(max(c.hlc for c in changes))
        return report

    # --- lookups ---------------------------------------------------------

    def _row(self, table: str, gid: str, what: str) -> dict[str, Any]:
        cur = self.conn.execute(f"SELECT * FROM {table} WHERE gid=?", (gid,))
        row = cur.fetchone()
        if row is None or (("deleted" in [d[0] for d in cur.description])
                           and row[[d[0] for d in cur.description].index("deleted")]):
            raise NotFoundError(f"{what}不存在或已删除")
        return dict(zip([d[0] for d in cur.description], row))

    def _unit(self, code: str) -> dict[str, Any]:
        return self._row("unit", code, f"单位（代码 {code}）")

    def _household(self, gid: str) -> dict[str, Any]:
        return self._row("household", gid, "该户")

    def _person(self, gid: str) -> dict[str, Any]:
        return self._row("person", gid, "该人员")

    def _enrollment(self, person_gid: str, year: int | None) -> str:
        """The enrollment gid of a person for a year, created if missing."""
        year = year or self.year
        gid = enrollment_gid(person_gid, year)
        # The common case in one lookup: the enrollment exists and its person is live.
        if self.conn.execute(
                "SELECT 1 FROM enrollment e JOIN person p ON p.gid = e.person_gid "
                "WHERE e.gid=? AND p.deleted=0", (gid,)).fetchone():
            return gid
        self._person(person_gid)  # raises NotFoundError for a missing or deleted person
        if self.conn.execute("SELECT 1 FROM enrollment WHERE gid=?", (gid,)).fetchone() is None:
            with self._op("add_enrollment") as op:
                op.create("enrollment", gid, {"person_gid": person_gid, "year": year,
                                              "last_year_status": LastYear.UNKNOWN.value})
        return gid

    def where_is(self, person_gid: str) -> str:
        """“X镇 Y村 Z组 第N户（户主 …）” for messages."""
        row = self.conn.execute(
            "SELECT h.unit_code, h.number, (SELECT name FROM person WHERE gid=h.head_gid)"
            " FROM person p JOIN household h ON h.gid=p.household_gid WHERE p.gid=?",
            (person_gid,)).fetchone()
        if row is None:
            return "（未知位置）"
        code, number, head = row
        names = [r[0] for r in self.conn.execute(
            "SELECT name FROM unit WHERE gid IN (?,?,?) ORDER BY length(gid)",
            (code[:9], code[:12], code))]
        place = " ".join(names)
        return f"{place} 第{number or '?'}户" + (f"（户主 {head}）" if head else "")

    def _check_unique_id(self, number: str, except_gid: str | None = None) -> None:
        row = self.conn.execute(
            "SELECT gid, name FROM person WHERE id_number=? AND deleted=0 AND gid IS NOT ?",
            (number, except_gid)).fetchone()
        if row:
            raise DuplicateIdError(
                f"身份证号已登记在 {self.where_is(row[0])}，姓名 {row[1]}",
                existing_gid=row[0])

    # --- units and targets -------------------------------------------------

    def add_unit(self, code: str, name: str, *, parent_code: str | None = None) -> str:
        code = str(code).strip()
        level = next((lv for lv, n in CODE_LENGTH.items() if n == len(code)), None)
        if level is None or not code.isdigit():
            raise ValidationError(f"单位代码“{code}”应为6/9/12/15位数字（县/乡镇/村/组）",
                                  field="code")
        name = str(name or "").strip()
        if not name:
            raise ValidationError("单位名称不能为空", field="name")
        natural = code[:CODE_LENGTH[level] - 3] if level != Level.COUNTY else None
        if parent_code and str(parent_code).strip() != natural:
            raise ValidationError(f"单位代码“{code}”的上级应为“{natural or '无'}”，"
                                  f"不是“{parent_code}”", field="parent_code")
        parent = natural
        with self._op("add_unit") as op:
            if parent:
                self._unit(parent)
            existing = self.conn.execute("SELECT deleted FROM unit WHERE gid=?", (code,)).fetchone()
            record = {"name": name, "level": level.value, "parent_code": parent, "deleted": 0}
            if existing is None:
                op.create("unit", code, record)
            else:
                op.set("unit", code, record)
        return code

    def rename_unit(self, code: str, name: str) -> None:
        name = str(name or "").strip()
        if not name:
            raise ValidationError("单位名称不能为空", field="name")
        with self._op("rename_unit") as op:
            self._unit(code)
            op.set("unit", code, {"name": name})

    def set_target(self, unit_code: str, count: int, *, year: int | None = None,
                   milestones: Sequence[tuple[Any, float]] = ()) -> str:
        try:
            count = int(count)
        except (TypeError, ValueError):
            raise ValidationError(f"任务数“{count}”不是整数", field="count") from None
        if count < 0:
            raise ValidationError("任务数不能为负数", field="count")
        stones = []
        for when, fraction in milestones:
            try:
                fraction = float(fraction)
            except (TypeError, ValueError):
                raise ValidationError(f"节点进度“{fraction}”应为0到1之间的小数（如0.8表示80%）",
                                      field="milestones") from None
            if not 0 < fraction <= 1:
                raise ValidationError(f"节点进度“{fraction}”应在0到1之间（如0.8表示80%）")
            stones.append({"date": parse_date(when, "节点日期"), "fraction": fraction})
        stones.sort(key=lambda s: s["date"])
        year = year or self.year
        gid = f"{unit_code}/{year}"
        with self._op("set_target") as op:
            self._unit(unit_code)
            record = {"unit_code": unit_code, "year": year, "count": count,
                      "milestones": dumps(stones)}
            if self.conn.execute("SELECT 1 FROM target WHERE gid=?", (gid,)).fetchone():
                op.set("target", gid, record)
            else:
                op.create("target", gid, record)
        return gid

    # --- households --------------------------------------------------------

    def add_household(self, unit_code: str, *, number: str | None = None,
                      address: str | None = None, phone: str | None = None,
                      worker: str | None = None) -> str:
        """A new household in a group (组/网格). Returns its gid."""
        unit = self._unit(unit_code)
        if unit["level"] != Level.GROUP.value:
            raise ValidationError("户只能建在组/网格下", field="unit_code")
        phone = parse_phone(phone)
        with self._op("add_household") as op:
            if not number:
                top = self.conn.execute(
                    "SELECT max(CAST(number AS INTEGER)) FROM household WHERE unit_code=?",
                    (unit_code,)).fetchone()[0]
                number = f"{(top or 0) + 1:03d}"
            gid = new_gid("h")
            op.create("household", gid, {
                "number": str(number).strip(), "unit_code": unit_code,
                "address": (address or "").strip() or None, "phone": phone,
                "worker": (worker or "").strip() or None, "head_gid": None, "deleted": 0})
        return gid

    def edit_household(self, gid: str, **fields: Any) -> None:
        allowed = {"number", "address", "phone", "worker", "unit_code", "head_gid"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValidationError(f"不能修改户的字段：{'、'.join(sorted(unknown))}")
        for key in ("number", "address", "worker"):
            if key in fields:
                fields[key] = _text(fields[key])
        with self._op("edit_household") as op:
            self._household(gid)
            if "phone" in fields:
                fields["phone"] = parse_phone(fields["phone"])
            if "unit_code" in fields:
                if self._unit(fields["unit_code"])["level"] != Level.GROUP.value:
                    raise ValidationError("户只能建在组/网格下", field="unit_code")
            if fields.get("head_gid"):
                if self._person(fields["head_gid"])["household_gid"] != gid:
                    raise ValidationError("户主必须是本户成员", field="head_gid")
            op.set("household", gid, fields)

    def delete_household(self, gid: str) -> None:
        with self._op("delete_household") as op:
            self._household(gid)
            members = self.conn.execute(
                "SELECT count(*) FROM person WHERE household_gid=? AND deleted=0",
                (gid,)).fetchone()[0]
            if members:
                raise ValidationError(f"该户还有{members}名成员，请先迁出或删除成员")
            op.set("household", gid, {"deleted": 1})

    # --- persons -----------------------------------------------------------

    def add_person(self, household_gid: str, *, name: str, id_number: str | None = None,
                   relation: str | None = None, phone: str | None = None,
                   categories: Iterable[str] = (), notes: str | None = None,
                   last_year_status: str | None = None) -> str:
        """A new member of a household, with an enrollment for the campaign year."""
        name = parse_name(name)
        number = idcard.normalize(id_number) if id_number else None
        rel = Relation.parse(relation, "与户主关系").value if relation else None
        cats = _categories(categories)
        last = LastYear.parse(last_year_status, "上年参保状态").value if last_year_status \
            else LastYear.UNKNOWN.value
        phone = parse_phone(phone)
        with self._op("add_person") as op:
            household = self._household(household_gid)
            if number:
                self._check_unique_id(number)
            gid = person_gid_for(number)
            taken = self.conn.execute("SELECT id_number FROM person WHERE gid=?",
                                      (gid,)).fetchone()
            if taken is not None and taken[0] != number:
                # The gid was derived from this number for someone whose number was
                # later corrected: that is another person, so this one gets a fresh gid.
                gid = person_gid_for(None)
            record = {"household_gid": household_gid, "name": name, "id_number": number,
                      "relation": rel, "phone": phone, "categories": cats,
                      "notes": (notes or "").strip() or None, "deleted": 0}
            if self.conn.execute("SELECT 1 FROM person WHERE gid=?", (gid,)).fetchone():
                op.set("person", gid, record)  # re-adding someone deleted earlier
            else:
                op.create("person", gid, record)
            egid = enrollment_gid(gid, self.year)
            if self.conn.execute("SELECT 1 FROM enrollment WHERE gid=?", (egid,)).fetchone():
                op.set("enrollment", egid, {"last_year_status": last})
            else:
                op.create("enrollment", egid, {"person_gid": gid, "year": self.year,
                                               "last_year_status": last})
            if rel == Relation.HEAD.value and not household["head_gid"]:
                op.set("household", household_gid, {"head_gid": gid})
        return gid

    def edit_person(self, gid: str, **fields: Any) -> None:
        allowed = {"name", "id_number", "relation", "phone", "categories", "notes"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValidationError(f"不能修改人员的字段：{'、'.join(sorted(unknown))}")
        if "name" in fields:
            fields["name"] = parse_name(fields["name"])
        if "id_number" in fields:
            fields["id_number"] = idcard.normalize(fields["id_number"]) \
                if fields["id_number"] else None
        if "relation" in fields:
            fields["relation"] = Relation.parse(fields["relation"], "与户主关系").value \
                if fields["relation"] else None
        if "phone" in fields:
            fields["phone"] = parse_phone(fields["phone"])
        if "categories" in fields:
            fields["categories"] = _categories(fields["categories"] or ())
        if "notes" in fields:
            fields["notes"] = _text(fields["notes"])
        with self._op("edit_person") as op:
            person = self._person(gid)
            if fields.get("id_number"):
                self._check_unique_id(fields["id_number"], except_gid=gid)
            op.set("person", gid, fields)
            if fields.get("relation") == Relation.HEAD.value:
                # Made head of a household that has none: record it on the household.
                household = self._household(person["household_gid"])
                if not household["head_gid"]:
                    op.set("household", person["household_gid"], {"head_gid": gid})

    def move_person(self, gid: str, household_gid: str) -> None:
        with self._op("move_person") as op:
            person = self._person(gid)
            self._household(household_gid)
            old = person["household_gid"]
            if old == household_gid:
                return
            op.set("person", gid, {"household_gid": household_gid})
            if self._household(old)["head_gid"] == gid:
                op.set("household", old, {"head_gid": None})

    def delete_person(self, gid: str) -> None:
        """Remove a person entered by mistake (tombstone). Someone who died or
        moved away is excluded with a reason instead, so the record stays."""
        with self._op("delete_person") as op:
            person = self._person(gid)
            op.set("person", gid, {"deleted": 1})
            if self._household(person["household_gid"])["head_gid"] == gid:
                op.set("household", person["household_gid"], {"head_gid": None})

    # --- enrollment facts --------------------------------------------------

    def claim_paid(self, person_gid: str, *, date: Any = None, channel: str | None = None,
                   tier: str | None = None, year: int | None = None) -> None:
        """Tick: the person says they have paid (已缴(自报))."""
        day = _not_future(parse_date(date or dt.date.today(), "缴费日期"), "缴费日期")
        ch = Channel.parse(channel, "缴费渠道").value if channel else None
        with self._op("claim_paid") as op:
            egid = self._enrollment(person_gid, year)
            op.set("enrollment", egid, {"claim_date": day, "claim_channel": ch,
                                        "claim_tier": (tier or None), "claim_by": self.operator})

    def retract_claim(self, person_gid: str, *, year: int | None = None) -> None:
        with self._op("retract_claim") as op:
            egid = self._enrollment(person_gid, year)
            op.set("enrollment", egid, {"claim_date": None, "claim_channel": None,
                                        "claim_tier": None, "claim_by": None})

    def confirm_paid(self, person_gid: str, *, date: Any, amount: Any = None,
                     year: int | None = None) -> None:
        """The tax bureau's paid list says so (税务已确认)."""
        day = _not_future(parse_date(date, "确认日期"), "确认日期")
        value = parse_amount(amount, "缴费金额")
        with self._op("confirm_paid") as op:
            egid = self._enrollment(person_gid, year)
            op.set("enrollment", egid, {"confirmed_date": day, "confirmed_amount": value})

    def mark_elsewhere(self, person_gid: str, *, place: str, evidence: str | None = None,
                       year: int | None = None) -> None:
        place = (place or "").strip()
        if not place:
            raise ValidationError("请填写在何处参保（如：广东省深圳市职工医保）", field="place")
        with self._op("mark_elsewhere") as op:
            egid = self._enrollment(person_gid, year)
            op.set("enrollment", egid, {"elsewhere_place": place,
                                        "elsewhere_evidence": (evidence or "").strip() or None})

    def clear_elsewhere(self, person_gid: str, *, year: int | None = None) -> None:
        with self._op("clear_elsewhere") as op:
            egid = self._enrollment(person_gid, year)
            op.set("enrollment", egid, {"elsewhere_place": None, "elsewhere_evidence": None})

    def exclude(self, person_gid: str, *, reason: str, evidence: str | None = None,
                year: int | None = None) -> None:
        code = ExcludeReason.parse(reason, "剔除原因").value
        with self._op("exclude") as op:
            egid = self._enrollment(person_gid, year)
            op.set("enrollment", egid, {"exclude_reason": code,
                                        "exclude_evidence": (evidence or "").strip() or None})

    def clear_exclusion(self, person_gid: str, *, year: int | None = None) -> None:
        with self._op("clear_exclusion") as op:
            egid = self._enrollment(person_gid, year)
            op.set("enrollment", egid, {"exclude_reason": None, "exclude_evidence": None})

    def set_subsidy(self, person_gid: str, *, category: str, kind: str,
                    amount: Any = None, department: str | None = None,
                    arrived: Any = None, year: int | None = None) -> None:
        """A special group the government pays for: full (全额) or fixed amount (定额)."""
        cat = SubsidyCategory.parse(category, "资助类别").value
        knd = SubsidyKind.parse(kind, "资助方式").value
        value = parse_amount(amount, "资助金额")
        if knd == SubsidyKind.FIXED.value and value is None:
            raise ValidationError("定额资助须填写资助金额", field="amount")
        dept = Department.parse(department, "代缴部门").value if department else None
        arrived_day = parse_date(arrived, "到账日期", required=False)
        with self._op("set_subsidy") as op:
            person = self._person(person_gid)
            egid = self._enrollment(person_gid, year)
            op.set("enrollment", egid, {
                "subsidy_category": cat, "subsidy_kind": knd, "subsidy_amount": value,
                "subsidy_dept": dept, "subsidy_arrived": arrived_day})
            cats = set(filter(None, (person["categories"] or "").split(",")))
            if cat not in cats:
                op.set("person", person_gid, {"categories": _categories(cats | {cat})})

    def clear_subsidy(self, person_gid: str, *, year: int | None = None) -> None:
        with self._op("clear_subsidy") as op:
            egid = self._enrollment(person_gid, year)
            op.set("enrollment", egid, {
                "subsidy_category": None, "subsidy_kind": None, "subsidy_amount": None,
                "subsidy_dept": None, "subsidy_arrived": None})

    def set_last_year(self, person_gid: str, status: str, *, year: int | None = None) -> None:
        code = LastYear.parse(status, "上年参保状态").value
        with self._op("set_last_year") as op:
            egid = self._enrollment(person_gid, year)
            op.set("enrollment", egid, {"last_year_status": code})

    # --- visits ------------------------------------------------------------

    # --- bulk ----------------------------------------------------------------

    def bulk_update(self, entity: str, updates: list[tuple[str, Mapping[str, Any]]], *,
                    op: str, txn: str | None = None) -> BulkUpdateResult:
        """Many already-validated field updates of existing entities, fast (imports).
        The caller validates every value as the single-entity methods would."""
        return self._bulk(changelog.bulk_update, op, txn, entity, updates)

    def bulk_write(self, entity: str, items: list[BulkItem], *, op: str,
                   txn: str | None = None) -> BulkUpdateResult:
        """bulk_update for callers that have already read the rows (the paid
        list reads person and enrollment in one pass)."""
        return self._bulk(changelog.bulk_write, op, txn, entity, items)

    def bulk_write_fresh(self, entity: str, source: str, fields: list[str], *, op: str,
                         txn: str | None = None) -> BulkUpdateResult:
        """bulk_write in SQL for the rows of a temp table whose `fields`
        still carry the entity's creation clock (see changelog.unclocked_sql
        and bulk_write_fresh); the caller writes the others through bulk_write."""
        return self._bulk(changelog.bulk_write_fresh, op, txn, entity, source, fields)

    def _bulk(self, write: Callable[..., BulkUpdateResult], op: str, txn: str | None,
              *args: Any) -> BulkUpdateResult:
        with self._op(op) as o:
            txn = txn or o.result.txn or self.clock.tick()
            o.result.txn = txn
            return write(self.conn, self.clock, self.operator or None, op, *args, txn=txn)

    # --- undo --------------------------------------------------------------

    def undo(self, txn: str) -> WriteResult:
        """Undo one earlier ledger call of this installation (its `txn`), by new
        changes that set every field it changed back to the value before.

        Undo is itself a change, so it syncs like any edit. A field someone has
        changed again since is left alone, and the user is told. Visits are a
        record of what happened and are not undone.
        """
        rows = self.conn.execute(
            "SELECT hlc, entity, gid, field, value, prev, operator, op, txn FROM change "
            "WHERE txn=? ORDER BY hlc DESC", (txn,)).fetchall()
        if not rows:
            raise NotFoundError("没有可撤销的操作")
        changes = [Change(*r) for r in rows]
        if any(c.entity == "visit" for c in changes):
            raise ValidationError("走访记录不能撤销；如记错了，请再记一条更正的走访")
        skipped = 0
        with self._op("undo") as op:
            for c in changes:  # newest first, so the oldest 'before' is set last
                spec = ENTITIES[c.entity]
                if c.field == "*":
                    if "deleted" in spec.fields:
                        op.set(c.entity, c.gid, {"deleted": 1})
                    continue  # an enrollment or target goes with its person or unit
                written = change_values(c.field, c.value)
                got = field_clock(self.conn, c.entity, c.gid, list(written))
                if got is None:
                    continue
                before: dict[str, Any] = {}
                for name, value in written.items():
                    if got[1][name] != c.hlc and not self._set_by_txn(got[1][name], txn) \
                            and got[0][name] != value:
                        # Changed again since to something else: keep the newer value.
                        # (Equal values pass: e.g. a later edit was itself undone in
                        # between.)
                        skipped += 1
                        continue
                    before[name] = self._value_at(c.entity, name, c.prev)
                if before:
                    op.set(c.entity, c.gid, before)
            op.result.skipped = skipped
        return self.last_result

    def _set_by_txn(self, hlc: str, txn: str) -> bool:
        row = self.conn.execute("SELECT txn FROM change WHERE hlc=?", (hlc,)).fetchone()
        return bool(row) and row[0] == txn

    def _value_at(self, entity: str, field_name: str, clock: str | None) -> Any:
        """The value a field had when its clock was `clock`."""
        spec = ENTITIES[entity]
        default = spec.defaults.get(field_name)
        if not clock:
            return default
        row = self.conn.execute("SELECT field, value FROM change WHERE hlc=?",
                                (clock,)).fetchone()
        if row is None:
            return default
        value = change_values(row[0], row[1]).get(field_name)
        return default if value is None else value

    def record_visit(self, household_gid: str, *, method: str, date: Any = None,
                     person_gid: str | None = None, outcome: str | None = None,
                     reason: str | None = None, note: str | None = None,
                     next_date: Any = None, visitor: str | None = None) -> str:
        """A door-knock, call or message (append-only). Returns the visit gid."""
        day = parse_date(date or dt.date.today(), "走访日期")
        if day > dt.date.today().isoformat():
            raise ValidationError(f"走访日期 {day} 在今天之后", field="date")
        m = VisitMethod.parse(method, "走访方式").value
        o = VisitOutcome.parse(outcome, "走访结果").value if outcome else None
        r = Reason.parse(reason, "未缴原因").value if reason else None
        nxt = parse_date(next_date, "下次回访日期", required=False)
        if nxt and nxt < day:
            raise ValidationError("下次回访日期不能早于走访日期", field="next_date")
        with self._op("record_visit") as op:
            self._household(household_gid)
            if person_gid and self._person(person_gid)["household_gid"] != household_gid:
                raise ValidationError("该人员不属于这一户", field="person_gid")
            gid = new_gid("v")
            op.create("visit", gid, {
                "household_gid": household_gid, "person_gid": person_gid, "date": day,
                "visitor": (visitor or self.operator or None), "method": m, "outcome": o,
                "reason": r, "note": (note or "").strip() or None, "next_date": nxt})
        return gid


def _text(value: Any) -> str | None:
    """Free text as stored: trimmed, and empty means absent (NULL)."""
    text = str(value).strip() if value is not None else ""
    return text or None


def _categories(values: Iterable[str] | str) -> str | None:
    if isinstance(values, str):
        values = [v for v in re.split(r"[,，、;；\s]+", values) if v]
    codes = sorted({SubsidyCategory.parse(v, "特殊人群类别").value for v in values})
    return ",".join(codes) or None


class _Op:
    """Builds the change rows of one ledger call and applies them."""

    def __init__(self, ledger: Ledger, op: str, result: WriteResult) -> None:
        self.ledger = ledger
        self.op = op
        self.result = result

    def _change(self, entity: str, gid: str, field_name: str, value: Any,
                prev: str | None) -> Change:
        if prev:
            # The value being overwritten may have come from another installation
            # through another connection (a sync import in a worker), which this
            # ledger's clock never observed. Moving past its clock first keeps the
            # rule "a change made after seeing another carries a greater clock";
            # without it, after a remote clock ahead of ours, this edit would lose
            # to the very value it replaces and silently not be applied.
            self.ledger.clock.observe(prev)
        ts = self.ledger.clock.tick()
        if self.result.txn is None:
            self.result.txn = self.ledger._txn_override or ts
        return Change(ts, entity, gid, field_name, dumps(value), prev,
                      self.ledger.operator or None, self.op, self.result.txn)

    def _apply(self, changes: list[Change]) -> None:
        if changes:
            report = apply_changes(self.ledger.conn, changes, local=True)
            self.result.changes.extend(changes)
            self.result.report.merge(report)

    def create(self, entity: str, gid: str, record: Mapping[str, Any]) -> None:
        self._apply([self._change(entity, gid, "*", dict(record), None)])

    def set(self, entity: str, gid: str, values: Mapping[str, Any]) -> None:
        """Change fields; values equal to the current ones make no change row.
        Fields that had the same clock are set by one row ('+'), so a ledger
        call is usually one row per entity, however many fields it sets."""
        got = field_clock(self.ledger.conn, entity, gid, list(values))
        if got is None:
            raise NotFoundError("要修改的记录不存在")
        current, clocks = got
        by_prev: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            if current[name] != value:
                by_prev.setdefault(clocks[name], {})[name] = value
        changes = []
        for prev, fields in by_prev.items():
            if len(fields) == 1:
                [(name, value)] = fields.items()
                changes.append(self._change(entity, gid, name, value, prev))
            else:
                changes.append(self._change(entity, gid, "+", fields, prev))
        self._apply(changes)


def json_value(change: Change) -> Any:
    return json.loads(change.value) if change.value is not None else None
