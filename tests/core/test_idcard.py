"""core/idcard.py: GB 11643-1999 resident ID numbers.

Every number here is synthetic: built with core.idcard.make() or by hypothesis.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core import idcard
from core.errors import ValidationError

SETTINGS = settings(max_examples=200, deadline=None, database=None)

TODAY = dt.date.today()
DIGITS = "0123456789"

addresses = st.text(alphabet=DIGITS, min_size=6, max_size=6)
births = st.dates(min_value=dt.date(1880, 1, 1), max_value=TODAY)
births_1900s = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1999, 12, 31))
sequences = st.integers(min_value=0, max_value=999)


@st.composite
def numbers(draw) -> str:
    return idcard.make(draw(addresses), draw(births), draw(sequences))


# --- an independent GB 11643 / ISO 7064 MOD 11-2 implementation -----------


def reference_check_char(first17: str) -> str:
    """Weights W_i = 2^(i-1) mod 11 for position i counted from the right,
    starting at i = 2 for the last of the 17 digits (i = 1 is the check itself)."""
    assert len(first17) == 17 and first17.isdigit()
    total = 0
    for index, digit in enumerate(first17):  # index 0 is position 18 from the right
        weight = pow(2, 17 - index, 11)
        total += int(digit) * weight
    value = (12 - total % 11) % 11  # ISO 7064 MOD 11-2
    via_formula = "X" if value == 10 else str(value)
    via_table = "10X98765432"[total % 11]
    assert via_formula == via_table
    return via_formula


def to_fullwidth(text: str) -> str:
    return "".join(chr(ord("０") + int(c)) if c.isdigit() else c for c in text)


# --- make / is_valid / facts ------------------------------------------------


def test_reference_weights_are_the_standard_ones():
    assert tuple(pow(2, 17 - i, 11) for i in range(17)) == idcard.WEIGHTS


@SETTINGS
@given(addresses, births, sequences)
def test_make_gives_valid_number_with_its_facts(address, birth, seq):
    number = idcard.make(address, birth, seq)
    assert len(number) == 18
    assert number[:6] == address
    assert number[6:14] == birth.strftime("%Y%m%d")
    assert number[14:17] == f"{seq:03d}"
    assert idcard.is_valid(number)
    assert idcard.normalize(number) == number
    facts = idcard.facts(number)
    assert facts.number == number
    assert facts.birth_date == birth
    assert facts.sex == ("M" if seq % 2 else "F")
    assert facts.sex == ("M" if int(number[16]) % 2 == 1 else "F")


@SETTINGS
@given(st.text(alphabet=DIGITS, min_size=17, max_size=17))
def test_check_char_agrees_with_independent_implementation(first17):
    assert idcard.check_char(first17) == reference_check_char(first17)


def test_check_char_can_be_x():
    # Search for a 17-digit body whose check character is X, to be sure that
    # branch of the table is exercised.
    body = next(
        b for b in (idcard.make("450999", dt.date(1990, 1, 1), s)[:17] for s in range(1000))
        if reference_check_char(b) == "X"
    )
    number = body + "X"
    assert idcard.check_char(body) == "X"
    assert idcard.is_valid(number)
    assert idcard.normalize(number.lower()) == number


def test_facts_age():
    facts = idcard.facts(idcard.make("450999", dt.date(2000, 6, 15), 1))
    assert facts.age_on(dt.date(2026, 6, 14)) == 25
    assert facts.age_on(dt.date(2026, 6, 15)) == 26


# --- normalize ----------------------------------------------------------------


@SETTINGS
@given(numbers())
def test_normalize_is_idempotent(number):
    once = idcard.normalize(number)
    assert idcard.normalize(once) == once


@SETTINGS
@given(addresses, births_1900s, sequences)
def test_normalize_is_idempotent_on_15_digit_input(address, birth, seq):
    old = f"{address}{birth:%y%m%d}{seq:03d}"
    once = idcard.normalize(old)
    assert idcard.normalize(once) == once


@SETTINGS
@given(numbers(), st.data())
def test_normalize_accepts_fullwidth_lowercase_and_whitespace(number, data):
    text = to_fullwidth(number) if data.draw(st.booleans(), "fullwidth") else number
    if data.draw(st.booleans(), "lowercase"):
        text = text.lower().replace("Ｘ", "ｘ")
    # Insert spaces, tabs, ideographic spaces at arbitrary places.
    junk = st.sampled_from([" ", "\t", "\u3000", "  ", " \t"])
    inserts = data.draw(st.lists(st.tuples(st.integers(0, len(text)), junk), max_size=5))
    for position, filler in sorted(inserts, reverse=True):
        text = text[:position] + filler + text[position:]
    assert idcard.normalize(text) == number
    assert idcard.is_valid(text)


@pytest.mark.parametrize("raw_x", ["x", "X", "ｘ", "Ｘ"])
def test_normalize_accepts_every_form_of_x(raw_x):
    body = next(
        b for b in (idcard.make("450999", dt.date(1985, 3, 9), s)[:17] for s in range(1000))
        if idcard.check_char(b) == "X"
    )
    assert idcard.normalize(to_fullwidth(body[:6]) + " " + body[6:] + raw_x) == body + "X"


@SETTINGS
@given(addresses, births_1900s, sequences)
def test_15_digit_numbers_are_upgraded(address, birth, seq):
    old = f"{address}{birth:%y%m%d}{seq:03d}"
    assert len(old) == 15
    new = idcard.normalize(old)
    assert new == idcard.make(address, birth, seq)
    assert new[:6] + new[8:17] == old
    assert new[6:8] == "19"
    assert new[17] == reference_check_char(new[:17])
    assert idcard.facts(old).birth_date == birth


def test_15_digit_with_impossible_date_is_refused():
    # 1900 was not a leap year.
    with pytest.raises(ValidationError, match="出生日期"):
        idcard.normalize("450999000229123")


def test_15_digit_with_letters_is_refused():
    with pytest.raises(ValidationError, match="15位身份证号只能包含数字"):
        idcard.normalize("45099990010112X")


@SETTINGS
@given(numbers(), st.sampled_from([0, 1, 2, 3, 4, 5, 14, 15, 16]), st.integers(1, 9))
def test_one_changed_digit_fails_the_check(number, position, delta):
    changed = str((int(number[position]) + delta) % 10)
    bad = number[:position] + changed + number[position + 1:]
    assert not idcard.is_valid(bad)
    with pytest.raises(ValidationError) as info:
        idcard.normalize(bad)
    assert "校验位" in str(info.value)
    assert f"末位应为 {reference_check_char(bad[:17])}" in str(info.value)


@SETTINGS
@given(numbers(), st.integers(6, 13), st.integers(1, 9))
def test_one_changed_birth_digit_fails(number, position, delta):
    changed = str((int(number[position]) + delta) % 10)
    bad = number[:position] + changed + number[position + 1:]
    with pytest.raises(ValidationError) as info:
        idcard.normalize(bad)
    # Either the date became impossible, or it is still a date and the check fails.
    assert "校验位" in str(info.value) or "出生日期" in str(info.value)


@SETTINGS
@given(numbers(), st.sampled_from("0123456789X"))
def test_changed_check_character_fails(number, other):
    assume(other != number[17])
    bad = number[:17] + other
    with pytest.raises(ValidationError, match="校验位不符"):
        idcard.normalize(bad)


EXCEL_MESSAGE = "Excel存成了数字"


@pytest.mark.parametrize("raw", [
    "4.50321E+17",
    "4.50321e+17",
    "4.50321E17",
    " 4.50321E+17 ",
    "４.５０３２１E+１７",  # full-width digits around an ASCII E
    4.50321e17,
    float(idcard.make("450321", dt.date(1990, 1, 1), 123)),
    "450321199001011234.0",
])
def test_scientific_notation_is_refused_with_excel_message(raw):
    with pytest.raises(ValidationError) as info:
        idcard.normalize(raw)
    assert EXCEL_MESSAGE in str(info.value)
    assert "文本" in str(info.value)
    assert not idcard.is_valid(raw)


@SETTINGS
@given(numbers())
def test_valid_number_as_float_is_refused(number):
    with pytest.raises(ValidationError, match=EXCEL_MESSAGE):
        idcard.normalize(float(int(number[:17] + "0")))


@pytest.mark.parametrize("birth", [
    "19900230",  # no 30 February
    "19890229",  # 1989 not a leap year
    "19901301",  # no month 13
    "19900001",  # no month 0
    "19900100",  # no day 0
    "19900132",
    "18791231",  # before 1880
    "00000000",
])
def test_impossible_birth_dates_are_refused(birth):
    body = "450999" + birth + "123"
    number = body + reference_check_char(body)
    with pytest.raises(ValidationError) as info:
        idcard.normalize(number)
    assert "出生日期" in str(info.value) and "不存在" in str(info.value)
    assert birth in str(info.value)


def test_birth_date_after_today_is_refused():
    future = TODAY + dt.timedelta(days=1)
    number = idcard.make("450999", future, 7)
    with pytest.raises(ValidationError, match="出生日期"):
        idcard.normalize(number, today=TODAY)   # not the real today: a run can pass midnight
    # ... but accepted once that day has come.
    assert idcard.normalize(number, today=future) == number


def test_leap_day_is_accepted():
    number = idcard.make("450999", dt.date(2000, 2, 29), 8)
    assert idcard.facts(number).birth_date == dt.date(2000, 2, 29)
    assert idcard.facts(number).sex == "F"


@pytest.mark.parametrize("raw, fragment", [
    ("", "为空"),
    ("   ", "为空"),
    ("45099919900101123", "应为18位，现为17位"),
    ("4509991990010112345", "应为18位，现为19位"),
    ("45099919900101A234", "前17位须为数字"),
    ("45099919900101123Y", "前17位须为数字"),
])
def test_malformed_numbers_are_refused(raw, fragment):
    with pytest.raises(ValidationError, match=fragment):
        idcard.normalize(raw)
    assert not idcard.is_valid(raw)


# --- mask -----------------------------------------------------------------------


@SETTINGS
@given(numbers())
def test_mask_keeps_first_and_last_four(number):
    masked = idcard.mask(number)
    assert masked == number[:4] + "*" * 10 + number[-4:]
    assert len(masked) == 18
    assert number[4:14] not in masked


def test_mask_example():
    # The docstring's shape, 4503**********123X: a synthetic number ending in 123X.
    number = next(
        n for n in (idcard.make("450321", dt.date(1988, 1, 1) + dt.timedelta(days=d), 123)
                    for d in range(400))
        if n.endswith("X")
    )
    assert idcard.mask(number) == "4503**********123X"


@pytest.mark.parametrize("value, expected", [
    (None, ""),
    ("", ""),
    ("12", "12"),
    ("12345678", "12******"),
    ("450999900101123", "4509*******1123"),
])
def test_mask_short_and_empty(value, expected):
    assert idcard.mask(value) == expected
