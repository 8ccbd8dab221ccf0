"""The follow-up queue (回访): which households to go back to, and what to try.

A household is due when its latest visit set a next follow-up date and someone
in it has still not paid. The queue is ordered for a worker's day: overdue
first, then today, then the coming days; within each, the easiest first —
households with last year's payers (断保, they paid before and usually pay
again) before those who never enrolled — and the earliest date first.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Any

from core.domain import NEXT_ACTION, Reason, Status

OVERDUE, TODAY, SOON = "overdue", "today", "soon"
BUCKET_LABELS = {OVERDUE: "已逾期", TODAY: "今天到期", SOON: "近7天"}


@dataclass
class FollowUp:
    household_gid: str
    household_number: str | None
    unit_code: str
    head_name: str | None
    worker: str | None
    phone: str | None
    next_date: str
    bucket: str
    unpaid: int          # members still to pay
    lapsed: int          # of whom paid last year
    reason: str | None   # from the latest visit
    outcome: str | None
    last_visit: str | None
    action: str          # what to try next, from the reason

    @property
    def overdue_days(self) -> int:
        return max(0, (dt.date.today() - dt.date.fromisoformat(self.next_date)).days)


def suggested_action(reason: str | None) -> str:
    try:
        return NEXT_ACTION[Reason(reason)][0] if reason else NEXT_ACTION[Reason.OTHER][0]
    except ValueError:  # a reason code from a newer version
        return NEXT_ACTION[Reason.OTHER][0]


def queue(conn: sqlite3.Connection, year: int, today: dt.date | None = None, *,
          unit: str | None = None, worker: str | None = None, days: int = 7,
          limit: int = 2000) -> list[FollowUp]:
    """Households due for a follow-up on or before today + `days`."""
    today = today or dt.date.today()
    horizon = (today + dt.timedelta(days=days)).isoformat()
    where = ["h.deleted = 0", "h.next_follow_up IS NOT NULL", "h.next_follow_up <= ?"]
    args: list[Any] = [horizon]
    if unit:
        where.append("h.unit_code >= ? AND h.unit_code < ?")
        args += [unit, unit + "\uffff"]
    if worker:
        where.append("h.worker = ?")
        args.append(worker)
    unpaid = (Status.UNPAID.value, Status.SUBSIDY_PENDING.value)
    sql = f"""
    SELECT h.gid, h.number, h.unit_code,
           (SELECT name FROM person WHERE gid = h.head_gid), h.worker, h.phone,
           h.next_follow_up, h.last_visit, m.unpaid, m.lapsed,
           (SELECT v.reason FROM visit v WHERE v.household_gid = h.gid
            ORDER BY v.date DESC, v.gid DESC LIMIT 1),
           (SELECT v.outcome FROM visit v WHERE v.household_gid = h.gid
            ORDER BY v.date DESC, v.gid DESC LIMIT 1)
    FROM household h
    JOIN (SELECT p.household_gid AS hgid, count(*) AS unpaid, sum(e.lapsed) AS lapsed
          FROM person p JOIN enrollment e ON e.gid = p.gid || '/' || ?
          WHERE p.deleted = 0 AND e.status IN (?, ?)
          GROUP BY p.household_gid) m ON m.hgid = h.gid
    WHERE {' AND '.join(where)}
    ORDER BY h.next_follow_up < ? DESC, h.next_follow_up = ? DESC,
             m.lapsed > 0 DESC, h.next_follow_up, h.unit_code, CAST(h.number AS INTEGER)
    LIMIT ?"""
    # The unpaid-member subquery is correlated through the join; restrict it to
    # the due households first so a county-wide queue does not count everyone.
    sql = sql.replace("GROUP BY p.household_gid",
                      "AND p.household_gid IN (SELECT gid FROM household h WHERE "
                      + " AND ".join(where) + ") GROUP BY p.household_gid")
    t = today.isoformat()
    params = [str(year), *unpaid, *args, *args, t, t, limit]
    out = []
    for r in conn.execute(sql, params):
        next_date = r[6]
        bucket = OVERDUE if next_date < t else (TODAY if next_date == t else SOON)
        out.append(FollowUp(r[0], r[1], r[2], r[3], r[4], r[5], next_date, bucket,
                            r[8], r[9] or 0, r[10], r[11], r[7], suggested_action(r[10])))
    return out
