"""Resident ID numbers (居民身份证号码, GB 11643-1999).

The 18-character form is: 6-digit address code, 8-digit birth date, 3-digit
sequence (odd = male, even = female) and a check character computed by
ISO 7064 MOD 11-2. The old 15-character form has a 6-digit birth date (YYMMDD,
all in the 1900s) and no check character.

The address code is deliberately never checked against a list of today's
counties: codes of merged or renamed counties stay valid on old cards.
"""

from __future__ import annotations

import datetime as _dt
import operator
import re
from dataclasses import dataclass

from core.errors import ValidationError

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

# Full-width digits and letters as typed by Chinese input methods, plus the
# spaces and separators that spreadsheets and copy-paste bring along.
_FULLWIDTH = {ord("０") + i: ord("0") + i for i in range(10)}
_FULLWIDTH.update({ord("Ｘ"): ord("X"), ord("ｘ"): ord("X"), ord("x"): ord("X")})
_JUNK = re.compile(r"[\s\u3000\u00a0\u200b\-—_'‘’\"“”]+")
_CANONICAL = re.compile(r"[0-9]{17}[0-9X]")
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?E\+?\d+$", re.IGNORECASE)


def check_char(first17: str) -> str:
    """The check character for the first 17 digits."""
    total = sum(map(operator.mul, map(int, first17), WEIGHTS))
    return CHECK_CHARS[total % 11]


def clean(raw: str) -> str:
    """Remove spaces and separators, unify full-width digits and lower-case x.

    Does not validate; the result may still be wrong.
    """
    return _JUNK.sub("", str(raw).translate(_FULLWIDTH)).upper()


def _birth(text: str) -> _dt.date | None:
    try:
        return _dt.date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def normalize(raw: str, *, today: _dt.date | None = None) -> str:
    """Return the canonical 18-character ID number or raise ValidationError.

    Accepts full-width digits, lower-case x, spaces and the 15-digit form
    (which is upgraded: '19' inserted into the year, check character added).
    """
    if type(raw) is str and len(raw) == 18 and _CANONICAL.match(raw):
        text = raw  # already clean: the common case in long lists
    else:
        text = clean(raw)
    if not text:
        raise ValidationError("身份证号为空")
    if _SCIENTIFIC.match(text) or re.fullmatch(r"\d+\.\d+", text):
        raise ValidationError(
            "身份证号被Excel存成了数字，后几位已丢失，请将该列设为文本后重新导出"
        )
    if len(text) == 15:
        if not text.isdigit():
            raise ValidationError(f"15位身份证号只能包含数字：{mask(text)}")
        text = text[:6] + "19" + text[6:]
        text += check_char(text)
    if len(text) != 18:
        raise ValidationError(f"身份证号应为18位，现为{len(text)}位")
    if not text[:17].isdigit() or text[17] not in "0123456789X":
        raise ValidationError("身份证号前17位须为数字，最后一位为数字或X")
    born = _birth(text[6:14])
    today = today or _dt.date.today()
    if born is None or born.year < 1880 or born > today:
        raise ValidationError(f"身份证号中的出生日期 {text[6:14]} 不存在")
    expected = check_char(text[:17])
    if text[17] != expected:
        raise ValidationError(
            f"身份证号校验位不符（末位应为 {expected}），请核对是否录错"
        )
    return text


def is_valid(raw: str) -> bool:
    try:
        normalize(raw)
    except ValidationError:
        return False
    return True


@dataclass(frozen=True)
class IdFacts:
    number: str
    birth_date: _dt.date
    sex: str  # 'M' or 'F'

    def age_on(self, day: _dt.date) -> int:
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def facts(number: str) -> IdFacts:
    """Birth date and sex derived from a (valid) ID number."""
    n = normalize(number)
    born = _birth(n[6:14])
    assert born is not None  # normalize() already checked it
    return IdFacts(n, born, "M" if int(n[16]) % 2 else "F")


def mask(number: str | None) -> str:
    """Mask for lists and printouts: 4503**********123X keeps region and tail."""
    if not number:
        return ""
    n = str(number)
    if len(n) <= 8:
        return n[:2] + "*" * max(len(n) - 2, 0)
    return n[:4] + "*" * (len(n) - 8) + n[-4:]


def make(address6: str, birth: _dt.date, seq3: int) -> str:
    """Build a valid synthetic 18-digit number (demo data and tests only)."""
    body = f"{address6}{birth:%Y%m%d}{seq3:03d}"
    return body + check_char(body)
