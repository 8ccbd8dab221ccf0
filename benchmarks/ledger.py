"""`python main.py bench ledger`: the foundation's figures at county scale.

Each figure is printed beside a bare-SQLite baseline measured in the same run
on the same machine, so a slow laptop shows up in both columns and the ratio
is what tells us about our code:

- demo build: the full demo (change log, search index, derived columns) vs
  inserting the same number of plain person/household/enrollment rows into
  index-free tables;
- search: core.search plus fetching the 50 rows a list shows, vs a LIKE scan
  over the person table (what a spreadsheet-style tool does);
- one write: Ledger.claim_paid (validation, change row, derived status, commit)
  vs a bare UPDATE + commit with the same durability settings;
- 10,000 writes in one batch: the same, in one transaction;
- per-village counts: core.stats.status_counts vs a bare GROUP BY;
- size on disk: the ledger vs the bare tables.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from core.demo import build_demo_steps
from core.ledger import Ledger
from core.search import search
from core.stats import status_counts
from core.store import open_store
from core.textwidth import table_lines

BUDGET = {
    "build": 90.0, "search": 0.050, "write": 0.005, "batch": 3.0, "counts": 0.300,
}


def _rss_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 1e6


def _ms(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1000:.2f} ms"
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _median(fn: Callable[[object], object], args: list[object]) -> tuple[float, float]:
    times = []
    for a in args:
        t = time.perf_counter()
        fn(a)
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times)


def _bare_build(path: Path, persons: int, seed: int) -> float:
    """Plain tables, no indexes, no change log, rows from a trivial generator."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    t = time.perf_counter()
    conn.execute("CREATE TABLE household(id INTEGER PRIMARY KEY, gid TEXT, unit_code TEXT, "
                 "number TEXT, address TEXT, phone TEXT, worker TEXT)")
    conn.execute("CREATE TABLE person(id INTEGER PRIMARY KEY, gid TEXT, household_id INTEGER, "
                 "name TEXT, id_number TEXT, relation TEXT, phone TEXT, birth_date TEXT, sex TEXT)")
    conn.execute("CREATE TABLE enrollment(id INTEGER PRIMARY KEY, person_id INTEGER, year INTEGER,"
                 " group_code TEXT, status TEXT, claim_date TEXT, claim_channel TEXT, lapsed INT)")
    conn.execute("BEGIN")
    chunk = 50_000
    for start in range(0, persons, chunk):
        n = min(chunk, persons - start)
        ids = range(start + 1, start + n + 1)
        conn.executemany("INSERT INTO household VALUES (?,?,?,?,?,?,?)", [
            (i, f"h{i:020x}", f"999901001{(i % 300):03d}001", f"{i % 400:03d}", f"{i}号",
             f"13{rng.randrange(10**9):09d}", "网格员") for i in ids if i % 3 == 0])
        conn.executemany("INSERT INTO person VALUES (?,?,?,?,?,?,?,?,?)", [
            (i, f"p{i:020x}", i // 3, "张秀英", f"99990119{rng.randrange(10**10):010d}", "户主",
             f"13{rng.randrange(10**9):09d}", "1970-01-01", "F") for i in ids])
        conn.executemany("INSERT INTO enrollment VALUES (?,?,?,?,?,?,?,?)", [
            (i, i, 2027, f"999901001{(i % 300):03d}001", "unpaid", None, None, 0) for i in ids])
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed


def run(persons: int = 1_000_000, db: str | None = None, keep: bool = False,
        seed: int = 1) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="cbt-bench-"))
    path = Path(db) if db else workdir / "bench.db"
    bare_path = workdir / "bare.db"
    rows: list[tuple[str, str, str, str]] = []

    def row(what: str, ours: float | str, base: float | str, budget: float | str | None,
            ok: bool | None) -> None:
        fmt = (lambda v: v if isinstance(v, str) else _ms(v))
        rows.append((what, fmt(ours), fmt(base), "" if budget is None else fmt(budget),
                     "" if ok is None else ("达标" if ok else "超出")))
        print(f"  {what}: {fmt(ours)}（基线 {fmt(base)}）", file=sys.stderr, flush=True)

    try:
        print(f"参保通 ledger 基准：{persons:,} 人，{os.cpu_count()} 核，"
              f"SQLite {sqlite3.sqlite_version}，Python {sys.version.split()[0]}", flush=True)
        # 1. Build.
        t = time.perf_counter()
        for step in build_demo_steps(path, persons, seed, force=True,
                                     today=dt.date(2026, 11, 23)):
            print(f"\r  生成演示县：{step.message} {step.done:,}/{step.total:,}", end="",
                  file=sys.stderr, flush=True)
        print(file=sys.stderr)
        build = time.perf_counter() - t
        bare = _bare_build(bare_path, persons, seed)
        row(f"生成 {persons:,} 人演示县", build, bare, BUDGET["build"], build <= BUDGET["build"])

        store = open_store(path)
        conn = store.conn
        rng = random.Random(seed)
        max_id = conn.execute("SELECT max(id) FROM person").fetchone()[0]
        sample = [r for r in (conn.execute(
            "SELECT name, id_number, phone FROM person WHERE id=?",
            (rng.randint(1, max_id),)).fetchone() for _ in range(60)) if r]
        with_phone = [r for r in sample if r[2]]
        from core.pinyin import initials

        kinds: list[tuple[str, list[str], Callable[[str], tuple[str, list[str]]]]] = [
            ("姓名片段（2字）", [r[0][-2:] for r in sample[:20]],
             lambda q: ("SELECT id FROM person WHERE name LIKE ? LIMIT 50", [f"%{q}%"])),
            ("姓名（3字）", [r[0] for r in sample[:20] if len(r[0]) >= 3][:20],
             lambda q: ("SELECT id FROM person WHERE name LIKE ? LIMIT 50", [f"%{q}%"])),
            ("身份证号片段（8位）", [r[1][6:14] for r in sample[:20]],
             lambda q: ("SELECT id FROM person WHERE id_number LIKE ? LIMIT 50", [f"%{q}%"])),
            ("电话片段（4位）", [r[2][-4:] for r in with_phone[:20]],
             lambda q: ("SELECT id FROM person WHERE phone LIKE ? LIMIT 50", [f"%{q}%"])),
            ("拼音首字母", [initials(r[0])[0] for r in sample[:20]],
             # No column a bare query could LIKE: the baseline is the bare FTS5
             # lookup of the same index, without our query building or row fetch.
             lambda q: ("SELECT rowid FROM search_grams WHERE search_grams MATCH ? LIMIT 50",
                        [f'"{q}"'])),
        ]
        fetch = ("SELECT p.id, p.name, p.id_number, p.phone, p.relation, h.unit_code, e.status "
                 "FROM person p JOIN household h ON h.gid=p.household_gid "
                 "LEFT JOIN enrollment e ON e.gid=p.gid || '/2027' WHERE p.id IN ({})")

        def ours(q: str) -> None:
            ids = search(conn, q, limit=50).ids
            if ids:
                conn.execute(fetch.format(",".join("?" * len(ids))), ids).fetchall()

        for label, queries, bare_sql in kinds:
            for q in queries[:3]:
                ours(q)  # warm the page cache the way a first keystroke would
            med, worst = _median(ours, queries)
            base, _ = _median(lambda q: conn.execute(*bare_sql(q)).fetchall(), queries)
            row(f"查找前50条：{label}（中位/最慢 {_ms(worst)}）", med, base, BUDGET["search"],
                worst <= BUDGET["search"])

        # 3. Single writes: claim_paid on unpaid persons, each its own transaction.
        ledger = Ledger(store, operator="基准测试")
        unpaid = [r[0] for r in conn.execute(
            "SELECT person_gid FROM enrollment WHERE year=2027 AND status='unpaid' "
            "AND group_code IS NOT NULL LIMIT 20200")]
        singles, batch_gids = unpaid[:200], unpaid[200:10200]
        med, worst = _median(lambda g: ledger.claim_paid(g, channel="wechat"), singles)
        bare_conn = sqlite3.connect(bare_path, isolation_level=None)
        bare_conn.execute("PRAGMA journal_mode=WAL")
        bare_conn.execute("PRAGMA synchronous=NORMAL")

        def bare_write(i: object) -> None:
            bare_conn.execute("BEGIN")
            bare_conn.execute("UPDATE enrollment SET claim_date='2026-11-23', "
                              "claim_channel='wechat', status='claimed' WHERE id=?", (i,))
            bare_conn.execute("COMMIT")

        base, _ = _median(bare_write, [rng.randint(1, persons) for _ in range(200)])
        row(f"单次台账写入含变更记录（中位，最慢 {_ms(worst)}）", med, base, BUDGET["write"],
            med <= BUDGET["write"])

        # 4. 10,000 writes in one batch.
        def batch() -> None:
            with ledger.batch():
                for g in batch_gids:
                    ledger.claim_paid(g, channel="wechat")

        ours_batch = _timed(batch)

        def bare_batch() -> None:
            bare_conn.execute("BEGIN")
            for i in range(10_000):
                bare_conn.execute("UPDATE enrollment SET claim_date='2026-11-23', "
                                  "claim_channel='wechat', status='claimed' WHERE id=?",
                                  (rng.randint(1, persons),))
            bare_conn.execute("COMMIT")

        row(f"一批 {len(batch_gids):,} 次写入", ours_batch, _timed(bare_batch), BUDGET["batch"],
            ours_batch <= BUDGET["batch"])

        # 5. Per-village counts.
        status_counts(conn, 2027, "village")  # warm
        counts = min(_timed(lambda: status_counts(conn, 2027, "village")) for _ in range(5))
        bare_counts = min(_timed(lambda: bare_conn.execute(
            "SELECT substr(group_code,1,12), status, count(*) FROM enrollment "
            "WHERE year=2027 GROUP BY 1, 2").fetchall()) for _ in range(5))
        villages = len(status_counts(conn, 2027, "village"))
        row(f"全县各村状态统计（{villages} 个村）", counts, bare_counts, BUDGET["counts"],
            counts <= BUDGET["counts"])

        # 6. Size on disk.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        bare_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = path.stat().st_size
        bare_size = bare_path.stat().st_size
        row("数据库大小", f"{size / 1e6:,.0f} MB（{size / persons:,.0f} 字节/人）",
            f"{bare_size / 1e6:,.0f} MB", None, None)
        rss = _rss_mb()
        if rss is not None:
            row("本进程内存（RSS）", f"{rss:,.0f} MB", "—", None, None)
        bare_conn.close()
        store.close()
        gc.collect()

        print()
        print("\n".join(table_lines([HEADER, *rows])))
        return 0 if all(r[4] != "超出" for r in rows) else 1
    finally:
        if keep:
            print(f"数据库保留在 {path}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


HEADER = ("项目", "参保通", "裸SQLite基线", "预算", "结论")

