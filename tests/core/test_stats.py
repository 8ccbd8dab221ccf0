"""Counts by unit against hand-computed numbers on a small ledger."""

from __future__ import annotations

import pytest

from core.domain import Level
from core.ledger import Ledger
from core.stats import UnitCounts, children_of, status_counts, totals, tree_counts
from tests.core.factories import (
    COUNTY, G111, G112, G121, G211, T1, T2, V11, V12, V21, Builder, build_county, change_count,
)

YEAR = 2027
V13 = "999901001003"   # 新村: a village with a group but nobody in it
G131 = "999901001003001"


class Small:
    """15 persons; statuses for 2027 (hand-computed below):

    G111 (上坪村 一组): p1 claimed, p2 confirmed, p3 unpaid+lapsed, p4 excluded (paid last year)
    G112 (上坪村 二组): p5 elsewhere, p6 subsidy_pending+lapsed, p7 subsidized, p8 unpaid (fixed subsidy)
    G121 (下坪村 一组): p9 claimed (paid last year), p10 unpaid, p11 deleted (had claimed)
    G211 (龙泉村 一组): p12 confirmed, p13 unpaid+lapsed, p14 claimed (moved in from G111),
                        p15 unpaid in 2027, claimed for 2026
    """

    def __init__(self, store) -> None:
        lg = self.ledger = Ledger(store, operator="测试员", year=YEAR)
        self.conn = store.conn
        build_county(lg)
        lg.add_unit(V13, "新村")
        lg.add_unit(G131, "一组")
        b = Builder(lg)
        ha, hb, hc, hd = (b.household(g) for g in (G111, G112, G121, G211))
        p = {i: b.person(h) for i, h in [
            (1, ha), (2, ha), (3, ha), (4, ha), (5, hb), (6, hb), (7, hb), (8, hb),
            (9, hc), (10, hc), (11, hc), (12, hd), (13, hd), (14, ha), (15, hd)]}
        lg.claim_paid(p[1], channel="微信")
        lg.confirm_paid(p[2], date="2026-10-01", amount=400)
        lg.set_last_year(p[3], "已参保")
        lg.set_last_year(p[4], "已参保")
        lg.claim_paid(p[4], channel="微信")  # claimed, then found to have died
        lg.exclude(p[4], reason="死亡")
        lg.mark_elsewhere(p[5], place="广东省职工医保")
        lg.set_last_year(p[6], "paid")
        lg.set_subsidy(p[6], category="特困人员", kind="全额资助")
        lg.set_subsidy(p[7], category="特困人员", kind="全额资助", arrived="2026-10-10")
        lg.set_subsidy(p[8], category="低保对象", kind="定额资助", amount=240)
        lg.set_last_year(p[9], "paid")
        lg.claim_paid(p[9], channel="支付宝")
        lg.claim_paid(p[11], channel="微信")
        lg.delete_person(p[11])
        lg.claim_paid(p[12], date="2026-10-01", channel="微信")
        lg.confirm_paid(p[12], date="2026-10-02")  # the tax list confirms a claim
        lg.set_last_year(p[13], "paid")
        lg.claim_paid(p[14], channel="云闪付")
        lg.move_person(p[14], hd)
        lg.claim_paid(p[15], date="2025-10-01", year=2026)
        lg.set_target(V11, 6)
        lg.set_target(V21, 8)
        lg.set_target(V12, 100, year=2026)  # another year: not used for 2027
        lg.set_target(T1, 20)
        lg.set_target(G111, 4)
        lg.record_visit(hb, method="上门", date="2026-10-05")
        lg.record_visit(hd, method="电话", date="2026-10-06")
        self.p = p
        self.households = (ha, hb, hc, hd)


@pytest.fixture
def small(store) -> Small:
    return Small(store)


def by_code(counts: list[UnitCounts]) -> dict[str, UnitCounts]:
    return {u.code: u for u in counts}


EXPECTED_GROUPS = {
    G111: (4, 1, {"claimed": 1, "confirmed": 1, "unpaid": 1, "excluded": 1}),
    G112: (4, 1, {"elsewhere": 1, "subsidy_pending": 1, "subsidized": 1, "unpaid": 1}),
    G121: (2, 0, {"claimed": 1, "unpaid": 1}),
    G131: (0, 0, {}),
    G211: (4, 1, {"confirmed": 1, "unpaid": 2, "claimed": 1}),
}


def test_groups(small):
    counts = status_counts(small.conn, YEAR, Level.GROUP)
    assert [u.code for u in counts] == [G111, G112, G121, G131, G211]
    got = by_code(counts)
    for code, (total, lapsed, statuses) in EXPECTED_GROUPS.items():
        u = got[code]
        assert (u.total, u.lapsed, u.by_status) == (total, lapsed, statuses), code
        assert u.level == "group"
    assert got[G111].name == "一组"
    assert (got[G111].enrolled, got[G111].unpaid) == (2, 1)
    assert (got[G112].enrolled, got[G112].unpaid) == (1, 2)
    assert (got[G211].enrolled, got[G211].unpaid) == (2, 2)
    assert got[G111].target == 4 and got[G111].rate == pytest.approx(0.5)
    assert got[G112].target is None and got[G112].rate == pytest.approx(1 / 4)
    assert got[G131].rate is None


def test_villages(small):
    got = by_code(status_counts(small.conn, YEAR, "village"))
    assert list(got) == [V11, V12, V13, V21]
    v11 = got[V11]
    assert (v11.name, v11.level, v11.total, v11.lapsed) == ("上坪村", "village", 8, 2)
    assert v11.by_status == {"claimed": 1, "confirmed": 1, "unpaid": 2, "excluded": 1,
                             "elsewhere": 1, "subsidy_pending": 1, "subsidized": 1}
    assert (v11.enrolled, v11.unpaid, v11.target) == (3, 3, 6)
    assert v11.rate == pytest.approx(0.5)
    v12 = got[V12]
    assert (v12.total, v12.enrolled, v12.unpaid, v12.target) == (2, 1, 1, None)
    assert v12.rate == pytest.approx(0.5)   # no 2027 target: enrolled ÷ persons
    v21 = got[V21]
    assert (v21.total, v21.lapsed, v21.enrolled, v21.unpaid, v21.target) == (4, 1, 2, 2, 8)
    assert v21.rate == pytest.approx(0.25)
    v13 = got[V13]
    assert (v13.name, v13.total, v13.by_status, v13.target, v13.rate) == ("新村", 0, {}, None, None)


def test_townships_and_county(small):
    got = by_code(status_counts(small.conn, YEAR, Level.TOWNSHIP))
    assert list(got) == [T1, T2]
    t1, t2 = got[T1], got[T2]
    assert (t1.name, t1.total, t1.lapsed, t1.enrolled, t1.unpaid, t1.target) == \
        ("青山镇", 10, 2, 4, 4, 20)
    assert t1.rate == pytest.approx(0.2)
    assert (t2.name, t2.total, t2.lapsed, t2.enrolled, t2.unpaid, t2.target) == \
        ("石门乡", 4, 1, 2, 2, None)
    assert t2.rate == pytest.approx(0.5)
    [county] = status_counts(small.conn, YEAR, Level.COUNTY)
    assert (county.code, county.total, county.lapsed, county.enrolled) == (COUNTY, 14, 3, 6)


def test_levels_roll_up_consistently(small):
    for level in (Level.GROUP, Level.VILLAGE, Level.TOWNSHIP, Level.COUNTY):
        counts = status_counts(small.conn, YEAR, level)
        assert sum(u.total for u in counts) == 14
        assert sum(u.lapsed for u in counts) == 3
        assert sum(u.total for u in counts) == sum(sum(u.by_status.values()) for u in counts)


def test_tree_counts_agree_with_status_counts(small):
    tree = tree_counts(small.conn, YEAR)
    assert set(tree) == {COUNTY, T1, T2, V11, V12, V13, V21, G111, G112, G121, G131, G211}
    for level in (Level.GROUP, Level.VILLAGE, Level.TOWNSHIP, Level.COUNTY):
        for u in status_counts(small.conn, YEAR, level):
            t = tree[u.code]
            assert (t.total, t.lapsed, t.by_status, t.target, t.level) == \
                (u.total, u.lapsed, u.by_status, u.target, u.level), u.code
    children = children_of(tree)
    assert children[None] == [COUNTY]
    assert children[COUNTY] == [T1, T2]
    assert children[T1] == [V11, V12, V13]
    assert children[V11] == [G111, G112]


def test_under_restricts(small):
    assert [u.code for u in status_counts(small.conn, YEAR, Level.GROUP, under=V11)] == \
        [G111, G112]
    villages = status_counts(small.conn, YEAR, Level.VILLAGE, under=T1)
    assert [u.code for u in villages] == [V11, V12, V13]
    assert sum(u.total for u in villages) == 10
    assert [u.code for u in status_counts(small.conn, YEAR, Level.GROUP, under=T2)] == [G211]


def test_other_year(small):
    got = by_code(status_counts(small.conn, 2026, Level.VILLAGE))
    assert got[V21].total == 1 and got[V21].by_status == {"claimed": 1}
    assert got[V11].total == 0
    assert got[V12].target == 100 and got[V12].rate == 0.0


def test_counts_follow_edits(small):
    lg, p = small.ledger, small.p
    lg.retract_claim(p[1])
    lg.claim_paid(p[10], channel="微信")
    lg.edit_household(small.households[1], unit_code=G121)   # G112's household moves
    got = by_code(status_counts(small.conn, YEAR, Level.GROUP))
    assert got[G111].by_status == {"confirmed": 1, "unpaid": 2, "excluded": 1}
    assert got[G112].total == 0 and got[G112].by_status == {}
    assert got[G121].by_status == {"claimed": 2, "elsewhere": 1, "subsidy_pending": 1,
                                   "subsidized": 1, "unpaid": 1}
    assert got[G121].lapsed == 1


def test_totals(small):
    t = totals(small.conn, YEAR)
    assert t["units"] == 12
    assert t["households"] == 4
    assert t["persons"] == 14
    assert t["visits"] == 2
    assert t["changes"] == change_count(small.conn) > 0
    assert t["conflicts"] == 0
    assert t["lapsed"] == 3
    statuses = {k: v for k, v in t.items() if k in {
        "claimed", "confirmed", "unpaid", "excluded", "elsewhere", "subsidy_pending",
        "subsidized"}}
    assert statuses == {"claimed": 3, "confirmed": 2, "unpaid": 5, "excluded": 1,
                        "elsewhere": 1, "subsidy_pending": 1, "subsidized": 1}
    other = totals(small.conn, 2026)
    assert other["claimed"] == 1 and "unpaid" not in other and other["lapsed"] == 0
    assert other["persons"] == 14


def test_empty_ledger(store):
    assert status_counts(store.conn, YEAR) == []
    t = totals(store.conn, YEAR)
    assert (t["units"], t["persons"], t["changes"], t["lapsed"]) == (0, 0, 0, 0)


def test_unit_counts_rate_rules():
    u = UnitCounts("x", "某村", "village", total=10, by_status={"claimed": 3, "confirmed": 2,
                                                              "subsidized": 1, "unpaid": 4})
    assert (u.enrolled, u.unpaid) == (6, 4)
    assert u.rate == pytest.approx(0.6)
    u.target = 12
    assert u.rate == pytest.approx(0.5)
    assert UnitCounts("y", "空村", "village").rate is None
