"""The change log and how changes are applied — the part that makes sync possible.

Every write, local or from another installation, is a list of change rows
applied by `apply_changes()`; the ledger service only builds and validates them.
So a village laptop and the county office run the very same code path.

Rules (DESIGN.md §4):

* A change is (hlc, entity, gid, field, value, prev). `hlc` is a hybrid logical
  clock timestamp, unique across installations, and is the change id: applying
  a change already in the log does nothing.
* field '*' creates the entity: its value holds every synced field, an absent
  key meaning null. Two installations creating the same entity (the same
  person, whose gid derives from the ID number) merge field by field.
* field '+' sets several fields of an existing entity at once: its value is an
  object of just those fields, and `prev` is the clock they all had as the
  writer saw them (a writer whose fields had different clocks writes one row
  per clock). One ledger call setting four fields (a tick: date, channel,
  tier, who) is one row instead of four; for a county's paid list that halves
  the rows written. Each field is still merged on its own, as below.
* Each field keeps the clock of the change that set it (the row's `clk` map,
  falling back to the clock of '*'). A change wins only if its clock is greater:
  last writer wins per field. Visits are insert-only; deletion is a tombstone
  field `deleted`. The result depends only on the set of changes seen, never on
  the order they arrived in.
* `prev` is the clock of the field as the writer saw it. When changes are
  delivered per origin in clock order (as sync packages do), a change whose
  prev differs from the field's current clock was made without knowing the
  current value: the two edits were concurrent. Where their values differ,
  both are kept in `conflict` for a person to review; choosing the loser is
  just a new change.
* A change for an entity that has not arrived yet waits in `pending` and is
  applied as soon as the entity is created.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from core import hlc as hlc_mod
from core import idcard
from core.domain import Status, derive_status, is_lapsed
from core.errors import SyncError
from core.search import index_rows

# ---------------------------------------------------------------------------
# Entities


@dataclass(frozen=True)
class EntitySpec:
    name: str
    fields: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    insert_only: bool = False

    @property
    def table(self) -> str:
        return self.name


ENTITIES: dict[str, EntitySpec] = {
    s.name: s
    for s in (
        EntitySpec("unit", ("name", "level", "parent_code", "deleted"), {"deleted": 0}),
        EntitySpec(
            "household",
            ("number", "unit_code", "address", "phone", "worker", "head_gid", "deleted"),
            {"deleted": 0},
        ),
        EntitySpec(
            "person",
            ("household_gid", "name", "id_number", "relation", "phone", "categories",
             "notes", "deleted"),
            {"deleted": 0},
        ),
        EntitySpec(
            "enrollment",
            ("person_gid", "year", "claim_date", "claim_channel", "claim_tier", "claim_by",
             "confirmed_date", "confirmed_amount", "elsewhere_place", "elsewhere_evidence",
             "exclude_reason", "exclude_evidence", "subsidy_category", "subsidy_kind",
             "subsidy_amount", "subsidy_dept", "subsidy_arrived", "last_year_status"),
        ),
        EntitySpec(
            "visit",
            ("household_gid", "person_gid", "date", "visitor", "method", "outcome",
             "reason", "note", "next_date"),
            insert_only=True,
        ),
        EntitySpec("target", ("unit_code", "year", "count", "milestones")),
    )
}

# Local columns recomputed from synced ones (never sent, but compared in dumps).
DERIVED: dict[str, tuple[str, ...]] = {
    "household": ("last_visit", "next_follow_up"),
    "person": ("birth_date", "sex"),
    "enrollment": ("status", "lapsed", "group_code"),
}

# Fields that point at another entity (the schema's foreign keys): field -> entity.
# A change that would make a row point at an entity not yet here waits in
# `pending` for that entity, as an edit waits for the entity it edits.
REFERENCES: dict[str, dict[str, str]] = {
    "household": {"unit_code": "unit"},
    "person": {"household_gid": "household"},
    "enrollment": {"person_gid": "person"},
    "visit": {"household_gid": "household", "person_gid": "person"},
    "target": {"unit_code": "unit"},
}

# Fields whose change means derived data elsewhere must be refreshed.
_PERSON_INDEXED = {"name", "id_number", "phone", "deleted", "household_gid"}
_HOUSEHOLD_PLACED = {"unit_code", "deleted"}


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Canonical JSON: the same value always gives the same text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class Change(NamedTuple):
    hlc: str
    entity: str
    gid: str
    field: str
    value: str | None  # JSON text
    prev: str | None = None
    operator: str | None = None
    op: str | None = None
    txn: str | None = None

    @property
    def node(self) -> str:
        return hlc_mod.node_of(self.hlc)


CHANGE_COLUMNS = Change._fields


def change_values(field_name: str, value: str | None) -> dict[str, Any]:
    """The fields a change row sets, with their values: one field, several
    ('+'), or, for a creation ('*'), every field it names."""
    decoded = json.loads(value) if value is not None else None
    if field_name in ("*", "+"):
        return dict(decoded or {})
    return {field_name: decoded}


@dataclass
class ApplyReport:
    new: int = 0
    known: int = 0
    conflicts: int = 0
    pending: int = 0
    households: set[str] = field(default_factory=set)
    persons: set[str] = field(default_factory=set)

    def merge(self, other: "ApplyReport") -> None:
        self.new += other.new
        self.known += other.known
        self.conflicts += other.conflicts
        self.pending += other.pending
        self.households |= other.households
        self.persons |= other.persons


# ---------------------------------------------------------------------------
# Applying


class _Touched:
    """What derived data to refresh once a batch is applied."""

    def __init__(self) -> None:
        self.persons: set[str] = set()
        self.households: set[str] = set()
        self.enrollments: set[str] = set()
        self.visit_households: set[str] = set()


# The highest clock held from a node, raised to `max_hlc` if that is higher.
_RAISE_KNOWLEDGE = ("INSERT INTO knowledge(node, max_hlc) VALUES(?, ?) ON CONFLICT(node) "
                    "DO UPDATE SET max_hlc=max(max_hlc, excluded.max_hlc)")


def _effective(clk: Mapping[str, str], name: str) -> str:
    return clk.get(name, clk.get("*", ""))


def validate_change(c: Change) -> None:
    spec = ENTITIES.get(c.entity)
    if spec is None:
        raise SyncError(f"变更记录中有未知的数据类型“{c.entity}”，可能来自更新版本的参保通。")
    if not hlc_mod.is_valid(c.hlc):
        raise SyncError("变更记录的时间戳格式错误，文件可能已损坏。")
    if c.field == "+":
        try:
            values = json.loads(c.value or "")
        except ValueError:
            values = None
        if not isinstance(values, dict) or not values:
            raise SyncError("变更记录的内容格式错误，文件可能已损坏。")
        unknown = sorted(set(values) - set(spec.fields))
        if unknown:
            raise SyncError(f"变更记录中有未知的字段“{c.entity}.{unknown[0]}”，"
                            "可能来自更新版本的参保通。")
    elif c.field != "*" and c.field not in spec.fields:
        raise SyncError(f"变更记录中有未知的字段“{c.entity}.{c.field}”，可能来自更新版本的参保通。")
    if not c.gid:
        raise SyncError("变更记录缺少对象编号，文件可能已损坏。")


def apply_changes(conn: sqlite3.Connection, changes: Iterable[Change], *,
                  local: bool = False) -> ApplyReport:
    """Apply change rows (from this or another installation) inside the caller's
    transaction. Idempotent and order-independent; see the module docstring.

    The caller owns the transaction (Ledger.write or the sync import) so that
    a failure anywhere leaves the database as it was.
    """
    report = ApplyReport()
    touched = _Touched()
    batch = sorted(changes, key=lambda c: c.hlc)
    if not local:  # the ledger service builds its own changes from checked input
        for c in batch:
            validate_change(c)
    # Deferred so that, within one batch, rows may refer to entities created
    # later in the same batch; checked at commit all the same.
    conn.execute("PRAGMA defer_foreign_keys=ON")
    highest: dict[str, str] = {}
    fresh: list[Change] = []
    for c in batch:
        cur = conn.execute(
            "INSERT OR IGNORE INTO change(hlc, entity, gid, field, value, prev, operator, op, txn)"
            " VALUES (?,?,?,?,?,?,?,?,?)", c)
        if cur.rowcount == 0:
            report.known += 1
            continue
        report.new += 1
        fresh.append(c)
        node = c.node
        if c.hlc > highest.get(node, ""):
            highest[node] = c.hlc
    # Consecutive changes of one entity (one ledger call setting several fields,
    # or a sync file's run of edits) are merged in memory and written once.
    for _, run in itertools.groupby(fresh, key=lambda c: (c.entity, c.gid)):
        _apply_run(conn, list(run), report, touched)
    for node, top in highest.items():
        conn.execute(_RAISE_KNOWLEDGE, (node, top))
    _refresh_derived(conn, touched)
    return report


class _Row:
    """An existing entity row being merged into: values and clocks in memory,
    written back once by _write_row."""

    __slots__ = ("id", "clk", "current", "changed", "stored_clk")

    def __init__(self, row: Sequence[Any], fields: Sequence[str]) -> None:
        self.id = row[0]
        self.stored_clk: str = row[1]
        self.clk: dict[str, str] = json.loads(row[1])
        self.current = dict(zip(fields, row[2:]))
        self.changed: dict[str, Any] = {}


def _load_row(conn: sqlite3.Connection, spec: "EntitySpec", gid: str) -> _Row | None:
    row = conn.execute(f"SELECT id, clk, {', '.join(spec.fields)} FROM {spec.table} "
                       "WHERE gid=?", (gid,)).fetchone()
    return None if row is None else _Row(row, spec.fields)


def _write_row(conn: sqlite3.Connection, c: Change, spec: "EntitySpec", st: _Row,
               report: ApplyReport, touched: _Touched) -> None:
    clk = dumps(st.clk)
    if clk == st.stored_clk and not st.changed:
        return  # an old change that lost everywhere: nothing to write
    changed = dict(st.changed)
    derived_done = False
    if c.entity == "enrollment" and changed and "person_gid" not in changed:
        # Status and lapsed follow from the row's own facts, all in hand: write
        # them with the facts rather than re-reading the row in _refresh_derived.
        status = derive_status(st.current)
        changed["status"] = status.value
        changed["lapsed"] = int(is_lapsed(st.current.get("last_year_status"), status))
        derived_done = True
    sets = "".join(f", {k}=?" for k in changed)
    conn.execute(f"UPDATE {spec.table} SET clk=?{sets} WHERE id=?",
                 (clk, *changed.values(), st.id))
    if st.changed:
        # An enrollment created earlier in this batch still needs its group.
        pending_refresh = c.gid in touched.enrollments
        _note_touched(c.entity, c.gid, st.current, set(st.changed), report, touched)
        if derived_done and not pending_refresh:
            touched.enrollments.discard(c.gid)


def _apply_run(conn: sqlite3.Connection, run: list[Change], report: ApplyReport,
               touched: _Touched) -> None:
    """Apply changes of one entity, in clock order."""
    spec = ENTITIES[run[0].entity]
    st = _load_row(conn, spec, run[0].gid)
    for i, c in enumerate(run):
        if st is None:
            # Creation (or parking in pending) goes the careful way, one by one.
            _apply_one(conn, c, report, touched)
            if i + 1 < len(run):
                st = _load_row(conn, spec, c.gid)
            continue
        _merge(conn, c, spec, st, report)
    if st is not None and run:
        last = run[-1]
        _write_row(conn, last, spec, st, report, touched)


def _apply_one(conn: sqlite3.Connection, c: Change, report: ApplyReport,
               touched: _Touched) -> None:
    spec = ENTITIES[c.entity]
    cols = ", ".join(spec.fields)
    st = _load_row(conn, spec, c.gid)
    if st is None:
        if c.field != "*":
            conn.execute("INSERT OR IGNORE INTO pending(hlc, entity, gid) VALUES(?,?,?)",
                         (c.hlc, c.entity, c.gid))
            report.pending += 1
            return
        values = json.loads(c.value or "{}")
        record = {f: values.get(f, spec.defaults.get(f)) for f in spec.fields}
        if _wait_for_reference(conn, c, record, report):
            return
        conn.execute(
            f"INSERT INTO {spec.table}(gid, clk, {cols}) VALUES (?, ?, {', '.join('?' * len(spec.fields))})",
            (c.gid, dumps({"*": c.hlc}), *record.values()))
        _note_touched(c.entity, c.gid, record, set(spec.fields), report, touched)
        _drain_pending(conn, c.entity, c.gid, report, touched)
        return

    _merge(conn, c, spec, st, report)
    _write_row(conn, c, spec, st, report, touched)


def _merge(conn: sqlite3.Connection, c: Change, spec: "EntitySpec", st: _Row,
           report: ApplyReport) -> None:
    """Merge one change into an existing row by per-field last-writer-wins,
    recording concurrent edits of a field as conflicts."""
    clk, current = st.clk, st.current
    if c.field == "*":
        if spec.insert_only:
            return  # the same visit again under another clock: keep the first
        values = json.loads(c.value or "{}")
        incoming = {f: values.get(f, spec.defaults.get(f)) for f in spec.fields}
        prev = ""  # a creation saw nothing: concurrent with any existing value
    elif c.field == "+":
        incoming = json.loads(c.value or "{}")
        for name, default in spec.defaults.items():
            if name in incoming and incoming[name] is None:
                incoming[name] = default
        prev = c.prev or ""
    else:
        incoming = {c.field: json.loads(c.value) if c.value is not None else None}
        if c.field in spec.defaults and incoming[c.field] is None:
            incoming[c.field] = spec.defaults[c.field]
        prev = c.prev or ""
    # Only values that would be written must point at something that exists.
    winning = {name: v for name, v in incoming.items()
               if c.hlc > _effective(clk, name) and current[name] != v}
    if _wait_for_reference(conn, c, winning, report):
        return
    for name, new_value in incoming.items():
        have = _effective(clk, name)
        differs = current[name] != new_value
        concurrent = prev != have and hlc_mod.node_of(have) != c.node and have != ""
        if c.hlc > have:
            if concurrent and differs:
                _record_conflict(conn, c.entity, c.gid, name, c.hlc, have, new_value,
                                 current[name], report)
            clk[name] = c.hlc
            if differs:
                current[name] = new_value
                st.changed[name] = new_value
        elif concurrent and differs:
            _record_conflict(conn, c.entity, c.gid, name, have, c.hlc, current[name],
                             new_value, report)
    if c.field == "*" and all(_effective(clk, f) == c.hlc for f in spec.fields):
        st.clk = {"*": c.hlc}  # keep the clock map small when a creation wins whole


def _wait_for_reference(conn: sqlite3.Connection, c: Change, values: Mapping[str, Any],
                        report: ApplyReport) -> bool:
    """Park `c` in `pending` if it would point at an entity this installation does
    not have yet; True if it was parked.

    Changes from one origin arrive in order, but not in order with those of other
    origins: a relayed or scoped file can bring a person added on one laptop before
    the household another laptop created. Writing the row anyway would break the
    foreign key and refuse the whole batch at commit. Waiting keeps the result
    order-independent: the change is applied, by the same rules, as soon as the
    entity it points at is created (see _drain_pending).
    """
    for name, target in REFERENCES.get(c.entity, {}).items():
        ref = values.get(name)
        if ref is None or conn.execute(
                f"SELECT 1 FROM {ENTITIES[target].table} WHERE gid=?", (ref,)).fetchone():
            continue
        conn.execute("INSERT OR IGNORE INTO pending(hlc, entity, gid) VALUES(?,?,?)",
                     (c.hlc, target, ref))
        report.pending += 1
        return True
    return False


def _record_conflict(conn: sqlite3.Connection, entity: str, gid: str, name: str,
                     winner: str, loser: str, winner_value: Any, loser_value: Any,
                     report: ApplyReport) -> None:
    cur = conn.execute(
        "INSERT OR IGNORE INTO conflict(entity, gid, field, winner_hlc, loser_hlc, "
        "winner_value, loser_value) VALUES (?,?,?,?,?,?,?)",
        (entity, gid, name, winner, loser, dumps(winner_value), dumps(loser_value)))
    report.conflicts += cur.rowcount


def _note_touched(entity: str, gid: str, record: Mapping[str, Any], changed: set[str],
                  report: ApplyReport, touched: _Touched) -> None:
    if entity == "person":
        report.persons.add(gid)
        if record.get("household_gid"):
            report.households.add(record["household_gid"])
        if changed & _PERSON_INDEXED:
            touched.persons.add(gid)
    elif entity == "household":
        report.households.add(gid)
        if changed & _HOUSEHOLD_PLACED:
            touched.households.add(gid)
    elif entity == "enrollment":
        touched.enrollments.add(gid)
        report.persons.add(record["person_gid"])
    elif entity == "visit":
        touched.visit_households.add(record["household_gid"])
        report.households.add(record["household_gid"])


def _drain_pending(conn: sqlite3.Connection, entity: str, gid: str, report: ApplyReport,
                   touched: _Touched) -> None:
    waiting = conn.execute(
        "SELECT c.hlc, c.entity, c.gid, c.field, c.value, c.prev, c.operator, c.op, c.txn "
        "FROM pending p JOIN change c ON c.hlc = p.hlc WHERE p.entity=? AND p.gid=? "
        "ORDER BY c.hlc", (entity, gid)).fetchall()
    if not waiting:
        return
    conn.execute("DELETE FROM pending WHERE entity=? AND gid=?", (entity, gid))
    report.pending -= len(waiting)
    for row in waiting:
        _apply_one(conn, Change(*row), report, touched)


# ---------------------------------------------------------------------------
# Derived data


def _refresh_derived(conn: sqlite3.Connection, t: _Touched) -> None:
    if t.households:
        for (pgid,) in _chunked_select(
                conn, "SELECT gid FROM person WHERE household_gid IN ({})", t.households):
            t.persons.add(pgid)
    for pgid in t.persons:
        refresh_person(conn, pgid)
        for (egid,) in conn.execute(
                # A range on the unique gid index ('<person>/<year>'; '0' follows '/').
                "SELECT gid FROM enrollment WHERE gid >= ? AND gid < ?", (pgid + "/", pgid + "0")):
            t.enrollments.add(egid)
    for egid in t.enrollments:
        refresh_enrollment(conn, egid)
    for hgid in t.visit_households:
        refresh_household_visits(conn, hgid)


def _chunked_select(conn: sqlite3.Connection, sql: str, keys: Iterable[str],
                    size: int = 500) -> list[tuple[Any, ...]]:
    keys = list(keys)
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(keys), size):
        part = keys[i:i + size]
        out.extend(conn.execute(sql.format(",".join("?" * len(part))), part).fetchall())
    return out


def refresh_person(conn: sqlite3.Connection, gid: str) -> None:
    """Birth date, sex and the search index of one person."""
    from core.search import index_rows  # search depends on this module, not vice versa

    row = conn.execute(
        "SELECT id, name, id_number, phone, deleted FROM person WHERE gid=?", (gid,)).fetchone()
    if row is None:
        return
    pid, name, id_number, phone, deleted = row
    birth = sex = None
    if id_number:
        try:
            f = idcard.facts(id_number)
            birth, sex = f.birth_date.isoformat(), f.sex
        except Exception:  # an invalid number from elsewhere stays visible, undated
            pass
    conn.execute("UPDATE person SET birth_date=?, sex=? WHERE id=?", (birth, sex, pid))
    conn.execute("DELETE FROM search_digits WHERE rowid=?", (pid,))
    conn.execute("DELETE FROM search_grams WHERE rowid=?", (pid,))
    if not deleted:
        digits, grams = index_rows(name, id_number, phone)
        conn.execute("INSERT INTO search_digits(rowid, digits) VALUES(?, ?)", (pid, digits))
        conn.execute("INSERT INTO search_grams(rowid, grams) VALUES(?, ?)", (pid, grams))


_STATUS_FACTS = ("confirmed_date", "exclude_reason", "elsewhere_place", "subsidy_kind",
                 "subsidy_arrived", "claim_date", "last_year_status")


def refresh_enrollment(conn: sqlite3.Connection, gid: str) -> None:
    """Status, lapsed flag and group of one enrollment, from its facts."""
    row = conn.execute(
        f"SELECT {', '.join('e.' + f for f in _STATUS_FACTS)},"
        " (SELECT h.unit_code FROM person p JOIN household h ON h.gid = p.household_gid"
        "  WHERE p.gid = e.person_gid AND p.deleted = 0 AND h.deleted = 0)"
        " FROM enrollment e WHERE e.gid=?", (gid,)).fetchone()
    if row is None:
        return
    facts = dict(zip(_STATUS_FACTS, row))
    status = derive_status(facts)
    conn.execute(
        "UPDATE enrollment SET status=?, lapsed=?, group_code=? WHERE gid=?",
        (status.value, int(is_lapsed(facts["last_year_status"], status)), row[-1], gid))


def refresh_household_visits(conn: sqlite3.Connection, gid: str) -> None:
    """Last visit and next follow-up: the dates the latest visit recorded."""
    row = conn.execute(
        "SELECT date, next_date FROM visit WHERE household_gid=? "
        "ORDER BY date DESC, clk DESC LIMIT 1", (gid,)).fetchone()
    conn.execute("UPDATE household SET last_visit=?, next_follow_up=? WHERE gid=?",
                 (row[0] if row else None, row[1] if row else None, gid))


# ---------------------------------------------------------------------------
# Reading the log


def knowledge(conn: sqlite3.Connection) -> dict[str, str]:
    """Per origin node, the highest clock this installation holds."""
    return dict(conn.execute("SELECT node, max_hlc FROM knowledge"))


def changes_since(conn: sqlite3.Connection, known: Mapping[str, str]) -> list[Change]:
    """Every change a peer with knowledge `known` lacks, in clock order.

    Changes from one origin always arrive complete and in order, so a peer's
    highest clock per origin is enough to say what it has.
    """
    out = []
    for row in conn.execute(
            f"SELECT {', '.join(CHANGE_COLUMNS)} FROM change ORDER BY hlc"):
        c = Change(*row)
        if c.hlc > known.get(c.node, ""):
            out.append(c)
    return out


def canonical_dump(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every synced entity with its fields, each field's clock and the derived
    columns, in gid order: two installations that saw the same changes give
    equal dumps."""
    dump: dict[str, list[tuple[Any, ...]]] = {}
    for spec in ENTITIES.values():
        derived = DERIVED.get(spec.name, ())
        cols = ", ".join(("gid", "clk") + spec.fields + derived)
        rows = []
        for row in conn.execute(f"SELECT {cols} FROM {spec.table} ORDER BY gid"):
            clk = json.loads(row[1])
            clocks = tuple(_effective(clk, f) for f in spec.fields)
            rows.append((row[0], clocks) + tuple(row[2:]))
        dump[spec.name] = rows
    dump["pending"] = conn.execute("SELECT hlc FROM pending ORDER BY hlc").fetchall()
    return dump


def field_clock(conn: sqlite3.Connection, entity: str, gid: str,
                fields: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]] | None:
    """Current values and clocks of some fields of one entity (None if absent)."""
    spec = ENTITIES[entity]
    row = conn.execute(
        f"SELECT clk, {', '.join(fields)} FROM {spec.table} WHERE gid=?", (gid,)).fetchone()
    if row is None:
        return None
    clk = json.loads(row[0])
    return dict(zip(fields, row[1:])), {f: _effective(clk, f) for f in fields}


# ---------------------------------------------------------------------------
# Bulk creation (demo county, large first imports)


class BulkCreator:
    """Creates many new entities fast, with exactly the rows apply_changes()
    would have written: the entity with its clock, one '*' change each, the
    derived columns (given by the caller) and the search index.

    Only for entities that do not exist yet; the caller owns the transaction.
    Rows go to `sink(sql, rows)` — conn.executemany by default — so the demo
    can build them in a worker process and insert them in another.
    """

    def __init__(self, conn: sqlite3.Connection | None, clock: "hlc_mod.Clock",
                 operator: str | None, op: str, *,
                 sink: Callable[[str, list[tuple[Any, ...]]], Any] | None = None,
                 next_ids: Mapping[str, int] | None = None) -> None:
        if sink is None:
            if conn is None:
                raise ValueError("BulkCreator needs a connection or a sink")
            sink = conn.executemany
        self.sink = sink
        self.clock = clock
        self.operator = operator
        self.op = op
        self._rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in ENTITIES}
        self._changes: list[tuple[Any, ...]] = []
        self._digits: list[tuple[int, str]] = []
        self._grams: list[tuple[int, str]] = []
        self._next_id = dict(next_ids) if next_ids else self.next_ids(conn)
        self.top = ""

    @staticmethod
    def next_ids(conn: sqlite3.Connection) -> dict[str, int]:
        return {name: (conn.execute(f"SELECT max(id) FROM {name}").fetchone()[0] or 0) + 1
                for name in ENTITIES}

    def create(self, entity: str, gid: str, record: Mapping[str, Any],
               derived: Sequence[Any] = ()) -> int:
        """Queue one entity; returns its local id. `derived` follows DERIVED[entity]."""
        spec = ENTITIES[entity]
        ts = self.clock.tick()
        self.top = ts
        local_id = self._next_id[entity]
        self._next_id[entity] += 1
        get = record.get
        values = tuple([get(f) for f in spec.fields])
        if spec.defaults:
            values = tuple([spec.defaults.get(f) if v is None else v
                            for f, v in zip(spec.fields, values)])
        self._rows[entity].append((local_id, gid, '{"*":"' + ts + '"}') + values + tuple(derived))
        # Same text as dumps() would give, minus the key sort: apply reads it as a dict.
        self._changes.append((ts, entity, gid, "*",
                              _ENCODER.encode({k: v for k, v in record.items() if v is not None}),
                              None, self.operator, self.op, None))
        if entity == "person" and not get("deleted"):
            digits, grams = index_rows(get("name"), get("id_number"), get("phone"))
            self._digits.append((local_id, digits))
            self._grams.append((local_id, grams))
        return local_id

    def flush(self) -> None:
        # Fresh lists rather than clear(): a sink may keep the ones it was given.
        for name, rows in self._rows.items():
            if not rows:
                continue
            spec = ENTITIES[name]
            derived = DERIVED.get(name, ())[:len(rows[0]) - 3 - len(spec.fields)]
            cols = ("id", "gid", "clk") + spec.fields + derived
            self.sink(f"INSERT INTO {name}({', '.join(cols)}) "
                      f"VALUES ({', '.join('?' * len(cols))})", rows)
            self._rows[name] = []
        if self._changes:
            self.sink("INSERT INTO change(hlc, entity, gid, field, value, prev, operator, op, txn) "
                      "VALUES (?,?,?,?,?,?,?,?,?)", self._changes)
            self._changes = []
            self.sink(_RAISE_KNOWLEDGE, [(self.clock.node, self.top)])
        if self._digits:
            self.sink("INSERT INTO search_digits(rowid, digits) VALUES (?,?)", self._digits)
            self.sink("INSERT INTO search_grams(rowid, grams) VALUES (?,?)", self._grams)
            self._digits = []
            self._grams = []



# ---------------------------------------------------------------------------
# Bulk updates (imports of long lists against an existing ledger)


def encode_scalar(value: Any) -> str:
    """json.dumps of a scalar, with the common cases done directly."""
    kind = type(value)
    if kind is str and value.isascii() and value.isprintable() and '"' not in value \
            and "\\" not in value:
        return f'"{value}"'
    if kind is float and value == value and value not in (float("inf"), float("-inf")):
        return repr(value)
    if kind is int:
        return str(value)
    return _ENCODER.encode(value)


def _encode_object(values: Mapping[str, Any]) -> str:
    """dumps() of a '+' row's fields: keys are field names (no escaping)."""
    return "{" + ",".join(
        f'"{k}":' + (encode_scalar(values[k]) if not isinstance(values[k], (dict, list))
                     else dumps(values[k])) for k in sorted(values)) + "}"


def _load_clock(text: str) -> dict[str, str]:
    # Most rows were created whole and never edited: {"*":"<hlc>"}.
    if len(text) == 39 and text.startswith('{"*":"'):
        return {"*": text[6:-2]}
    return json.loads(text)


def _dump_clock(clk: Mapping[str, str]) -> str:
    """Same text as dumps(clk): keys are field names and values clocks, so
    neither needs escaping."""
    return "{" + ",".join(['"%s":"%s"' % kv for kv in sorted(clk.items())]) + "}"


@dataclass
class BulkUpdateResult:
    changed: int = 0          # entities with at least one field changed
    unchanged: int = 0        # entities whose values were already so
    missing: list[str] = field(default_factory=list)   # gids not found


class BulkItem(NamedTuple):
    """One existing entity to update in bulk: its row id, gid and stored clock
    map, its current values (at least the fields being set and, for an
    enrollment, the facts its status derives from) and the values to set."""

    id: int
    gid: str
    clk: str
    current: dict[str, Any]
    values: Mapping[str, Any]


_CONFIRMED = Status.CONFIRMED.value
_STATUS_FACTS_SET = frozenset(_STATUS_FACTS)


def bulk_fields(entity: str, names: Iterable[str]) -> tuple[str, ...]:
    """The columns a BulkItem's `current` must hold to set `names`: those
    fields and, for an enrollment, the facts its status derives from (which a
    caller may leave out only if it sets confirmed_date, deciding alone)."""
    wanted = set(names)
    if entity == "enrollment":
        wanted |= set(_STATUS_FACTS)
    return tuple(f for f in ENTITIES[entity].fields if f in wanted)


def bulk_update(conn: sqlite3.Connection, clock: "hlc_mod.Clock", operator: str | None,
                op: str, entity: str, updates: list[tuple[str, Mapping[str, Any]]], *,
                txn: str | None = None) -> BulkUpdateResult:
    """Set fields of many existing entities (by gid); see bulk_write.

    The rows are found through a temp table in gid order (one join walking the
    gid index forwards instead of hundreds of IN-lists jumping around it), in
    chunks that bound memory.
    """
    spec = ENTITIES[entity]
    result = BulkUpdateResult()
    names = bulk_fields(entity, {k for _, values in updates for k in values})
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS bulk_keys(gid TEXT PRIMARY KEY, k INTEGER) "
                 "WITHOUT ROWID")
    by_gid = sorted(range(len(updates)), key=lambda i: updates[i][0])
    for start in range(0, len(by_gid), 50_000):
        chunk = by_gid[start:start + 50_000]
        conn.execute("DELETE FROM temp.bulk_keys")
        conn.executemany("INSERT OR REPLACE INTO temp.bulk_keys VALUES (?, ?)",
                         [(updates[i][0], i) for i in chunk])
        rows = conn.execute(
            f"SELECT k.k, t.id, t.clk, {', '.join('t.' + f for f in names)} "
            f"FROM temp.bulk_keys k JOIN {spec.table} t ON t.gid = k.gid").fetchall()
        if len(rows) < len(chunk):
            found = {r[0] for r in rows}
            result.missing.extend(updates[i][0] for i in chunk if i not in found)
        items = []
        for row in rows:
            gid, values = updates[row[0]]
            items.append(BulkItem(row[1], gid, row[2], dict(zip(names, row[3:])), values))
        bulk_write(conn, clock, operator, op, entity, items, txn=txn, result=result)
    conn.execute("DELETE FROM temp.bulk_keys")
    return result


def bulk_write(conn: sqlite3.Connection, clock: "hlc_mod.Clock", operator: str | None,
               op: str, entity: str, items: list[BulkItem], *, txn: str | None = None,
               result: BulkUpdateResult | None = None) -> BulkUpdateResult:
    """Set fields of many existing entities, writing exactly what apply_changes
    would for the same local edits made one by one through the ledger (one
    change row per entity and previous clock, '+' when it sets several fields;
    the row's clock map; enrollment status and lapsed flag), but with three
    statements per chunk instead of a dozen per entity.

    Local edits only: the entities exist here and nobody else writes during
    the caller's transaction. Values equal to the current ones write nothing.
    """
    spec = ENTITIES[entity]
    result = result if result is not None else BulkUpdateResult()
    is_enrollment = entity == "enrollment"
    items = sorted(items, key=lambda it: it.id)  # table order: sequential page writes
    change_rows: list[tuple[Any, ...]] = []
    row_updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    seen = ""
    tick = clock.tick
    encoded: dict[tuple[tuple[str, type, Any], ...] | None, str] = {}
    for item in items:
        current = item.current
        changed = {k: v for k, v in item.values.items() if current[k] != v}
        if not changed:
            result.unchanged += 1
            continue
        result.changed += 1
        clk = _load_clock(item.clk)
        by_prev: dict[str, dict[str, Any]] = {}
        for name, value in changed.items():
            by_prev.setdefault(_effective(clk, name), {})[name] = value
        for prev, fields in by_prev.items():
            # Each new clock must exceed the clock of the value it replaces;
            # clocks are fixed-width text, so comparing text is comparing time.
            if prev > seen:
                clock.observe(prev)
            ts = seen = tick()
            if len(fields) == 1:
                [(name, value)] = fields.items()
                text = encode_scalar(value) if not isinstance(value, (dict, list)) \
                    else dumps(value)
            else:
                # A list's rows mostly repeat a few values (a paid list: one
                # amount, the days of a campaign): encode each set once.
                # With types: 1, 1.0 and True hash alike but encode differently.
                key = tuple((k, type(v), v) for k, v in fields.items())
                if any(type(v) is float and not v for v in fields.values()):
                    key = None   # 0.0 and -0.0 are one key but encode apart
                try:
                    text = encoded.get(key)
                except TypeError:  # a list or dict among the values: not hashable
                    key, text = None, None
                if text is None:
                    text = _encode_object(fields)
                    if key is not None and len(encoded) < 10_000:
                        encoded[key] = text
                name = "+"
            change_rows.append((ts, entity, item.gid, name, text, prev or None,
                                operator, op, txn or ts))
            for name in fields:
                clk[name] = ts
        current.update(changed)
        cols = tuple(changed)
        vals = tuple(changed.values())
        if is_enrollment:
            if current.get("confirmed_date"):
                # The tax bureau's word decides alone (derive_status rule 1):
                # a paid list need not read the other facts.
                vals += (_CONFIRMED, 0)
            elif not _STATUS_FACTS_SET <= current.keys():
                raise ValueError("bulk_write: an enrollment's status facts are missing "
                                 "(see bulk_fields)")
            else:
                status = derive_status(current)
                vals += (status.value, int(is_lapsed(current["last_year_status"], status)))
            cols += ("status", "lapsed")
        row_updates.setdefault(cols, []).append((_dump_clock(clk), *vals, item.id))
    if change_rows:
        conn.executemany(
            "INSERT INTO change(hlc, entity, gid, field, value, prev, operator, op, txn) "
            "VALUES (?,?,?,?,?,?,?,?,?)", change_rows)
        conn.execute(_RAISE_KNOWLEDGE, (clock.node, change_rows[-1][0]))
    for cols, params in row_updates.items():
        sets = "".join(f", {c}=?" for c in cols)
        conn.executemany(f"UPDATE {spec.table} SET clk=?{sets} WHERE id=?", params)
    return result


def unclocked_sql(entity: str, fields: Sequence[str], clk: str) -> str:
    """SQL, true when the clock map in `clk` has no key from `fields[0]` to
    `fields[-1]` (sorted): none of `fields` has a clock of its own, so the
    value each replaces was set by the creation's clock ("*"), and no other
    key sorts among them, so their new clocks go in one place of the map's
    text (see bulk_write_fresh).

    A clock map's keys are "*" (first: it sorts before any field name) and
    field names (validate_change refuses others), and its values fixed-width
    clocks, so `"name":` occurs in its text only as a key.
    """
    between = [f for f in ENTITIES[entity].fields if fields[0] <= f <= fields[-1]]
    return (f"(substr({clk}, 1, 6) = '{{\"*\":\"' AND (length({clk}) = 39 OR ("
            + " AND ".join(f"instr({clk}, '\"{f}\":') = 0" for f in between) + ")))")


def _clock_split_sql(entity: str, fields: Sequence[str], clk: str) -> str:
    """SQL: where in the text of `clk` (which unclocked_sql admits) the keys
    of `fields` go, as a 1-based position: after the last key that sorts
    before them, or equally before the first that sorts after them, else
    right after the creation's clock (position 39).

    Each key's entry is `,"<key>":"<clock>"`, 37 characters more than the
    key, and the keys sort, so the map's text is "*"'s entry (38 characters
    with the brace), then the entries of keys sorting before `fields`, then
    those sorting after them: the split is 39 plus the widths of the first,
    or the map's length less the widths of the others. The side with fewer
    keys is searched, one instr() a key."""
    names = ENTITIES[entity].fields
    before = [f for f in names if f < fields[0]]
    after = [f for f in names if f > fields[-1]]
    if not before:
        return "39"
    if not after:
        return f"length({clk})"
    if len(before) <= len(after):
        found = "39 + " + " + ".join(
            f"(instr({clk}, ',\"{f}\":') > 0) * {len(f) + 37}" for f in before)
    else:
        found = f"length({clk}) - " + " - ".join(
            f"(instr({clk}, ',\"{f}\":') > 0) * {len(f) + 37}" for f in after)
    # Most maps are the creation's alone ({"*":"<clock>"}): spare them the search.
    return f"CASE WHEN length({clk}) = 39 THEN 39 ELSE {found} END"


def bulk_write_fresh(conn: sqlite3.Connection, clock: "hlc_mod.Clock", operator: str | None,
                     op: str, entity: str, source: str, fields: Sequence[str], *,
                     txn: str) -> BulkUpdateResult:
    """bulk_write done inside SQL, for entities whose `fields` were never set
    since they were created, which is most of a county's enrollments when
    the tax bureau's paid list arrives (a worker's tick sets other fields).

    `source` is a temp table of rows the caller has read, one per entity: `id`,
    `gid` and `clk` as stored and, for each of `fields` (sorted), the current
    value in a column of that name, the new one in `<field>_new` and the new
    one's change-row text (as encode_scalar gives it) in `<field>_json`. Only
    rows whose clk passes unclocked_sql are written; the caller writes the
    others through bulk_write. Values equal to the current ones write nothing.
    Two rows for one entity raise sqlite3.IntegrityError, with nothing written;
    a row without an id (no entity) is not written.

    Written as bulk_write writes them, given the same clock: every field set
    replaces a value of the creation's clock, so there is one previous clock
    and one change row per entity ('+' when it sets several fields), clocks
    ticked in rowid order, and the new keys go into the clock map's text at
    their sorted place. Two differences, neither of which the order of
    clocks can tell:
    - a replaced clock ahead of this node's (made on a node whose clock runs
      fast) moves the clock past it before the first row rather than at its
      own row;
    - the counter runs over the rowids from the first written to the last,
      so a rowid not written leaves a clock unused. Numbering the rows
      written instead (row_number()) cost 0.17 s per 300,000, and keying the
      rows by rowid saves more than that in the UPDATE (see below).
    Every new clock still exceeds the one it replaces and every clock this
    node made, which is what the order needs. Doing it in SQL saves the
    per-entity Python work of comparing and encoding each row and building
    its clock map.
    """
    spec = ENTITIES[entity]
    fields = list(fields)
    if fields != sorted(fields) or not set(fields) <= set(spec.fields):
        raise ValueError(f"bulk_write_fresh: fields must be sorted fields of {entity}")
    if entity == "enrollment" and "confirmed_date" not in fields:
        # Only the tax bureau's word decides status without the other facts.
        raise ValueError("bulk_write_fresh: an enrollment needs confirmed_date")
    result = BulkUpdateResult()
    bits = list(enumerate(fields))
    mask = " | ".join(f"((s.{f} IS NOT s.{f}_new) << {i})" for i, f in bits)
    # Made afresh: its columns are this call's fields. Keyed by the entity's
    # rowid (one row per entity), so that the UPDATE finds each row's values
    # by it (see below).
    conn.execute("DROP TABLE IF EXISTS temp.bulk_fresh")
    # prev: the creation's clock, which every value set replaces; at: where
    # the new keys go in the clock map's text (39 for a map of the creation
    # alone), which the UPDATE reads again as it is stored.
    conn.execute("CREATE TEMP TABLE bulk_fresh(id INTEGER PRIMARY KEY, "
                 "gid TEXT, prev TEXT, at INTEGER, mask INTEGER, "
                 + ", ".join(f"{f}, {f}_json TEXT" for f in fields) + ")")
    conn.execute(
        "INSERT INTO temp.bulk_fresh(id, gid, prev, at, mask, "
        + ", ".join(f"{f}, {f}_json" for f in fields) + ") "
        f"SELECT s.id, s.gid, substr(s.clk, 7, 31), "
        f"{_clock_split_sql(entity, fields, 's.clk')}, {mask}, "
        + ", ".join(f"s.{f}_new, s.{f}_json" for f in fields) + " "
        # A NULL id would be given a rowid of bulk_fresh's choosing, and the
        # UPDATE would then write another entity.
        f"FROM {source} s WHERE s.id IS NOT NULL AND {unclocked_sql(entity, fields, 's.clk')} "
        f"AND ({mask}) != 0 ORDER BY s.id")
    n, top, lo, hi = conn.execute("SELECT count(*), max(prev), min(id), max(id) "
                                  "FROM temp.bulk_fresh").fetchone()
    if not n:
        return result
    if entity == "enrollment" and conn.execute(
            "SELECT 1 FROM temp.bulk_fresh WHERE coalesce(confirmed_date, '') = '' "
            "LIMIT 1").fetchone():
        raise ValueError("bulk_write_fresh: confirmed_date may not be cleared here")
    # Each new clock exceeds the clock of the value it replaces, and every
    # clock this node made: one tick, then the counter runs on by rowid
    # (borrowing the next millisecond every 65,536), as tick() does within
    # one millisecond.
    clock.observe(top)
    wall, counter, node = hlc_mod.parse(clock.tick())
    ts = (f"printf('%013d-%04x-{node}', {wall} + ({counter} + b.id - {lo}) / 65536, "
          f"({counter} + b.id - {lo}) % 65536)")
    single = " ".join(f"WHEN {1 << i} THEN '{f}'" for i, f in bits)
    single_value = " ".join(f"WHEN {1 << i} THEN b.{f}_json" for i, f in bits)
    joined = " || ".join(f"CASE WHEN b.mask & {1 << i} THEN ',\"{f}\":' || b.{f}_json "
                         "ELSE '' END" for i, f in bits)
    conn.execute(
        "INSERT INTO change(hlc, entity, gid, field, value, prev, operator, op, txn) "
        f"SELECT {ts}, ?, b.gid, CASE b.mask {single} ELSE '+' END, "
        f"CASE b.mask {single_value} ELSE '{{' || substr({joined}, 2) || '}}' END, "
        "b.prev, ?, ?, ? FROM temp.bulk_fresh b ORDER BY b.id",
        (entity, operator, op, txn))
    t = spec.table
    clk = " || ".join(f"CASE WHEN b.mask & {1 << i} THEN ',\"{f}\":\"' || {ts} || '\"' "
                      "ELSE '' END" for i, f in bits)
    values = ", ".join(f"CASE WHEN b.mask & {1 << i} THEN b.{f} ELSE {t}.{f} END"
                       for i, f in bits)
    derived = ", status = ?, lapsed = 0" if entity == "enrollment" else ""
    # A row's values found by its rowid, not UPDATE ... FROM: SQLite copies
    # the whole join of an UPDATE ... FROM into a table of its own first.
    # Measured for 300,000 of a county's 400,000 enrollments half ticked,
    # the UPDATE alone: 0.68-0.95 s against 0.83-1.23 s (in a paid list's
    # import of that county, 0.87-1.03 s against 1.22-1.42 s). One subquery
    # a row gives all the values.
    conn.execute(
        f"UPDATE {t} SET (clk, {', '.join(fields)}) = (SELECT substr({t}.clk, 1, b.at - 1) "
        f"|| {clk} || substr({t}.clk, b.at), {values} FROM temp.bulk_fresh b "
        f"WHERE b.id = {t}.id){derived} WHERE {t}.id IN (SELECT id FROM temp.bulk_fresh)",
        (_CONFIRMED,) if derived else ())
    span = counter + hi - lo
    last = hlc_mod.fmt(wall + span // 65536, span % 65536, node)
    clock.observe(last)
    conn.execute(_RAISE_KNOWLEDGE, (clock.node, last))
    conn.execute("DROP TABLE temp.bulk_fresh")
    result.changed = n
    return result
