"""The ledger service: every public write, its change rows, derived status, and refusals."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from core import hlc as hlc_mod
from core.changelog import change_values
from core.errors import DuplicateIdError, NotFoundError, ValidationError
from core.ledger import Ledger, parse_amount, parse_date, parse_name, parse_phone, \
    suggest_follow_up
from tests.core.factories import (
    COUNTY, G111, G112, G121, T1, V11, Builder, bad_checksum, birth_of, build_county,
    change_count, changes_after, enrollment, make_id, max_hlc, row, snapshot, status,
)

OPERATOR = "测试员"
YEAR = 2027
FAR_FUTURE = (dt.date.today() + dt.timedelta(days=30)).isoformat()
CJK = re.compile(r"[\u4e00-\u9fff]")


# ---------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture
def ledger(store) -> Ledger:
    lg = Ledger(store, operator=OPERATOR, year=YEAR)
    build_county(lg)
    return lg


@pytest.fixture
def b(ledger) -> Builder:
    return Builder(ledger)


@dataclass
class World:
    ledger: Ledger
    b: Builder
    hh: str        # 上坪村 一组 第001户: 赵大成 (head), 钱玉兰, 赵小峰
    head: str
    spouse: str
    child: str
    hh2: str       # 上坪村 二组 第001户: 孙建华 (head)
    other: str

    @property
    def conn(self):
        return self.ledger.conn


@pytest.fixture
def w(ledger, b) -> World:
    hh, (head, spouse, child) = b.family(G111, address="一组1号", phone="13900000001")
    hh2, (other,) = b.family(G112, names=("孙建华",))
    return World(ledger, b, hh, head, spouse, child, hh2, other)


def record(ledger: Ledger, action: Callable[[], Any], op: str | None = None
           ) -> tuple[Any, list[dict[str, Any]]]:
    """Run one ledger call; check the change rows it appended and return them."""
    conn = ledger.conn
    before = max_hlc(conn)
    count = change_count(conn)
    result = action()
    rows = changes_after(conn, before)
    assert rows, "a valid write must append change rows"
    assert change_count(conn) == count + len(rows)
    hlcs = [r["hlc"] for r in rows]
    assert len(set(hlcs)) == len(hlcs)
    assert all(h > before for h in hlcs), "the clock must move forward"
    for r in rows:
        assert hlc_mod.is_valid(r["hlc"])
        assert r["node"] == ledger.store.node == hlc_mod.node_of(r["hlc"])
        assert r["operator"] == OPERATOR
        assert r["txn"] == hlcs[0], "all rows of one call share its first clock as txn"
    if op is not None:
        assert rows[0]["op"] == op
    return result, rows


def written(rows: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """(entity, field, value) per field written; a '+' row writes several."""
    out = []
    for r in rows:
        if r["field"] == "*":
            out.append((r["entity"], "*", json.loads(r["value"])))
        else:
            out.extend((r["entity"], k, v)
                       for k, v in change_values(r["field"], r["value"]).items())
    return out


def fields(rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(entity, name) for entity, name, _ in written(rows)}


def value(rows: list[dict[str, Any]], entity: str, field: str) -> Any:
    [v] = [v for e, f, v in written(rows) if e == entity and f == field]
    return v


def assert_refused(ledger: Ledger, action: Callable[[], Any], error: type[Exception],
                   *fragments: str) -> Exception:
    before = snapshot(ledger.conn)
    with pytest.raises(error) as info:
        action()
    assert type(info.value) is error
    message = str(info.value)
    assert CJK.search(message), f"message should be Chinese: {message!r}"
    for fragment in fragments:
        assert fragment in message
    assert snapshot(ledger.conn) == before, "a refused write must change nothing"
    assert not ledger.conn.in_transaction
    return info.value


def assert_no_op(ledger: Ledger, action: Callable[[], Any]) -> None:
    before = snapshot(ledger.conn)
    action()
    assert snapshot(ledger.conn) == before


# ---------------------------------------------------------------------------
# Units and targets


def test_add_unit_creates_each_level_with_derived_parent(store):
    lg = Ledger(store, operator=OPERATOR)
    code, rows = record(lg, lambda: lg.add_unit(COUNTY, "示范县"), "add_unit")
    assert code == COUNTY
    assert [(r["entity"], r["gid"], r["field"]) for r in rows] == [("unit", COUNTY, "*")]
    assert json.loads(rows[0]["value"]) == {
        "name": "示范县", "level": "county", "parent_code": None, "deleted": 0}
    record(lg, lambda: lg.add_unit(T1, " 青山镇 "), "add_unit")
    record(lg, lambda: lg.add_unit(V11, "上坪村"), "add_unit")
    record(lg, lambda: lg.add_unit(G111, "一组"), "add_unit")
    township, group = row(store.conn, "unit", T1), row(store.conn, "unit", G111)
    assert (township["name"], township["level"], township["parent_code"]) == \
        ("青山镇", "township", COUNTY)
    assert (group["level"], group["parent_code"]) == ("group", V11)


def test_add_unit_again_renames_only(ledger):
    _, rows = record(ledger, lambda: ledger.add_unit(G111, "第一组"))
    assert fields(rows) == {("unit", "name")}
    assert row(ledger.conn, "unit", G111)["name"] == "第一组"


def test_rename_unit(ledger):
    _, rows = record(ledger, lambda: ledger.rename_unit(V11, "上坪社区"), "rename_unit")
    assert fields(rows) == {("unit", "name")}
    assert value(rows, "unit", "name") == "上坪社区"
    assert row(ledger.conn, "unit", V11)["name"] == "上坪社区"


def test_set_target_creates_then_updates_count_only(ledger):
    gid, rows = record(ledger, lambda: ledger.set_target(
        V11, "120", milestones=[("2026/12/20", 0.95), ("2026年11月20日", "0.8")]), "set_target")
    assert gid == f"{V11}/{YEAR}"
    target = row(ledger.conn, "target", gid)
    assert (target["unit_code"], target["year"], target["count"]) == (V11, YEAR, 120)
    assert json.loads(target["milestones"]) == [
        {"date": "2026-11-20", "fraction": 0.8}, {"date": "2026-12-20", "fraction": 0.95}]
    assert fields(rows) == {("target", "*")}
    _, rows = record(ledger, lambda: ledger.set_target(
        V11, 150, milestones=[("2026-11-20", 0.8), ("2026-12-20", 0.95)]))
    assert fields(rows) == {("target", "count")}
    assert row(ledger.conn, "target", gid)["count"] == 150


def test_set_target_other_year(ledger):
    gid = ledger.set_target(T1, 10, year=2028)
    assert gid == f"{T1}/2028"
    assert row(ledger.conn, "target", gid)["year"] == 2028


# ---------------------------------------------------------------------------
# Households


def test_add_household_numbers_and_normalises(ledger):
    hh, rows = record(ledger, lambda: ledger.add_household(
        G111, address=" 一组3号 ", phone="+86 139 0000 1234", worker=" 韦春梅 "), "add_household")
    h = row(ledger.conn, "household", hh)
    assert (h["number"], h["unit_code"], h["address"], h["phone"], h["worker"]) == \
        ("001", G111, "一组3号", "13900001234", "韦春梅")
    assert h["head_gid"] is None and h["deleted"] == 0
    assert fields(rows) == {("household", "*")}
    second = ledger.add_household(G111)
    assert row(ledger.conn, "household", second)["number"] == "002"
    elsewhere = ledger.add_household(G112, number=" 017 ")
    assert row(ledger.conn, "household", elsewhere)["number"] == "017"
    assert row(ledger.conn, "household", ledger.add_household(G112))["number"] == "018"


def test_add_household_landline(ledger):
    hh = ledger.add_household(G111, phone="0773-1234567")
    assert row(ledger.conn, "household", hh)["phone"] == "0773-1234567"


def test_edit_household_fields(w):
    first = row(w.conn, "household", w.hh)
    _, rows = record(w.ledger, lambda: w.ledger.edit_household(
        w.hh, address="一组88号", phone="139 1111 2222", worker="覃志强"), "edit_household")
    assert fields(rows) == {("household", "address"), ("household", "phone"),
                            ("household", "worker")}
    assert value(rows, "household", "phone") == "13911112222"
    # prev: the clock of the field as the writer saw it (the creation's)
    created = json.loads(first["clk"])["*"]
    assert {r["prev"] for r in rows} == {created}
    h = row(w.conn, "household", w.hh)
    assert (h["address"], h["phone"], h["worker"]) == ("一组88号", "13911112222", "覃志强")


def test_edit_household_head(w):
    _, rows = record(w.ledger, lambda: w.ledger.edit_household(w.hh, head_gid=w.spouse))
    assert fields(rows) == {("household", "head_gid")}
    assert row(w.conn, "household", w.hh)["head_gid"] == w.spouse


def test_edit_household_move_to_other_group_moves_members_in_counts(w):
    assert enrollment(w.conn, w.head)["group_code"] == G111
    record(w.ledger, lambda: w.ledger.edit_household(w.hh, unit_code=G121))
    for p in (w.head, w.spouse, w.child):
        assert enrollment(w.conn, p)["group_code"] == G121


def test_delete_household(w):
    empty = w.ledger.add_household(G111)
    _, rows = record(w.ledger, lambda: w.ledger.delete_household(empty), "delete_household")
    assert fields(rows) == {("household", "deleted")}
    assert row(w.conn, "household", empty)["deleted"] == 1


# ---------------------------------------------------------------------------
# Persons


def test_add_person_head(ledger, b):
    hh = b.household(G111)
    number = make_id(500, female=True)
    pgid, rows = record(ledger, lambda: ledger.add_person(
        hh, name=" 张 秀英", id_number=number.lower(), relation="户主", phone="13900009999",
        categories="低保对象、脱贫人口", notes=" 腿脚不便 ", last_year_status="已参保"),
        "add_person")
    p = row(ledger.conn, "person", pgid)
    assert (p["name"], p["id_number"], p["relation"], p["phone"], p["categories"], p["notes"]) \
        == ("张秀英", number, "head", "13900009999", "dibao,tuopin", "腿脚不便")
    born = birth_of(500)
    assert (p["birth_date"], p["sex"]) == (born.isoformat(), "F")
    assert fields(rows) == {("person", "*"), ("enrollment", "*"), ("household", "head_gid")}
    assert row(ledger.conn, "household", hh)["head_gid"] == pgid
    e = enrollment(ledger.conn, pgid)
    assert (e["year"], e["status"], e["last_year_status"], e["group_code"], e["lapsed"]) == \
        (YEAR, "unpaid", "paid", G111, 1)


def test_add_person_second_head_does_not_replace_head(w):
    extra = w.b.person(w.hh, "赵老二", relation="户主")
    assert row(w.conn, "household", w.hh)["head_gid"] == w.head != extra


def test_add_person_without_id_and_fifteen_digit_upgrade(ledger, b):
    hh = b.household(G111)
    no_id = b.person(hh, "刘小妹", id_number=None, phone=None)
    p = row(ledger.conn, "person", no_id)
    assert p["id_number"] is None and p["birth_date"] is None and p["sex"] is None
    assert enrollment(ledger.conn, no_id)["status"] == "unpaid"
    full = make_id(200)
    short = full[:6] + full[8:17]
    old = b.person(hh, "刘大山", id_number=short)
    assert row(ledger.conn, "person", old)["id_number"] == full


def test_edit_person(w):
    _, rows = record(w.ledger, lambda: w.ledger.edit_person(
        w.child, name="赵小锋", relation="子", phone="139 2222 3333",
        categories=["特困人员", "dibao"], notes="在外务工"), "edit_person")
    assert fields(rows) == {("person", f) for f in ("name", "phone", "categories", "notes")}
    p = row(w.conn, "person", w.child)
    assert (p["name"], p["phone"], p["categories"], p["notes"]) == \
        ("赵小锋", "13922223333", "dibao,tekun", "在外务工")


def test_edit_person_id_number_updates_derived(w):
    new = make_id(700, female=False)
    record(w.ledger, lambda: w.ledger.edit_person(w.spouse, id_number=new))
    p = row(w.conn, "person", w.spouse)
    born = birth_of(700)
    assert (p["id_number"], p["birth_date"], p["sex"]) == (new, born.isoformat(), "M")


def test_move_person_to_other_group(w):
    _, rows = record(w.ledger, lambda: w.ledger.move_person(w.head, w.hh2), "move_person")
    assert fields(rows) == {("person", "household_gid"), ("household", "head_gid")}
    assert row(w.conn, "person", w.head)["household_gid"] == w.hh2
    assert row(w.conn, "household", w.hh)["head_gid"] is None
    assert row(w.conn, "household", w.hh2)["head_gid"] == w.other
    assert enrollment(w.conn, w.head)["group_code"] == G112


def test_delete_person(w):
    _, rows = record(w.ledger, lambda: w.ledger.delete_person(w.head), "delete_person")
    assert fields(rows) == {("person", "deleted"), ("household", "head_gid")}
    assert row(w.conn, "person", w.head)["deleted"] == 1
    assert row(w.conn, "household", w.hh)["head_gid"] is None
    # no longer counted anywhere
    assert enrollment(w.conn, w.head)["group_code"] is None
    _, rows = record(w.ledger, lambda: w.ledger.delete_person(w.child))
    assert fields(rows) == {("person", "deleted")}


def test_deleted_person_can_be_added_again_with_same_id(w):
    number = row(w.conn, "person", w.child)["id_number"]
    w.ledger.delete_person(w.child)
    again = w.b.person(w.hh2, "赵小峰", id_number=number)
    assert again == w.child  # the gid derives from the ID number
    p = row(w.conn, "person", again)
    assert (p["deleted"], p["household_gid"]) == (0, w.hh2)
    assert enrollment(w.conn, again)["group_code"] == G112


def test_duplicate_id_is_refused_with_place(w):
    number = row(w.conn, "person", w.head)["id_number"]
    err = assert_refused(w.ledger, lambda: w.b.person(w.hh2, "冒名者", id_number=number),
                         DuplicateIdError, "身份证号已登记在", "青山镇", "上坪村", "一组",
                         "第001户", "赵大成")
    assert err.existing_gid == w.head
    assert err.field == "id_number"


@pytest.mark.parametrize("spell", ["lower_x", "spaced", "fifteen"])
def test_duplicate_id_in_other_spellings(ledger, b, spell):
    hh = b.household(G111)
    number = make_id(321, check="X")  # born 1949: also has a 15-digit form
    first = b.person(hh, "黄丽", id_number=number)
    other = {"lower_x": number.lower(),
             "spaced": f" {number[:6]} {number[6:14]} {number[14:]} ",
             "fifteen": number[:6] + number[8:17]}[spell]
    err = assert_refused(ledger, lambda: b.person(hh, "某某", id_number=other),
                         DuplicateIdError, "身份证号已登记在")
    assert err.existing_gid == first


def test_edit_person_to_existing_id_is_refused(w):
    number = row(w.conn, "person", w.other)["id_number"]
    err = assert_refused(w.ledger, lambda: w.ledger.edit_person(w.head, id_number=number),
                         DuplicateIdError, "上坪村", "二组", "孙建华")
    assert err.existing_gid == w.other


def test_adding_old_id_after_correction_keeps_corrected_person(w):
    old = row(w.conn, "person", w.child)["id_number"]
    w.ledger.edit_person(w.child, id_number=make_id(900))
    newcomer = w.b.person(w.hh2, "周新来", id_number=old)
    assert newcomer != w.child
    kept = row(w.conn, "person", w.child)
    assert (kept["name"], kept["household_gid"]) == ("赵小峰", w.hh)
    assert w.conn.execute("SELECT count(*) FROM person WHERE deleted=0").fetchone()[0] == 5


# ---------------------------------------------------------------------------
# Enrollment facts and derived status


def test_claim_paid(w):
    assert status(w.conn, w.head) == "unpaid"
    _, rows = record(w.ledger, lambda: w.ledger.claim_paid(
        w.head, date="2026/9/15", channel="微信", tier="一档"), "claim_paid")
    assert fields(rows) == {("enrollment", f) for f in
                            ("claim_date", "claim_channel", "claim_tier", "claim_by")}
    e = enrollment(w.conn, w.head)
    assert (e["claim_date"], e["claim_channel"], e["claim_tier"], e["claim_by"]) == \
        ("2026-09-15", "wechat", "一档", OPERATOR)
    assert e["status"] == "claimed"


def test_claim_paid_defaults_to_today_and_accepts_codes(w):
    before = dt.date.today().isoformat()
    w.ledger.claim_paid(w.spouse, channel="alipay")
    e = enrollment(w.conn, w.spouse)
    assert e["claim_date"] in {before, dt.date.today().isoformat()}
    assert e["claim_channel"] == "alipay"


def test_claim_paid_other_year_creates_enrollment(w):
    _, rows = record(w.ledger, lambda: w.ledger.claim_paid(w.head, date="2025-10-01", year=2026))
    assert ("enrollment", "*") in fields(rows)
    assert {r["op"] for r in rows} == {"add_enrollment", "claim_paid"}
    assert status(w.conn, w.head, 2026) == "claimed"
    assert status(w.conn, w.head, YEAR) == "unpaid"


def test_retract_claim(w):
    w.ledger.claim_paid(w.head, channel="微信")
    _, rows = record(w.ledger, lambda: w.ledger.retract_claim(w.head), "retract_claim")
    assert {v for _, _, v in written(rows)} == {None}
    assert status(w.conn, w.head) == "unpaid"
    assert enrollment(w.conn, w.head)["claim_date"] is None


def test_confirm_paid(w):
    _, rows = record(w.ledger, lambda: w.ledger.confirm_paid(
        w.head, date="20260920", amount="400元"), "confirm_paid")
    assert fields(rows) == {("enrollment", "confirmed_date"), ("enrollment", "confirmed_amount")}
    e = enrollment(w.conn, w.head)
    assert (e["confirmed_date"], e["confirmed_amount"], e["status"]) == \
        ("2026-09-20", 400.0, "confirmed")


def test_mark_and_clear_elsewhere(w):
    _, rows = record(w.ledger, lambda: w.ledger.mark_elsewhere(
        w.child, place=" 广东省深圳市职工医保 ", evidence="参保证明照片"), "mark_elsewhere")
    e = enrollment(w.conn, w.child)
    assert (e["elsewhere_place"], e["elsewhere_evidence"], e["status"]) == \
        ("广东省深圳市职工医保", "参保证明照片", "elsewhere")
    _, rows = record(w.ledger, lambda: w.ledger.clear_elsewhere(w.child), "clear_elsewhere")
    assert fields(rows) == {("enrollment", "elsewhere_place"), ("enrollment", "elsewhere_evidence")}
    assert status(w.conn, w.child) == "unpaid"


def test_exclude_and_clear(w):
    w.ledger.set_last_year(w.head, "已参保")
    assert enrollment(w.conn, w.head)["lapsed"] == 1
    _, rows = record(w.ledger, lambda: w.ledger.exclude(
        w.head, reason="死亡", evidence="死亡证明"), "exclude")
    e = enrollment(w.conn, w.head)
    assert (e["exclude_reason"], e["status"], e["lapsed"]) == ("deceased", "excluded", 0)
    _, rows = record(w.ledger, lambda: w.ledger.clear_exclusion(w.head), "clear_exclusion")
    e = enrollment(w.conn, w.head)
    assert (e["exclude_reason"], e["exclude_evidence"], e["status"], e["lapsed"]) == \
        (None, None, "unpaid", 1)


def test_set_subsidy_full_pending_then_arrived(w):
    _, rows = record(w.ledger, lambda: w.ledger.set_subsidy(
        w.spouse, category="特困人员", kind="全额资助", department="民政"), "set_subsidy")
    assert ("person", "categories") in fields(rows)
    e = enrollment(w.conn, w.spouse)
    assert (e["subsidy_category"], e["subsidy_kind"], e["subsidy_dept"], e["status"]) == \
        ("tekun", "full", "civil", "subsidy_pending")
    assert row(w.conn, "person", w.spouse)["categories"] == "tekun"
    w.ledger.set_subsidy(w.spouse, category="tekun", kind="full", department="civil",
                         arrived="2026.10.8")
    e = enrollment(w.conn, w.spouse)
    assert (e["subsidy_arrived"], e["status"]) == ("2026-10-08", "subsidized")


def test_set_subsidy_fixed_keeps_unpaid_and_merges_categories(w):
    w.ledger.edit_person(w.head, categories="脱贫人口")
    w.ledger.set_subsidy(w.head, category="低保对象", kind="定额资助", amount="240.00")
    e = enrollment(w.conn, w.head)
    assert (e["subsidy_kind"], e["subsidy_amount"], e["status"]) == ("fixed", 240.0, "unpaid")
    assert row(w.conn, "person", w.head)["categories"] == "dibao,tuopin"


def test_clear_subsidy(w):
    w.ledger.set_subsidy(w.spouse, category="特困人员", kind="全额资助")
    _, rows = record(w.ledger, lambda: w.ledger.clear_subsidy(w.spouse), "clear_subsidy")
    assert fields(rows) == {("enrollment", "subsidy_category"), ("enrollment", "subsidy_kind")}
    e = enrollment(w.conn, w.spouse)
    assert (e["subsidy_kind"], e["status"]) == (None, "unpaid")


def test_set_last_year(w):
    _, rows = record(w.ledger, lambda: w.ledger.set_last_year(w.child, "paid"), "set_last_year")
    assert fields(rows) == {("enrollment", "last_year_status")}
    assert enrollment(w.conn, w.child)["lapsed"] == 1
    w.ledger.claim_paid(w.child)
    assert enrollment(w.conn, w.child)["lapsed"] == 0
    w.ledger.set_last_year(w.child, "未参保")
    assert enrollment(w.conn, w.child)["last_year_status"] == "unpaid"


def test_status_precedence_through_the_ledger(w):
    """confirmed > excluded > elsewhere > subsidized > claimed > subsidy_pending > unpaid."""
    lg, p = w.ledger, w.head
    lg.set_subsidy(p, category="特困人员", kind="全额资助")
    assert status(w.conn, p) == "subsidy_pending"
    lg.claim_paid(p, channel="微信")
    assert status(w.conn, p) == "claimed"
    lg.set_subsidy(p, category="特困人员", kind="全额资助", arrived="2026-10-01")
    assert status(w.conn, p) == "subsidized"
    lg.mark_elsewhere(p, place="外省")
    assert status(w.conn, p) == "elsewhere"
    lg.exclude(p, reason="现役军人")
    assert status(w.conn, p) == "excluded"
    lg.confirm_paid(p, date="2026-10-02")
    assert status(w.conn, p) == "confirmed"
    lg.clear_exclusion(p)
    lg.clear_elsewhere(p)
    assert status(w.conn, p) == "confirmed"


# ---------------------------------------------------------------------------
# Visits


def test_record_visit_updates_household(w):
    gid, rows = record(w.ledger, lambda: w.ledger.record_visit(
        w.hh, method="上门", date="2026-09-10", person_gid=w.child, outcome="承诺缴费",
        reason="经济困难", note=" 下周再来 ", next_date="2026-09-13"), "record_visit")
    assert fields(rows) == {("visit", "*")}
    v = row(w.conn, "visit", gid)
    assert (v["household_gid"], v["person_gid"], v["date"], v["visitor"], v["method"],
            v["outcome"], v["reason"], v["note"], v["next_date"]) == \
        (w.hh, w.child, "2026-09-10", OPERATOR, "door", "promised", "hardship", "下周再来",
         "2026-09-13")
    h = row(w.conn, "household", w.hh)
    assert (h["last_visit"], h["next_follow_up"]) == ("2026-09-10", "2026-09-13")
    # an older visit entered later does not replace the latest
    w.ledger.record_visit(w.hh, method="电话", date="2026-09-01", next_date="2026-09-05",
                          visitor="覃志强")
    h = row(w.conn, "household", w.hh)
    assert (h["last_visit"], h["next_follow_up"]) == ("2026-09-10", "2026-09-13")
    # a newer one does, with its own (empty) follow-up
    w.ledger.record_visit(w.hh, method="wechat", date="2026-09-12")
    h = row(w.conn, "household", w.hh)
    assert (h["last_visit"], h["next_follow_up"]) == ("2026-09-12", None)
    assert w.conn.execute("SELECT count(*) FROM visit WHERE household_gid=?",
                          (w.hh,)).fetchone()[0] == 3


def test_record_visit_defaults_to_today(w):
    before = dt.date.today().isoformat()
    gid = w.ledger.record_visit(w.hh2, method="电话")
    day = row(w.conn, "visit", gid)["date"]
    assert day in {before, dt.date.today().isoformat()}
    assert row(w.conn, "household", w.hh2)["last_visit"] == day


EXPECTED_FOLLOW_UP = {
    # reason: (days, a fragment of the suggested action)
    "away_work": (3, "电话"), "away_study": (5, "联系家长"), "elsewhere": (7, "外地参保证明"),
    "healthy": (7, "算细账"), "fee": (7, "财政补助"), "policy": (5, "明白卡"),
    "selective": (5, "等待期"), "hardship": (3, "资助"), "later": (3, "约定日期"),
    "online": (3, "截止日期"), "says_paid": (2, "税务缴费名单"), "other": (7, "回访"),
}


@pytest.mark.parametrize("reason", sorted(EXPECTED_FOLLOW_UP))
def test_suggest_follow_up_per_reason(reason):
    days, fragment = EXPECTED_FOLLOW_UP[reason]
    on = dt.date(2026, 9, 28)
    when, action = suggest_follow_up(reason, on)
    assert when == (on + dt.timedelta(days=days)).isoformat()
    assert fragment in action


def test_suggest_follow_up_labels_none_and_bad():
    on = dt.date(2026, 12, 30)
    assert suggest_follow_up("经济困难", on) == ("2027-01-02", suggest_follow_up("hardship", on)[1])
    assert suggest_follow_up(None, on)[0] == "2027-01-06"
    with pytest.raises(ValidationError, match="未缴原因"):
        suggest_follow_up("不想交", on)


# ---------------------------------------------------------------------------
# Clock and batches


def test_clock_increases_across_calls_and_ledgers(w):
    top = max_hlc(w.conn)
    again = Ledger(w.ledger.store, operator=OPERATOR)
    _, rows = record(again, lambda: again.claim_paid(w.head))
    assert rows[0]["hlc"] > top
    txns = [r[0] for r in w.conn.execute(
        "SELECT DISTINCT txn FROM change WHERE op IN ('add_unit','add_household','add_person')")]
    assert len(txns) == 10 + 2 + 4  # one transaction id per ledger call


def test_batch_commits_all_in_one_go(w):
    before = change_count(w.conn)
    with w.ledger.batch():
        for p in (w.head, w.spouse, w.child, w.other):
            w.ledger.claim_paid(p, channel="微信")
        assert w.conn.in_transaction
    assert not w.conn.in_transaction
    # One row per person: claim_date, claim_channel, claim_by set together
    # (claim_tier stays empty).
    assert change_count(w.conn) == before + 4
    assert {status(w.conn, p) for p in (w.head, w.spouse, w.child, w.other)} == {"claimed"}


@pytest.mark.parametrize("error", [ValidationError, NotFoundError, RuntimeError])
def test_batch_rolls_back_everything_on_error(w, error):
    before = snapshot(w.conn)

    def bad():
        if error is ValidationError:
            w.ledger.claim_paid(w.child, channel="现金")
        elif error is NotFoundError:
            w.ledger.claim_paid("p-does-not-exist")
        else:
            raise RuntimeError("boom")

    with pytest.raises(error):
        with w.ledger.batch():
            w.ledger.claim_paid(w.head, channel="微信")
            w.ledger.record_visit(w.hh, method="上门")
            w.ledger.add_person(w.hh, name="赵新人", id_number=make_id(800))
            bad()
    assert snapshot(w.conn) == before
    assert not w.conn.in_transaction
    # the ledger still works afterwards
    w.ledger.claim_paid(w.head)
    assert status(w.conn, w.head) == "claimed"


def test_batch_error_caught_inside_undoes_only_that_call(w):
    with w.ledger.batch():
        w.ledger.claim_paid(w.head, channel="微信")
        with pytest.raises(ValidationError):
            w.ledger.delete_household(w.hh)
        with w.ledger.batch():  # nested batches join the outer one
            w.ledger.claim_paid(w.spouse, channel="支付宝")
    assert status(w.conn, w.head) == status(w.conn, w.spouse) == "claimed"
    assert row(w.conn, "household", w.hh)["deleted"] == 0


# ---------------------------------------------------------------------------
# No-op writes


NO_OPS: dict[str, tuple[Callable[[World], Any] | None, Callable[[World], Any]]] = {
    # name: (setup, the repeated call)
    "add_unit": (None, lambda w: w.ledger.add_unit(G111, "一组")),
    "rename_unit": (None, lambda w: w.ledger.rename_unit(V11, " 上坪村 ")),
    "set_target": (lambda w: w.ledger.set_target(V11, 50, milestones=[("2026-11-20", 0.8)]),
                   lambda w: w.ledger.set_target(V11, "50", milestones=[("2026/11/20", "0.8")])),
    "edit_household": (None, lambda w: w.ledger.edit_household(
        w.hh, address="一组1号", phone="139 0000 0001", unit_code=G111, head_gid=w.head)),
    "edit_person": (None, lambda w: w.ledger.edit_person(
        w.head, name="赵 大成", relation="户主",
        id_number=" " + row(w.conn, "person", w.head)["id_number"].lower() + " ")),
    "edit_person_categories": (
        lambda w: w.ledger.edit_person(w.spouse, categories="低保对象,脱贫人口"),
        lambda w: w.ledger.edit_person(w.spouse, categories=["tuopin", "dibao"])),
    "move_person": (None, lambda w: w.ledger.move_person(w.child, w.hh)),
    "claim_paid": (lambda w: w.ledger.claim_paid(w.head, date="2026-09-15", channel="微信"),
                   lambda w: w.ledger.claim_paid(w.head, date="2026年9月15日", channel="wechat")),
    "retract_claim": (None, lambda w: w.ledger.retract_claim(w.head)),
    "confirm_paid": (lambda w: w.ledger.confirm_paid(w.head, date="2026-09-20", amount=400),
                     lambda w: w.ledger.confirm_paid(w.head, date="20260920", amount="400元")),
    "mark_elsewhere": (lambda w: w.ledger.mark_elsewhere(w.head, place="外省"),
                       lambda w: w.ledger.mark_elsewhere(w.head, place=" 外省 ")),
    "clear_elsewhere": (None, lambda w: w.ledger.clear_elsewhere(w.head)),
    "exclude": (lambda w: w.ledger.exclude(w.head, reason="死亡"),
                lambda w: w.ledger.exclude(w.head, reason="deceased")),
    "clear_exclusion": (None, lambda w: w.ledger.clear_exclusion(w.head)),
    "set_subsidy": (lambda w: w.ledger.set_subsidy(w.head, category="特困人员", kind="全额资助"),
                    lambda w: w.ledger.set_subsidy(w.head, category="tekun", kind="full")),
    "clear_subsidy": (None, lambda w: w.ledger.clear_subsidy(w.head)),
    "set_last_year": (None, lambda w: w.ledger.set_last_year(w.head, "不详")),
}


@pytest.mark.parametrize("name", list(NO_OPS))
def test_no_op_writes_nothing(w, name):
    setup, again = NO_OPS[name]
    if setup:
        setup(w)
    assert_no_op(w.ledger, lambda: again(w))


@pytest.mark.parametrize("edit", ["person_notes_empty", "household_address_spaces"])
def test_edit_normalises_text_like_add(w, edit):
    if edit == "person_notes_empty":
        assert_no_op(w.ledger, lambda: w.ledger.edit_person(w.head, notes=""))
    else:
        assert_no_op(w.ledger, lambda: w.ledger.edit_household(w.hh, address=" 一组1号 "))


# ---------------------------------------------------------------------------
# Refusals: typed error, Chinese message, nothing written

V = ValidationError
N = NotFoundError

INVALID: dict[str, tuple[Callable[[World], Any], type[Exception], tuple[str, ...]]] = {
    # units and targets
    "unit_code_length": (lambda w: w.ledger.add_unit("99990100", "某村"), V, ("单位代码",)),
    "unit_code_letters": (lambda w: w.ledger.add_unit("99990A", "某县"), V, ("单位代码",)),
    "unit_name_missing": (lambda w: w.ledger.add_unit("999901003", "  "), V, ("单位名称不能为空",)),
    "unit_parent_unknown": (lambda w: w.ledger.add_unit("999901001009001", "一组"), N,
                            ("999901001009", "不存在")),
    "rename_unit_empty": (lambda w: w.ledger.rename_unit(V11, ""), V, ("单位名称不能为空",)),
    "rename_unit_unknown": (lambda w: w.ledger.rename_unit("999901009", "新镇"), N, ("不存在",)),
    "target_not_int": (lambda w: w.ledger.set_target(V11, "一百"), V, ("不是整数",)),
    "target_negative": (lambda w: w.ledger.set_target(V11, -1), V, ("不能为负数",)),
    "target_fraction": (lambda w: w.ledger.set_target(V11, 9, milestones=[("2026-11-20", 1.5)]),
                        V, ("0到1之间",)),
    "target_milestone_date": (lambda w: w.ledger.set_target(V11, 9, milestones=[("11月20日", 0.8)]),
                              V, ("节点日期", "不是有效日期")),
    "target_unit_unknown": (lambda w: w.ledger.set_target("999901009", 9), N, ("不存在",)),
    # households
    "household_unit_unknown": (lambda w: w.ledger.add_household("999901001001009"), N,
                               ("不存在",)),
    "household_unit_village": (lambda w: w.ledger.add_household(V11), V, ("户只能建在组/网格下",)),
    "household_phone": (lambda w: w.ledger.add_household(G111, phone="12345"), V, ("电话号码",)),
    "edit_household_field": (lambda w: w.ledger.edit_household(w.hh, owner="某人"), V,
                             ("不能修改户的字段", "owner")),
    "edit_household_phone": (lambda w: w.ledger.edit_household(w.hh, phone="139000"), V,
                             ("电话号码",)),
    "edit_household_level": (lambda w: w.ledger.edit_household(w.hh, unit_code=T1), V,
                             ("户只能建在组/网格下",)),
    "edit_household_unit_unknown": (lambda w: w.ledger.edit_household(
        w.hh, unit_code="999901001001009"), N, ("不存在",)),
    "edit_household_head": (lambda w: w.ledger.edit_household(w.hh, head_gid=w.other), V,
                            ("户主必须是本户成员",)),
    "edit_household_unknown": (lambda w: w.ledger.edit_household("h-nope", address="x"), N,
                               ("该户不存在",)),
    "delete_household_members": (lambda w: w.ledger.delete_household(w.hh), V,
                                 ("还有3名成员",)),
    "delete_household_unknown": (lambda w: w.ledger.delete_household("h-nope"), N, ("该户",)),
    # persons
    "person_checksum": (lambda w: w.ledger.add_person(
        w.hh, name="李明", id_number=bad_checksum(make_id(600))), V, ("校验位",)),
    "person_id_length": (lambda w: w.ledger.add_person(
        w.hh, name="李明", id_number="99990119900101"), V, ("18位",)),
    "person_id_birth": (lambda w: w.ledger.add_person(
        w.hh, name="李明", id_number="999901" + "20991301" + "0010"), V, ("出生日期",)),
    "person_id_excel": (lambda w: w.ledger.add_person(
        w.hh, name="李明", id_number="9.99901199E+17"), V, ("Excel",)),
    "person_name_missing": (lambda w: w.ledger.add_person(w.hh, name="  ", id_number=make_id(601)),
                            V, ("姓名不能为空",)),
    "person_name_chars": (lambda w: w.ledger.add_person(w.hh, name="李明2", id_number=make_id(601)),
                          V, ("不能用于姓名",)),
    "person_relation": (lambda w: w.ledger.add_person(w.hh, name="李明", relation="朋友"), V,
                        ("与户主关系", "朋友")),
    "person_phone": (lambda w: w.ledger.add_person(w.hh, name="李明", phone="139000"), V,
                     ("电话号码",)),
    "person_category": (lambda w: w.ledger.add_person(w.hh, name="李明", categories=["富人"]), V,
                        ("特殊人群类别",)),
    "person_last_year": (lambda w: w.ledger.add_person(w.hh, name="李明", last_year_status="也许"),
                         V, ("上年参保状态",)),
    "person_household_unknown": (lambda w: w.ledger.add_person("h-nope", name="李明"), N,
                                 ("该户",)),
    "edit_person_field": (lambda w: w.ledger.edit_person(w.head, sex="M"), V,
                          ("不能修改人员的字段",)),
    "edit_person_checksum": (lambda w: w.ledger.edit_person(
        w.head, id_number=bad_checksum(row(w.conn, "person", w.head)["id_number"])), V,
                             ("校验位",)),
    "edit_person_name": (lambda w: w.ledger.edit_person(w.head, name=""), V, ("姓名不能为空",)),
    "edit_person_unknown": (lambda w: w.ledger.edit_person("p-nope", name="李明"), N,
                            ("该人员",)),
    "move_person_household": (lambda w: w.ledger.move_person(w.head, "h-nope"), N, ("该户",)),
    "move_person_unknown": (lambda w: w.ledger.move_person("p-nope", w.hh2), N, ("该人员",)),
    "delete_person_unknown": (lambda w: w.ledger.delete_person("p-nope"), N, ("该人员",)),
    # enrollment facts
    "claim_channel": (lambda w: w.ledger.claim_paid(w.head, channel="现金"), V, ("缴费渠道",)),
    "claim_future": (lambda w: w.ledger.claim_paid(w.head, date=FAR_FUTURE), V, ("在今天之后",)),
    "claim_date_malformed": (lambda w: w.ledger.claim_paid(w.head, date="2026-02-30"), V,
                             ("缴费日期", "不是有效日期")),
    "claim_date_garbage": (lambda w: w.ledger.claim_paid(w.head, date="上周五"), V,
                           ("不是有效日期",)),
    "claim_unknown": (lambda w: w.ledger.claim_paid("p-nope"), N, ("该人员",)),
    "claim_deleted": (lambda w: w.ledger.claim_paid(w.child), N, ("该人员",)),  # see below
    "retract_unknown": (lambda w: w.ledger.retract_claim("p-nope"), N, ("该人员",)),
    "confirm_no_date": (lambda w: w.ledger.confirm_paid(w.head, date=None), V,
                        ("确认日期不能为空",)),
    "confirm_date_malformed": (lambda w: w.ledger.confirm_paid(w.head, date="2026.13.1"), V,
                               ("不是有效日期",)),
    "confirm_amount": (lambda w: w.ledger.confirm_paid(w.head, date="2026-09-01", amount="四百"),
                       V, ("缴费金额", "不是数字")),
    "confirm_amount_negative": (lambda w: w.ledger.confirm_paid(
        w.head, date="2026-09-01", amount=-1), V, ("超出合理范围",)),
    "confirm_unknown": (lambda w: w.ledger.confirm_paid("p-nope", date="2026-09-01"), N,
                        ("该人员",)),
    "elsewhere_no_place": (lambda w: w.ledger.mark_elsewhere(w.head, place=" "), V,
                           ("在何处参保",)),
    "elsewhere_unknown": (lambda w: w.ledger.mark_elsewhere("p-nope", place="外省"), N,
                          ("该人员",)),
    "clear_elsewhere_unknown": (lambda w: w.ledger.clear_elsewhere("p-nope"), N, ("该人员",)),
    "exclude_reason": (lambda w: w.ledger.exclude(w.head, reason="搬家"), V, ("剔除原因",)),
    "exclude_unknown": (lambda w: w.ledger.exclude("p-nope", reason="死亡"), N, ("该人员",)),
    "clear_exclusion_unknown": (lambda w: w.ledger.clear_exclusion("p-nope"), N, ("该人员",)),
    "subsidy_category": (lambda w: w.ledger.set_subsidy(w.head, category="富人", kind="全额资助"),
                         V, ("资助类别",)),
    "subsidy_kind": (lambda w: w.ledger.set_subsidy(w.head, category="低保对象", kind="半额"), V,
                     ("资助方式",)),
    "subsidy_fixed_no_amount": (lambda w: w.ledger.set_subsidy(
        w.head, category="低保对象", kind="定额资助"), V, ("定额资助须填写资助金额",)),
    "subsidy_department": (lambda w: w.ledger.set_subsidy(
        w.head, category="低保对象", kind="全额资助", department="财政"), V, ("代缴部门",)),
    "subsidy_arrived": (lambda w: w.ledger.set_subsidy(
        w.head, category="低保对象", kind="全额资助", arrived="十月"), V, ("到账日期",)),
    "subsidy_unknown": (lambda w: w.ledger.set_subsidy(
        "p-nope", category="低保对象", kind="全额资助"), N, ("该人员",)),
    "clear_subsidy_unknown": (lambda w: w.ledger.clear_subsidy("p-nope"), N, ("该人员",)),
    "last_year_status": (lambda w: w.ledger.set_last_year(w.head, "也许"), V, ("上年参保状态",)),
    "last_year_unknown": (lambda w: w.ledger.set_last_year("p-nope", "paid"), N, ("该人员",)),
    # visits
    "visit_method": (lambda w: w.ledger.record_visit(w.hh, method="飞鸽传书"), V, ("走访方式",)),
    "visit_future": (lambda w: w.ledger.record_visit(w.hh, method="上门", date=FAR_FUTURE), V,
                     ("在今天之后",)),
    "visit_date_malformed": (lambda w: w.ledger.record_visit(w.hh, method="上门", date="9月1日"),
                             V, ("走访日期", "不是有效日期")),
    "visit_next_before": (lambda w: w.ledger.record_visit(
        w.hh, method="上门", date="2026-09-10", next_date="2026-09-09"), V,
                          ("不能早于走访日期",)),
    "visit_next_malformed": (lambda w: w.ledger.record_visit(
        w.hh, method="上门", date="2026-09-10", next_date="下周"), V, ("下次回访日期",)),
    "visit_person_elsewhere": (lambda w: w.ledger.record_visit(
        w.hh, method="上门", person_gid=w.other), V, ("不属于这一户",)),
    "visit_outcome": (lambda w: w.ledger.record_visit(w.hh, method="上门", outcome="很好"), V,
                      ("走访结果",)),
    "visit_reason": (lambda w: w.ledger.record_visit(w.hh, method="上门", reason="不想交"), V,
                     ("未缴原因",)),
    "visit_household_unknown": (lambda w: w.ledger.record_visit("h-nope", method="上门"), N,
                                ("该户",)),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_input_is_refused_and_writes_nothing(w, case):
    action, error, fragments = INVALID[case]
    if case == "claim_deleted":
        w.ledger.delete_person(w.child)
    assert_refused(w.ledger, lambda: action(w), error, *fragments)


def test_add_unit_refuses_parent_that_is_not_its_prefix(w):
    assert_refused(w.ledger, lambda: w.ledger.add_unit("999901001001003", "三组",
                                                       parent_code=COUNTY), ValidationError)


def test_set_target_non_numeric_fraction_is_validation_error(w):
    assert_refused(w.ledger, lambda: w.ledger.set_target(V11, 9, milestones=[("2026-11-20", "八成")]),
                   ValidationError, "节点进度")


def test_confirm_paid_refuses_future_date(w):
    assert_refused(w.ledger, lambda: w.ledger.confirm_paid(w.head, date=FAR_FUTURE),
                   ValidationError, "在今天之后")


# ---------------------------------------------------------------------------
# Parsing helpers


@pytest.mark.parametrize("text", [
    "2026-09-01", "2026/9/1", "2026.9.1", "20260901", "2026年9月1日", " 2026-9-01 ",
    dt.date(2026, 9, 1), dt.datetime(2026, 9, 1, 15, 30)])
def test_parse_date_accepts(text):
    assert parse_date(text) == "2026-09-01"


@pytest.mark.parametrize("text", [
    "garbage", "2026-02-30", "2026-13-01", "2026/9", "9/1/2026", "2026年9月", "26-9-1",
    "202691", "2026-09-01x"])
def test_parse_date_rejects(text):
    with pytest.raises(ValidationError) as info:
        parse_date(text, "缴费日期")
    message = str(info.value)
    assert "缴费日期" in message and "不是有效日期" in message and text.strip() in message
    assert info.value.field == "缴费日期"


def test_parse_date_empty():
    with pytest.raises(ValidationError, match="走访日期不能为空"):
        parse_date("", "走访日期")
    with pytest.raises(ValidationError, match="不能为空"):
        parse_date(None)
    assert parse_date(None, required=False) is None
    assert parse_date("", required=False) is None


@pytest.mark.parametrize("text,expected", [
    ("400元", 400.0), ("400.00", 400.0), (" 380 元 ", 380.0), ("1,200", 1200.0),
    ("1，200元", 1200.0), (400, 400.0), ("0", 0.0), (None, None), ("", None), ("  ", None)])
def test_parse_amount_accepts(text, expected):
    assert parse_amount(text) == expected


@pytest.mark.parametrize("text,fragment", [
    ("四百元", "不是数字"), ("400块", "不是数字"), ("-1", "超出合理范围"),
    ("100001", "超出合理范围"), ("inf", "超出合理范围")])
def test_parse_amount_rejects(text, fragment):
    with pytest.raises(ValidationError) as info:
        parse_amount(text, "缴费金额")
    assert fragment in str(info.value) and "缴费金额" in str(info.value)


def test_parse_amount_rejects_nan():
    with pytest.raises(ValidationError):
        parse_amount("nan")


@pytest.mark.parametrize("text,expected", [
    ("13900001234", "13900001234"), ("139 0000 1234", "13900001234"),
    ("+86 13900001234", "13900001234"), ("１３９００００１２３４", "13900001234"),
    ("0773-1234567", "0773-1234567"), ("(0773)12345678", "077312345678"), (None, None),
    ("", None)])
def test_parse_phone(text, expected):
    assert parse_phone(text) == expected


@pytest.mark.parametrize("text", ["12345", "2390000123", "139000012345", "电话"])
def test_parse_phone_rejects(text):
    with pytest.raises(ValidationError, match="电话号码"):
        parse_phone(text)


def test_parse_name():
    assert parse_name(" 张  秀英 ") == "张秀英"
    assert parse_name("买买提·艾力") == "买买提·艾力"
    with pytest.raises(ValidationError, match="姓名不能为空"):
        parse_name(None)
    with pytest.raises(ValidationError, match="不能用于姓名"):
        parse_name("张@英")
