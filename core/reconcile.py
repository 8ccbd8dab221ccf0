"""Reconciliation with the tax bureau's paid list.

Importing the paid list (core.importer, kind 'paid') confirms everyone on it:
ticked and paid, or paid but never ticked. What is left to check is the other
way round: people ticked as paid (自报) whom the tax bureau's list still does
not show after some days — the payment may have failed, gone to another
place, or never happened.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from core.domain import Channel, Status


@dataclass
class UnconfirmedClaim:
    person_gid: str
    name: str
    id_number: str | None
    place: str
    household_number: str | None
    claim_date: str
    days: int
    channel: str
    claim_by: str | None


def unconfirmed_claims(conn: sqlite3.Connection, year: int, *, days: int = 15,
                       unit: str | None = None,
                       today: dt.date | None = None) -> list[UnconfirmedClaim]:
    """Claimed paid more than `days` ago and not confirmed by the tax bureau."""
    today = today or dt.date.today()
    cutoff = (today - dt.timedelta(days=days)).isoformat()
    under = unit or ""
    units = dict(conn.execute("SELECT gid, name FROM unit"))
    out = []
    for pgid, name, number, code, hnum, claim, channel, by in conn.execute(
            "SELECT p.gid, p.name, p.id_number, e.group_code, h.number, e.claim_date, "
            "e.claim_channel, e.claim_by FROM enrollment e "
            "JOIN person p ON p.gid = e.person_gid JOIN household h ON h.gid = p.household_gid "
            "WHERE e.year=? AND e.status=? AND e.claim_date <= ? AND e.group_code >= ? "
            "AND e.group_code < ? ORDER BY e.group_code, CAST(h.number AS INTEGER), e.claim_date",
            (year, Status.CLAIMED.value, cutoff, under, under + "\uffff")):
        place = " ".join(units.get(code[:w], "") for w in (9, 12, 15))
        out.append(UnconfirmedClaim(pgid, name, number, place, hnum, claim,
                                    (today - dt.date.fromisoformat(claim)).days,
                                    Channel.label_of(channel), by))
    return out
