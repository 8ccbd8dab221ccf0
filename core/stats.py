"""Counts by unit: how far each township, village and group has come.

Counts are read from the enrollment index (year, group_code, status, lapsed),
grouped by group and rolled up in Python: a county has a few thousand groups,
so this never touches a million rows in Python.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from core.domain import CODE_LENGTH, ENROLLED, Level, Status


@dataclass
class UnitCounts:
    code: str
    name: str
    level: str
    total: int = 0
    lapsed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    target: int | None = None

    @property
    def enrolled(self) -> int:
        return sum(self.by_status.get(s.value, 0) for s in ENROLLED)

    @property
    def unpaid(self) -> int:
        return self.by_status.get(Status.UNPAID.value, 0) + \
            self.by_status.get(Status.SUBSIDY_PENDING.value, 0)

    @property
    def rate(self) -> float | None:
        """Enrolled ÷ target, or ÷ all persons when no target is set."""
        base = self.target if self.target else self.total
        return self.enrolled / base if base else None


def status_counts(conn: sqlite3.Connection, year: int, level: Level | str = Level.VILLAGE,
                  under: str | None = None) -> list[UnitCounts]:
    """Persons by status for every unit of `level` (optionally under one unit)."""
    level = Level(level)
    width = CODE_LENGTH[level]
    sql = ("SELECT group_code, status, count(*), sum(lapsed) FROM enrollment "
           "WHERE year=? AND group_code IS NOT NULL")
    args: list[object] = [year]
    if under:
        sql += " AND group_code >= ? AND group_code < ?"
        args += [under, under + "\uffff"]
    sql += " GROUP BY group_code, status"
    units = {code: UnitCounts(code, name, lv) for code, name, lv in conn.execute(
        "SELECT gid, name, level FROM unit WHERE level=? AND deleted=0"
        + (" AND gid >= ? AND gid < ?" if under else "") + " ORDER BY gid",
        [level.value] + ([under, under + "\uffff"] if under else []))}
    for group_code, status, count, lapsed in conn.execute(sql, args):
        code = group_code[:width]
        unit = units.get(code)
        if unit is None:  # persons in a unit not (yet) known here
            unit = units[code] = UnitCounts(code, f"（未知单位 {code}）", level.value)
        unit.total += count
        unit.lapsed += lapsed or 0
        unit.by_status[status] = unit.by_status.get(status, 0) + count
    for code, count in conn.execute(
            "SELECT unit_code, count FROM target WHERE year=? AND length(unit_code)=?",
            (year, width)):
        if code in units:
            units[code].target = count
    return sorted(units.values(), key=lambda u: u.code)


def totals(conn: sqlite3.Connection, year: int) -> dict[str, int]:
    """Counts of the whole database: units, households, persons, by status."""
    out = {
        "units": conn.execute("SELECT count(*) FROM unit WHERE deleted=0").fetchone()[0],
        "households": conn.execute("SELECT count(*) FROM household WHERE deleted=0").fetchone()[0],
        "persons": conn.execute("SELECT count(*) FROM person WHERE deleted=0").fetchone()[0],
        "visits": conn.execute("SELECT count(*) FROM visit").fetchone()[0],
        "changes": conn.execute("SELECT count(*) FROM change").fetchone()[0],
        "conflicts": conn.execute("SELECT count(*) FROM conflict WHERE resolved=0").fetchone()[0],
    }
    for status, count in conn.execute(
            "SELECT status, count(*) FROM enrollment WHERE year=? AND group_code IS NOT NULL "
            "GROUP BY status", (year,)):
        out[status] = count
    out["lapsed"] = conn.execute(
        "SELECT count(*) FROM enrollment WHERE year=? AND group_code IS NOT NULL AND lapsed=1",
        (year,)).fetchone()[0]
    return out


def tree_counts(conn: sqlite3.Connection, year: int) -> dict[str, UnitCounts]:
    """Counts for every unit of every level, from one pass over the progress
    index: the group rows are rolled up into their village, township and county
    by code prefix."""
    units = {code: UnitCounts(code, name, lv) for code, name, lv in conn.execute(
        "SELECT gid, name, level FROM unit WHERE deleted=0")}
    widths = sorted({CODE_LENGTH[Level(u.level)] for u in units.values()} or {15})
    for group_code, status, count, lapsed in conn.execute(
            "SELECT group_code, status, count(*), sum(lapsed) FROM enrollment "
            "WHERE year=? AND group_code IS NOT NULL GROUP BY group_code, status", (year,)):
        for width in widths:
            unit = units.get(group_code[:width])
            if unit is None:
                continue
            unit.total += count
            unit.lapsed += lapsed or 0
            unit.by_status[status] = unit.by_status.get(status, 0) + count
    for code, count in conn.execute("SELECT unit_code, count FROM target WHERE year=?", (year,)):
        if code in units:
            units[code].target = count
    return units


def children_of(units: dict[str, UnitCounts]) -> dict[str | None, list[str]]:
    """Parent code → child codes in code order, for building a tree; the roots
    (units whose parent is not present) are under None."""
    tree: dict[str | None, list[str]] = {}
    for code in sorted(units):
        parent = next((code[:w] for w in (12, 9, 6) if w < len(code) and code[:w] in units), None)
        tree.setdefault(parent, []).append(code)
    return tree
