"""Database schema, as numbered migrations (sqlite-utils Migrations).

Synced entities all have the same shape: a local integer `id` (stable across
VACUUM, used by lists and the search index), a global `gid` that every
installation agrees on, and `clk`, the JSON map of each field's clock
(see core/changelog.py). Columns marked "derived" are recomputed locally
from synced facts and are never sent to another installation.

Never edit a migration that has shipped: add a new one. A migration that adds
a synced field must also backfill it, because creation changes ("*") already
in the change log are read as "every field, absent ones null".
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations

APPLICATION_ID = 0x43425430  # "CBT0": marks a file as a 参保通 database
MIGRATION_SET = "canbaotong"

migrations = Migrations(MIGRATION_SET)


def _run(db: sqlite_utils.Database, sql: str) -> None:
    # executescript() would COMMIT the migration's transaction half-way, so
    # statements are run one at a time inside it.
    for statement in sql.split(";\n"):
        if statement.strip():
            db.execute(statement)


@migrations(name="0001_initial")
def m0001_initial(db: sqlite_utils.Database) -> None:
    _run(db, """
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE unit (
    id INTEGER PRIMARY KEY,
    gid TEXT NOT NULL UNIQUE,          -- the unit code
    name TEXT NOT NULL,
    level TEXT NOT NULL,
    parent_code TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    clk TEXT NOT NULL
);
CREATE INDEX unit_parent ON unit(parent_code);
CREATE TABLE household (
    id INTEGER PRIMARY KEY,
    gid TEXT NOT NULL UNIQUE,
    number TEXT,                        -- 户号
    unit_code TEXT NOT NULL REFERENCES unit(gid),
    address TEXT,
    phone TEXT,
    worker TEXT,
    head_gid TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    clk TEXT NOT NULL,
    last_visit TEXT,                    -- derived: date of the latest visit
    next_follow_up TEXT                 -- derived: next date set by the latest visit
);
CREATE INDEX household_unit ON household(unit_code, number);
CREATE INDEX household_follow_up ON household(next_follow_up) WHERE next_follow_up IS NOT NULL;
CREATE TABLE person (
    id INTEGER PRIMARY KEY,
    gid TEXT NOT NULL UNIQUE,
    household_gid TEXT NOT NULL REFERENCES household(gid),
    name TEXT NOT NULL,
    id_number TEXT,
    relation TEXT,
    phone TEXT,
    categories TEXT,                    -- special-group codes, comma separated
    notes TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    clk TEXT NOT NULL,
    birth_date TEXT,                    -- derived from id_number
    sex TEXT                            -- derived from id_number
);
CREATE INDEX person_household ON person(household_gid);
CREATE INDEX person_id_number ON person(id_number) WHERE id_number IS NOT NULL;
CREATE TABLE enrollment (
    id INTEGER PRIMARY KEY,
    gid TEXT NOT NULL UNIQUE,           -- person gid + '/' + year
    person_gid TEXT NOT NULL REFERENCES person(gid),
    year INTEGER NOT NULL,
    claim_date TEXT, claim_channel TEXT, claim_tier TEXT, claim_by TEXT,
    confirmed_date TEXT, confirmed_amount REAL,
    elsewhere_place TEXT, elsewhere_evidence TEXT,
    exclude_reason TEXT, exclude_evidence TEXT,
    subsidy_category TEXT, subsidy_kind TEXT, subsidy_amount REAL,
    subsidy_dept TEXT, subsidy_arrived TEXT,
    last_year_status TEXT,
    clk TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'unpaid',  -- derived: core.domain.derive_status
    lapsed INTEGER NOT NULL DEFAULT 0,      -- derived: core.domain.is_lapsed
    group_code TEXT                         -- derived: the person's group; NULL if deleted
);
CREATE INDEX enrollment_progress ON enrollment(year, group_code, status, lapsed);
CREATE TABLE visit (
    id INTEGER PRIMARY KEY,
    gid TEXT NOT NULL UNIQUE,
    household_gid TEXT NOT NULL REFERENCES household(gid),
    person_gid TEXT REFERENCES person(gid),
    date TEXT NOT NULL,
    visitor TEXT,
    method TEXT NOT NULL,
    outcome TEXT,
    reason TEXT,
    note TEXT,
    next_date TEXT,
    clk TEXT NOT NULL
);
CREATE INDEX visit_household ON visit(household_gid, date);
CREATE TABLE target (
    id INTEGER PRIMARY KEY,
    gid TEXT NOT NULL UNIQUE,           -- unit code + '/' + year
    unit_code TEXT NOT NULL REFERENCES unit(gid),
    year INTEGER NOT NULL,
    count INTEGER NOT NULL,
    milestones TEXT,                    -- JSON list of {"date": ..., "fraction": ...}
    clk TEXT NOT NULL
);
-- The change log. The HLC timestamp is the change id (unique by construction).
-- field '*' means "the whole entity": value holds every field, absent = null.
-- prev is the field's clock the writer saw, used to tell concurrent edits.
CREATE TABLE change (
    hlc TEXT PRIMARY KEY,
    entity TEXT NOT NULL,
    gid TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT,
    prev TEXT,
    operator TEXT,
    op TEXT,                            -- what the user did: claim_paid, add_person ...
    txn TEXT,                           -- first hlc of the ledger call, to undo it whole
    node TEXT GENERATED ALWAYS AS (substr(hlc, -12)) VIRTUAL
) WITHOUT ROWID;
-- Changes whose entity has not arrived yet (only with out-of-order delivery).
CREATE TABLE pending (
    hlc TEXT PRIMARY KEY,
    entity TEXT NOT NULL,
    gid TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX pending_entity ON pending(entity, gid);
-- Highest clock held per origin node: what we tell a peer we know.
CREATE TABLE knowledge (
    node TEXT PRIMARY KEY,
    max_hlc TEXT NOT NULL
) WITHOUT ROWID;
-- Concurrent edits of one field, for a person to review (local, not synced).
CREATE TABLE conflict (
    id INTEGER PRIMARY KEY,
    entity TEXT NOT NULL,
    gid TEXT NOT NULL,
    field TEXT NOT NULL,
    winner_hlc TEXT NOT NULL,
    loser_hlc TEXT NOT NULL,
    winner_value TEXT,
    loser_value TEXT,
    resolved INTEGER NOT NULL DEFAULT 0,
    UNIQUE (winner_hlc, loser_hlc, field)
);
-- Search: digits (ID numbers and phones) by trigram, for fragments of 3+;
-- names by single characters and pairs plus pinyin initials, because trigram
-- cannot match the 1-2 character queries people type for names.
CREATE VIRTUAL TABLE search_digits USING fts5(digits, tokenize='trigram');
CREATE VIRTUAL TABLE search_grams USING fts5(grams, tokenize='unicode61', detail='none')
""")


@migrations(name="0002_import_log")
def m0002_import_log(db: sqlite_utils.Database) -> None:
    # Local, not synced: which files this installation has imported, so that
    # importing the same file again can say so.
    _run(db, """
CREATE TABLE import_log (
    id INTEGER PRIMARY KEY,
    file_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    file_name TEXT,
    imported_at TEXT NOT NULL,
    operator TEXT,
    summary TEXT
);
CREATE INDEX import_log_hash ON import_log(file_hash, kind)
""")


SCHEMA_NAMES = frozenset(m.name for m in migrations._migrations)
