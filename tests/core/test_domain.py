"""core/domain.py: the vocabulary and the status precedence rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import domain
from core.domain import (
    ENROLLED, NEXT_ACTION, RESOLVED, Channel, LabelledEnum, LastYear, Reason, Status,
    SubsidyKind, derive_status, is_lapsed,
)
from core.errors import ValidationError

SETTINGS = settings(max_examples=200, deadline=None, database=None)

ALL_ENUMS = [
    obj for obj in vars(domain).values()
    if isinstance(obj, type) and issubclass(obj, LabelledEnum) and obj is not LabelledEnum
]


# --- derive_status: one test per rule of the documented precedence -------------


def test_rule_1_confirmed_date():
    assert derive_status({"confirmed_date": "2026-10-01"}) is Status.CONFIRMED


def test_rule_2_exclude_reason():
    assert derive_status({"exclude_reason": "military"}) is Status.EXCLUDED


def test_rule_3_elsewhere_place():
    assert derive_status({"elsewhere_place": "广东省深圳市职工医保"}) is Status.ELSEWHERE


def test_rule_4_full_subsidy_arrived():
    e = {"subsidy_kind": "full", "subsidy_arrived": "2026-09-20"}
    assert derive_status(e) is Status.SUBSIDIZED


def test_rule_5_claim_date():
    assert derive_status({"claim_date": "2026-09-15"}) is Status.CLAIMED


def test_rule_6_full_subsidy_not_arrived():
    assert derive_status({"subsidy_kind": "full", "subsidy_arrived": None}) \
        is Status.SUBSIDY_PENDING
    assert derive_status({"subsidy_kind": "full"}) is Status.SUBSIDY_PENDING


def test_rule_7_otherwise_unpaid():
    assert derive_status({}) is Status.UNPAID
    assert derive_status({
        "confirmed_date": None, "exclude_reason": None, "elsewhere_place": "",
        "subsidy_kind": None, "subsidy_arrived": None, "claim_date": None,
        "last_year_status": "paid",
    }) is Status.UNPAID


def test_full_subsidy_accepts_enum_member():
    assert derive_status({"subsidy_kind": SubsidyKind.FULL}) is Status.SUBSIDY_PENDING


@pytest.mark.parametrize("arrived", [None, "2026-09-20"])
def test_fixed_subsidy_does_not_change_status(arrived):
    e = {"subsidy_kind": "fixed", "subsidy_amount": 200.0, "subsidy_arrived": arrived}
    assert derive_status(e) is Status.UNPAID
    assert derive_status({**e, "claim_date": "2026-09-15"}) is Status.CLAIMED
    assert derive_status({**e, "confirmed_date": "2026-10-01"}) is Status.CONFIRMED


# --- derive_status: higher precedence wins ------------------------------------

EVERYTHING = {
    "confirmed_date": "2026-10-01",
    "exclude_reason": "deceased",
    "elsewhere_place": "外省",
    "subsidy_kind": "full",
    "subsidy_arrived": "2026-09-20",
    "claim_date": "2026-09-15",
}


@pytest.mark.parametrize("drop, expected", [
    ((), Status.CONFIRMED),
    (("confirmed_date",), Status.EXCLUDED),
    (("confirmed_date", "exclude_reason"), Status.ELSEWHERE),
    (("confirmed_date", "exclude_reason", "elsewhere_place"), Status.SUBSIDIZED),
    (("confirmed_date", "exclude_reason", "elsewhere_place", "subsidy_arrived"),
     Status.CLAIMED),
    (("confirmed_date", "exclude_reason", "elsewhere_place", "subsidy_arrived",
      "claim_date"), Status.SUBSIDY_PENDING),
    (tuple(EVERYTHING), Status.UNPAID),
])
def test_precedence_peeling_off_the_top(drop, expected):
    e = {k: v for k, v in EVERYTHING.items() if k not in drop}
    assert derive_status(e) is expected


@pytest.mark.parametrize("e, expected", [
    ({"confirmed_date": "2026-10-01", "exclude_reason": "abroad"}, Status.CONFIRMED),
    ({"confirmed_date": "2026-10-01", "claim_date": "2026-09-01"}, Status.CONFIRMED),
    ({"confirmed_date": "2026-10-01", "subsidy_kind": "full"}, Status.CONFIRMED),
    ({"exclude_reason": "abroad", "elsewhere_place": "外省"}, Status.EXCLUDED),
    ({"exclude_reason": "abroad", "claim_date": "2026-09-01"}, Status.EXCLUDED),
    ({"elsewhere_place": "外省", "claim_date": "2026-09-01"}, Status.ELSEWHERE),
    ({"elsewhere_place": "外省", "subsidy_kind": "full"}, Status.ELSEWHERE),
    ({"subsidy_kind": "full", "subsidy_arrived": "2026-09-20",
      "claim_date": "2026-09-01"}, Status.SUBSIDIZED),
    ({"subsidy_kind": "full", "claim_date": "2026-09-01"}, Status.CLAIMED),
])
def test_higher_precedence_wins(e, expected):
    assert derive_status(e) is expected


def reference_status(e: dict) -> Status:
    """The docstring's table, transcribed independently."""
    rules = [
        (lambda: bool(e.get("confirmed_date")), Status.CONFIRMED),
        (lambda: bool(e.get("exclude_reason")), Status.EXCLUDED),
        (lambda: bool(e.get("elsewhere_place")), Status.ELSEWHERE),
        (lambda: e.get("subsidy_kind") == "full" and bool(e.get("subsidy_arrived")),
         Status.SUBSIDIZED),
        (lambda: bool(e.get("claim_date")), Status.CLAIMED),
        (lambda: e.get("subsidy_kind") == "full", Status.SUBSIDY_PENDING),
    ]
    return next((status for applies, status in rules if applies()), Status.UNPAID)


facts = st.fixed_dictionaries({}, optional={
    "confirmed_date": st.sampled_from([None, "", "2026-10-01"]),
    "exclude_reason": st.sampled_from([None, "", "military", "deceased"]),
    "elsewhere_place": st.sampled_from([None, "", "外省"]),
    "subsidy_kind": st.sampled_from([None, "full", "fixed"]),
    "subsidy_arrived": st.sampled_from([None, "", "2026-09-20"]),
    "claim_date": st.sampled_from([None, "", "2026-09-15"]),
})


@SETTINGS
@given(facts)
def test_derive_status_matches_documented_table(e):
    assert derive_status(e) is reference_status(e)


# --- is_lapsed ------------------------------------------------------------------


@pytest.mark.parametrize("last", [*LastYear, None])
@pytest.mark.parametrize("status", list(Status))
def test_is_lapsed_for_every_last_year_and_status(last, status):
    last_code = last.value if last is not None else None
    expected = last is LastYear.PAID and status in (Status.UNPAID, Status.SUBSIDY_PENDING)
    assert is_lapsed(last_code, status) is expected
    assert is_lapsed(last_code, status.value) is expected  # codes work as well


@pytest.mark.parametrize("status", list(Status))
def test_lapsed_means_paid_last_year_and_unresolved_now(status):
    assert is_lapsed("paid", status) is (status not in RESOLVED)
    if status in ENROLLED:
        assert not is_lapsed("paid", status)


def test_enrolled_and_resolved_sets():
    assert ENROLLED == {Status.CONFIRMED, Status.SUBSIDIZED, Status.CLAIMED}
    assert RESOLVED - ENROLLED == {Status.EXCLUDED, Status.ELSEWHERE}
    assert set(Status) - RESOLVED == {Status.UNPAID, Status.SUBSIDY_PENDING}


# --- LabelledEnum -----------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_ENUMS, ids=lambda c: c.__name__)
def test_parse_accepts_code_label_and_member(cls):
    for member in cls:
        assert cls.parse(member.value, "字段") is member
        assert cls.parse(member.label, "字段") is member
        assert cls.parse(member, "字段") is member


@pytest.mark.parametrize("cls", ALL_ENUMS, ids=lambda c: c.__name__)
def test_codes_and_labels_are_unique(cls):
    # A repeated code would silently turn a member into an alias of another.
    assert len(list(cls)) == len(cls.__members__)
    labels = [m.label for m in cls]
    assert len(set(labels)) == len(labels)
    # A label that equals another member's code would make parse() ambiguous.
    codes = {m.value for m in cls}
    assert all(m.label not in codes - {m.value} for m in cls)
    assert cls.labels() == {m.value: m.label for m in cls}


@pytest.mark.parametrize("garbage", ["银联", "WeChat", "", "  微信  ", None, 3, "wechat,alipay"])
def test_parse_rejects_garbage_naming_the_field(garbage):
    with pytest.raises(ValidationError) as info:
        Channel.parse(garbage, "缴费渠道")
    message = str(info.value)
    assert message.startswith("缴费渠道")
    assert "无效" in message
    assert "可选" in message and "微信" in message and "支付宝" in message


def test_parse_rejects_member_of_another_enum():
    with pytest.raises(ValidationError, match="未缴原因"):
        Reason.parse(Status.UNPAID, "未缴原因")


@SETTINGS
@given(st.text(max_size=12))
def test_parse_accepts_exactly_codes_and_labels(text):
    accepted = {m.value for m in Reason} | {m.label for m in Reason}
    if text in accepted:
        assert Reason.parse(text, "未缴原因") in Reason
    else:
        with pytest.raises(ValidationError, match="未缴原因"):
            Reason.parse(text, "未缴原因")


def test_members_are_strings_equal_to_their_codes():
    assert Status.CONFIRMED == "confirmed"
    assert Status("unpaid") is Status.UNPAID
    assert Status.CLAIMED.label == "已缴(自报)"


# --- NEXT_ACTION --------------------------------------------------------------------


def test_next_action_covers_every_reason():
    assert set(NEXT_ACTION) == set(Reason)


@pytest.mark.parametrize("reason", list(Reason))
def test_next_action_is_chinese_text_and_positive_days(reason):
    action, days = NEXT_ACTION[reason]
    assert isinstance(action, str) and action.strip()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in action)
    assert isinstance(days, int) and 1 <= days <= 30


def test_label_of_shows_labels_and_passes_unknown_codes_through():
    assert Status.label_of("confirmed") == "税务已确认"
    assert Reason.label_of(Reason.FEE) == "嫌缴费标准高"
    assert Status.label_of(None) == ""
    assert Status.label_of("") == ""
    assert Status.label_of("from_a_newer_version") == "from_a_newer_version"
