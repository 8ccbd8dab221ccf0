"""Synthetic test data: a small made-up county, households and persons.

Everything here is invented. ID numbers are valid GB 11643 numbers built with
core.idcard.make on the made-up address code 999901 (no real county has it),
names are common given-name/surname combinations, phones are 139 + a counter.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

from core import idcard
from core.changelog import canonical_dump
from core.ledger import Ledger

ADDRESS = "999901"

COUNTY = "999901"
T1 = "999901001"  # 青山镇
T2 = "999901002"  # 石门乡
V11 = "999901001001"  # 上坪村 (青山镇)
V12 = "999901001002"  # 下坪村 (青山镇)
V21 = "999901002001"  # 龙泉村 (石门乡)
G111 = "999901001001001"  # 上坪村 一组
G112 = "999901001001002"  # 上坪村 二组
G121 = "999901001002001"  # 下坪村 一组
G211 = "999901002001001"  # 龙泉村 一组

UNITS: tuple[tuple[str, str], ...] = (
    (COUNTY, "示范县"),
    (T1, "青山镇"),
    (T2, "石门乡"),
    (V11, "上坪村"),
    (V12, "下坪村"),
    (V21, "龙泉村"),
    (G111, "一组"),
    (G112, "二组"),
    (G121, "一组"),
    (G211, "一组"),
)
GROUPS = (G111, G112, G121, G211)
UNIT_NAMES = dict(UNITS)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英"

_UNSET: Any = object()


def birth_of(n: int) -> dt.date:
    """Birth date of the n-th synthetic person: 1940-01-01 + 11 days per n (n < 2800)."""
    assert 0 <= n < 2800
    return dt.date(1940, 1, 1) + dt.timedelta(days=11 * n)


def make_id(n: int, *, female: bool | None = None, check: str | None = None) -> str:
    """The n-th synthetic ID number: a distinct birth date per n (birth_of), so
    numbers never repeat. `female` picks the sequence parity; `check` asks for a
    number whose check character is that one (e.g. 'X')."""
    birth = birth_of(n)
    for seq in range(1, 1000):
        if female is not None and (seq % 2 == 0) != female:
            continue
        number = idcard.make(ADDRESS, birth, seq)
        if check is None or number[-1] == check:
            return number
    raise AssertionError("no sequence gives that check character")  # pragma: no cover


def make_phone(n: int) -> str:
    return f"139{n:08d}"


def made_up_name(n: int) -> str:
    return _SURNAMES[n % len(_SURNAMES)] + _GIVEN[(n * 7) % len(_GIVEN)] + \
        _GIVEN[(n * 3 + 1) % len(_GIVEN)]


def bad_checksum(number: str) -> str:
    """The same number with a wrong check character."""
    good = number[-1]
    wrong = "0" if good != "0" else "1"
    return number[:-1] + wrong


def build_county(ledger: Ledger) -> None:
    """县 → 2 乡镇 → 3 村 → 4 组, through Ledger.add_unit."""
    with ledger.batch():
        for code, name in UNITS:
            ledger.add_unit(code, name)


@dataclass
class Builder:
    """Adds households and persons with fresh synthetic IDs and phones."""

    ledger: Ledger
    _n: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next(self) -> int:
        return next(self._n)

    def household(self, group: str = G111, **kwargs: Any) -> str:
        return self.ledger.add_household(group, **kwargs)

    def person(self, household: str, name: str | None = None, *,
               id_number: Any = _UNSET, phone: Any = _UNSET, **kwargs: Any) -> str:
        n = self.next()
        return self.ledger.add_person(
            household,
            name=name if name is not None else made_up_name(n),
            id_number=make_id(n) if id_number is _UNSET else id_number,
            phone=make_phone(n) if phone is _UNSET else phone,
            **kwargs,
        )

    def family(self, group: str = G111, names: tuple[str, ...] = ("赵大成", "钱玉兰", "赵小峰"),
               **kwargs: Any) -> tuple[str, list[str]]:
        """A household whose first member is the head; returns (household, persons)."""
        hh = self.household(group, **kwargs)
        persons = [self.person(hh, names[0], relation="户主")]
        relations = ("配偶", "子", "女", "父母")
        for i, name in enumerate(names[1:]):
            persons.append(self.person(hh, name, relation=relations[i % len(relations)]))
        return hh, persons


# ---------------------------------------------------------------------------
# Reading back


def change_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM change").fetchone()[0]


def snapshot(conn) -> tuple[int, dict]:
    """What must stay identical when a write is refused."""
    return change_count(conn), canonical_dump(conn)


def row(conn, table: str, gid: str) -> dict[str, Any]:
    cur = conn.execute(f"SELECT * FROM {table} WHERE gid=?", (gid,))
    values = cur.fetchone()
    assert values is not None, f"no {table} {gid}"
    return dict(zip([d[0] for d in cur.description], values))


def enrollment(conn, person_gid: str, year: int = 2027) -> dict[str, Any]:
    return row(conn, "enrollment", f"{person_gid}/{year}")


def status(conn, person_gid: str, year: int = 2027) -> str:
    return enrollment(conn, person_gid, year)["status"]


def max_hlc(conn) -> str:
    return conn.execute("SELECT coalesce(max(hlc), '') FROM change").fetchone()[0]


def changes_after(conn, hlc: str) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT hlc, entity, gid, field, value, prev, operator, op, txn, node FROM change "
        "WHERE hlc > ? ORDER BY hlc", (hlc,))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]
