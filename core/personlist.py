"""The person list behind the ledger screen: filters, household order, rows.

A list at county scale has a million persons, so it is never loaded as rows:
the UI asks for the ordered ids (`iter_ids`, streamed in chunks, a first page
fast with `first_ids`) and fetches display rows for the few hundred ids on
screen (`rows_for`). Everything here only reads.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.domain import Status

# Household order: group, household number, head first, then by birth.
ORDER = ("h.unit_code, CAST(h.number AS INTEGER), h.number, h.id, "
         "p.relation != 'head', p.birth_date, p.id")


@dataclass(frozen=True)
class PersonFilter:
    """What the ledger screen shows. Empty fields mean 'no restriction'."""

    year: int = 2027
    unit: str | None = None                 # unit code: that unit and everything under it
    statuses: frozenset[str] = frozenset()  # Status codes
    lapsed_only: bool = False
    special_only: bool = False
    worker: str | None = None
    never_visited: bool = False
    follow_up_due: dt.date | None = None    # next follow-up on or before this day
    ids: tuple[int, ...] | None = None      # a search result: only these persons

    def sql(self) -> tuple[str, list[Any]]:
        """FROM/WHERE part shared by every query of the list."""
        where = ["p.deleted = 0", "h.deleted = 0"]
        args: list[Any] = []
        if self.unit:
            where.append("h.unit_code >= ? AND h.unit_code < ?")
            args += [self.unit, self.unit + "\uffff"]
        if self.statuses:
            where.append(f"e.status IN ({','.join('?' * len(self.statuses))})")
            args += sorted(self.statuses)
        if self.lapsed_only:
            where.append("e.lapsed = 1")
        if self.special_only:
            where.append("p.categories IS NOT NULL")
        if self.worker:
            where.append("h.worker = ?")
            args.append(self.worker)
        if self.never_visited:
            where.append("h.last_visit IS NULL")
        if self.follow_up_due:
            where.append("h.next_follow_up <= ?")
            args.append(self.follow_up_due.isoformat())
        if self.ids is not None:
            where.append(f"p.id IN ({','.join('?' * len(self.ids))})" if self.ids else "0")
            args += list(self.ids)
        # CROSS JOIN keeps SQLite walking households in index order, so a LIMIT
        # stops early instead of sorting a million rows first. A search result
        # is the other way round: a few hundred ids, looked up directly.
        join = ("FROM person p JOIN household h ON h.gid = p.household_gid "
                if self.ids is not None else
                "FROM household h CROSS JOIN person p ON p.household_gid = h.gid ")
        sql = (join +
               "LEFT JOIN enrollment e ON e.gid = p.gid || '/' || ? "
               "WHERE " + " AND ".join(where))
        return sql, [str(self.year), *args]


def first_ids(conn: sqlite3.Connection, f: PersonFilter, limit: int = 200) -> list[int]:
    """The first page, fast: enough to paint while the rest streams in."""
    body, args = f.sql()
    return [r[0] for r in conn.execute(
        f"SELECT p.id {body} ORDER BY {ORDER} LIMIT ?", [*args, limit])]


def iter_ids(conn: sqlite3.Connection, f: PersonFilter,
             chunk: int = 50_000) -> Iterator[list[int]]:
    """Every matching id in household order, in chunks (for a worker thread)."""
    body, args = f.sql()
    cur = conn.execute(f"SELECT p.id {body} ORDER BY {ORDER}", args)
    while True:
        rows = cur.fetchmany(chunk)
        if not rows:
            return
        yield [r[0] for r in rows]


@dataclass
class PersonRow:
    id: int
    gid: str
    name: str
    id_number: str | None
    birth_date: str | None
    sex: str | None
    relation: str | None
    phone: str | None
    categories: str | None
    household_gid: str
    household_number: str | None
    head_name: str | None
    group_code: str
    worker: str | None
    status: str | None
    lapsed: bool
    last_year_status: str | None
    last_visit: str | None
    next_follow_up: str | None
    claim_channel: str | None = None
    subsidy_category: str | None = None
    deleted: bool = False       # removed since the list was loaded (e.g. an undone add)

    def age(self, on: dt.date) -> int | None:
        if not self.birth_date:
            return None
        born = dt.date.fromisoformat(self.birth_date)
        return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


_ROW_SQL = """
SELECT p.id, p.gid, p.name, p.id_number, p.birth_date, p.sex, p.relation, p.phone,
       p.categories, h.gid, h.number,
       (SELECT hp.name FROM person hp WHERE hp.gid = h.head_gid),
       h.unit_code, h.worker, e.status, e.lapsed, e.last_year_status,
       h.last_visit, h.next_follow_up, e.claim_channel, e.subsidy_category,
       p.deleted OR h.deleted
FROM person p JOIN household h ON h.gid = p.household_gid
LEFT JOIN enrollment e ON e.gid = p.gid || '/' || ?
WHERE p.id IN ({})
"""


def rows_for(conn: sqlite3.Connection, ids: Sequence[int], year: int) -> dict[int, PersonRow]:
    """Display rows for some ids (a screenful), keyed by id."""
    out: dict[int, PersonRow] = {}
    for start in range(0, len(ids), 500):
        part = list(ids[start:start + 500])
        for r in conn.execute(_ROW_SQL.format(",".join("?" * len(part))), [str(year), *part]):
            out[r[0]] = PersonRow(*r[:15], bool(r[15]), *r[16:21], bool(r[21]))
    return out


# ---------------------------------------------------------------------------
# One household, for the detail panel


@dataclass
class VisitRow:
    gid: str
    date: str
    visitor: str | None
    method: str
    outcome: str | None
    reason: str | None
    note: str | None
    next_date: str | None
    person_name: str | None


@dataclass
class HouseholdDetail:
    gid: str
    number: str | None
    unit_code: str
    place: str                 # 乡镇 村 组, for people
    address: str | None
    phone: str | None
    worker: str | None
    head_gid: str | None
    members: list[PersonRow] = field(default_factory=list)
    visits: list[VisitRow] = field(default_factory=list)


def place_name(conn: sqlite3.Connection, unit_code: str) -> str:
    """'青山镇 上家头 第三组' for a group code."""
    codes = [unit_code[:w] for w in (9, 12, 15) if len(unit_code) >= w]
    names = dict(conn.execute(
        f"SELECT gid, name FROM unit WHERE gid IN ({','.join('?' * len(codes))})", codes))
    return " ".join(names.get(c, c) for c in codes)


def household_detail(conn: sqlite3.Connection, gid: str, year: int) -> HouseholdDetail | None:
    row = conn.execute("SELECT gid, number, unit_code, address, phone, worker, head_gid "
                       "FROM household WHERE gid=? AND deleted=0", (gid,)).fetchone()
    if row is None:
        return None
    detail = HouseholdDetail(row[0], row[1], row[2], place_name(conn, row[2]), *row[3:])
    ids = [r[0] for r in conn.execute(
        "SELECT p.id FROM person p WHERE p.household_gid=? AND p.deleted=0 "
        "ORDER BY p.relation != 'head', p.birth_date, p.id", (gid,))]
    rows = rows_for(conn, ids, year)
    detail.members = [rows[i] for i in ids if i in rows]
    detail.visits = [VisitRow(*r) for r in conn.execute(
        "SELECT v.gid, v.date, v.visitor, v.method, v.outcome, v.reason, v.note, v.next_date, "
        "p.name FROM visit v LEFT JOIN person p ON p.gid = v.person_gid "
        "WHERE v.household_gid=? ORDER BY v.date DESC, v.gid DESC", (gid,))]
    return detail


def workers(conn: sqlite3.Connection, unit: str | None = None) -> list[str]:
    """The workers named on households (under a unit), for a filter list."""
    sql = "SELECT DISTINCT worker FROM household WHERE worker IS NOT NULL AND deleted=0"
    args: list[Any] = []
    if unit:
        sql += " AND unit_code >= ? AND unit_code < ?"
        args = [unit, unit + "\uffff"]
    return [r[0] for r in conn.execute(sql + " ORDER BY worker", args)]


UNPAID = frozenset({Status.UNPAID.value, Status.SUBSIDY_PENDING.value})
