"""core/store.py and core/errors.py: opening a user's database safely."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.errors import CbtError, StoreError, StoreLockedError, ValidationError
from core.ledger import Ledger
from core.schema import APPLICATION_ID, MIGRATION_SET, SCHEMA_NAMES
from core.store import Store, environment_error, guard, index_rebuilt_after, open_store

GROUP = "450999001001001"


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def make_ours(path: Path) -> None:
    open_store(path).close()


def make_foreign(path: Path) -> None:
    """Another application's SQLite database."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT, phone TEXT)")
    conn.executemany("INSERT INTO contacts(name, phone) VALUES(?, ?)",
                     [(f"测试{i}", f"1380000{i:04d}") for i in range(50)])
    conn.commit()
    conn.close()


def ledger_with_group(store: Store) -> Ledger:
    ledger = Ledger(store, operator="测试员")
    ledger.add_unit("450999", "测试县")
    ledger.add_unit("450999001", "测试乡")
    ledger.add_unit("450999001001", "测试村")
    ledger.add_unit(GROUP, "一组")
    return ledger


TABLES = ("unit", "household", "person", "enrollment", "visit", "change", "knowledge",
          "search_digits", "search_grams", "settings")


def counts(store: Store) -> dict[str, int]:
    return {t: store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


# --- a fresh store ------------------------------------------------------------------


def test_new_store_is_wal_with_foreign_keys_and_migrations(store):
    conn = store.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert set(store.schema_names()) == set(SCHEMA_NAMES)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"settings", "unit", "household", "person", "enrollment", "visit", "target",
            "change", "pending", "knowledge", "conflict"} <= tables
    applied = conn.execute(
        "SELECT count(*) FROM _sqlite_migrations WHERE migration_set=?",
        (MIGRATION_SET,)).fetchone()[0]
    assert applied == len(SCHEMA_NAMES)


def test_a_new_database_file_has_large_pages(tmp_path):
    """8 KB pages (store.PAGE_SIZE): a county's bulk writes touch fewer."""
    from core.store import PAGE_SIZE

    path = tmp_path / "ledger.db"
    path.touch()   # an empty file is new too
    open_store(path).close()
    with open(path, "rb") as fh:
        header = fh.read(18)
    assert int.from_bytes(header[16:18], "big") == PAGE_SIZE == 8192
    with open_store(path) as again:
        assert again.conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE


def test_a_database_made_with_small_pages_keeps_them_and_its_data(tmp_path, monkeypatch):
    """Files made before PAGE_SIZE was raised stay as they are and work."""
    from core import store as store_mod

    path = tmp_path / "ledger.db"
    monkeypatch.setattr(store_mod, "PAGE_SIZE", 4096)
    with open_store(path) as old:
        ledger_with_group(old).add_household(GROUP, number="1")
    monkeypatch.undo()
    with open_store(path) as s:
        assert s.conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert s.conn.execute("SELECT count(*) FROM household").fetchone()[0] == 1
        Ledger(s, operator="测试员").add_unit("450999001002", "另一村")
    with open_store(path) as s:
        assert s.conn.execute("SELECT count(*) FROM unit").fetchone()[0] == 5


def test_foreign_keys_are_enforced(store):
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute(
            "INSERT INTO household(gid, unit_code, clk) VALUES('hx', 'no-such-unit', '{}')")


def test_node_id_is_set_and_persists_across_reopen(tmp_path):
    path = tmp_path / "ledger.db"
    with open_store(path) as first:
        node = first.node
        assert len(node) == 12 and int(node, 16) >= 0
        first.set_settings(operator="王网格")
    with open_store(path) as second:
        assert second.node == node
        assert second.setting("operator") == "王网格"
        assert second.setting("created_version")
        assert set(second.schema_names()) == set(SCHEMA_NAMES)
        # Reopening applies no migration twice.
        assert second.conn.execute(
            "SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == len(SCHEMA_NAMES)


def test_two_stores_get_different_nodes(tmp_path):
    with open_store(tmp_path / "a.db") as a, open_store(tmp_path / "b.db") as b:
        assert a.node != b.node


def test_settings_round_trip(store):
    assert store.setting("missing") is None
    assert store.setting("missing", "缺省") == "缺省"
    store.set_settings(campaign_year="2027", operator="李")
    store.set_settings(operator="张")
    assert store.setting("campaign_year") == "2027"
    assert store.setting("operator") == "张"


def test_in_memory_store():
    with open_store(":memory:") as mem:
        assert mem.path is None
        assert mem.node
        assert set(mem.schema_names()) == set(SCHEMA_NAMES)


def test_missing_folders_are_created(tmp_path):
    path = tmp_path / "a" / "b" / "ledger.db"
    with open_store(path) as s:
        assert s.path == path.resolve()
    assert path.exists()


def test_empty_file_is_taken_as_new_database(tmp_path):
    path = tmp_path / "ledger.db"
    path.touch()
    with open_store(path) as s:
        assert set(s.schema_names()) == set(SCHEMA_NAMES)


def test_folder_instead_of_file_is_refused(tmp_path):
    with pytest.raises(StoreError, match="文件夹"):
        open_store(tmp_path)


# --- a second instance ----------------------------------------------------------------


def test_second_instance_is_refused_until_first_closes(tmp_path):
    path = tmp_path / "ledger.db"
    first = open_store(path)
    try:
        with pytest.raises(StoreLockedError) as info:
            open_store(path)
        message = str(info.value)
        assert "已被另一个参保通窗口或命令打开" in message
        assert "关闭" in message
        assert isinstance(info.value, StoreError) and isinstance(info.value, CbtError)
        # The refused attempt must not have taken the first one's lock away.
        with pytest.raises(StoreLockedError):
            open_store(path)
        first.set_settings(still="usable")
    finally:
        first.close()
    with open_store(path) as again:
        assert again.setting("still") == "usable"


def test_stale_lock_file_from_a_crash_does_not_block(tmp_path):
    path = tmp_path / "ledger.db"
    make_ours(path)
    (tmp_path / "ledger.db.lock").write_bytes(b"")  # left behind, nobody holds it
    with open_store(path) as s:
        assert s.node


@pytest.mark.skipif(sys.platform == "win32", reason="the lock uses fcntl.flock on POSIX")
def test_lock_file_unlink_race_does_not_let_two_instances_in(tmp_path, monkeypatch):
    import fcntl

    path = tmp_path / "ledger.db"
    first = open_store(path)
    real_flock = fcntl.flock
    raced = []

    def flock_after_first_closes(fd, operation):
        # Interleaving: B has opened ledger.db.lock, then A closes (close + unlink),
        # then B calls flock().
        if not raced:
            raced.append(True)
            first.close()
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_first_closes)
    try:
        second = open_store(path)
    finally:
        monkeypatch.setattr(fcntl, "flock", real_flock)
        if not raced:
            first.close()
    assert raced
    try:
        try:
            third = open_store(path)
        except StoreLockedError:
            third = None
        if third is not None:
            third.close()
        assert third is None, "a third instance opened the database while the second had it"
    finally:
        second.close()


# --- files that are not ours ----------------------------------------------------------


@pytest.mark.parametrize("content", [
    random.Random(11643).randbytes(8192),
    "户号,姓名,身份证号\n001,测试,4509\n".encode("utf-8"),
    b"short",
], ids=["random-bytes", "text-file", "short"])
def test_non_sqlite_file_is_refused_and_unchanged(tmp_path, content):
    path = tmp_path / "ledger.db"
    path.write_bytes(content)
    before = files_in(tmp_path)
    with pytest.raises(StoreError) as info:
        open_store(path)
    assert "不是参保通的数据库文件" in str(info.value)
    assert "未做任何改动" in str(info.value)
    assert files_in(tmp_path) == before


def test_damaged_sqlite_file_is_refused_and_unchanged(tmp_path):
    path = tmp_path / "ledger.db"
    path.write_bytes(b"SQLite format 3\x00" + random.Random(7).randbytes(8192))
    before = files_in(tmp_path)
    with pytest.raises(StoreError) as info:
        open_store(path)
    assert "损坏" in str(info.value) or "不是" in str(info.value)
    assert files_in(tmp_path) == before


def test_other_apps_sqlite_database_is_refused_and_unchanged(tmp_path):
    path = tmp_path / "contacts.db"
    make_foreign(path)
    before = files_in(tmp_path)
    with pytest.raises(StoreError) as info:
        open_store(path)
    assert "不是参保通的数据库文件" in str(info.value)
    assert "contacts.db" in str(info.value)
    assert files_in(tmp_path) == before
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 50
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0
    finally:
        conn.close()


def test_sqlite_database_with_other_application_id_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id=1234")
    conn.commit()
    conn.close()
    before = files_in(tmp_path)
    with pytest.raises(StoreError, match="不是参保通的数据库文件"):
        open_store(path)
    assert files_in(tmp_path) == before


def test_database_from_newer_version_is_refused_and_unchanged(tmp_path):
    path = tmp_path / "ledger.db"
    make_ours(path)
    # A newer 参保通 would have applied a migration this version does not know.
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _sqlite_migrations(migration_set, name, applied_at) "
                 "VALUES(?, '9999_from_the_future', '2030-01-01')", (MIGRATION_SET,))
    conn.commit()
    conn.close()
    before = files_in(tmp_path)
    with pytest.raises(StoreError) as info:
        open_store(path)
    message = str(info.value)
    assert "更新版本" in message and "升级" in message
    assert "9999_from_the_future" in message
    assert "未做任何改动" in message
    assert files_in(tmp_path) == before


def test_other_migration_sets_do_not_count_as_newer(tmp_path):
    path = tmp_path / "ledger.db"
    make_ours(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _sqlite_migrations(migration_set, name, applied_at) "
                 "VALUES('some_plugin', '9999_other', '2030-01-01')")
    conn.commit()
    conn.close()
    with open_store(path) as s:
        assert set(s.schema_names()) == set(SCHEMA_NAMES)


# --- read-only locations --------------------------------------------------------------


@contextlib.contextmanager
def read_only(target: Path):
    """Make a file or folder read-only, in a way that also stops root.

    As root, chmod does not stop writes; the immutable attribute (chattr +i) does.
    """
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: cannot make a read-only location")
        done = subprocess.run(["chattr", "+i", str(target)], capture_output=True)
        if done.returncode != 0:
            pytest.skip("running as root and this file system has no immutable attribute")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(target)], check=True, capture_output=True)
    else:
        mode = target.stat().st_mode
        target.chmod(mode & ~0o222)
        try:
            yield
        finally:
            target.chmod(mode)


def assert_really_read_only(target: Path) -> None:
    probe = target / "probe.tmp" if target.is_dir() else target
    try:
        with open(probe, "ab"):
            pass
    except OSError:
        return
    if probe != target:
        probe.unlink()
    pytest.skip("could not make the location read-only here (writes still succeed)")


def test_read_only_database_file_is_refused_and_unchanged(tmp_path):
    path = tmp_path / "ledger.db"
    make_ours(path)
    before = files_in(tmp_path)
    with read_only(path):
        assert_really_read_only(path)
        with pytest.raises(StoreError) as info:
            open_store(path)
    message = str(info.value)
    assert "只读" in message and "复制到可写的文件夹" in message
    assert files_in(tmp_path) == before


def test_database_in_read_only_folder_is_refused_and_unchanged(tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    path = folder / "ledger.db"
    make_ours(path)
    before = files_in(folder)
    with read_only(folder):
        assert_really_read_only(folder)
        with pytest.raises(StoreError) as info:
            open_store(path)
    assert "只读" in str(info.value)
    assert files_in(folder) == before


def test_new_database_in_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "cdrom"
    folder.mkdir()
    with read_only(folder):
        assert_really_read_only(folder)
        with pytest.raises(StoreError) as info:
            open_store(folder / "ledger.db")
    assert "只读" in str(info.value) and "无法在此创建数据库" in str(info.value)
    assert list(folder.iterdir()) == []


# --- disk full --------------------------------------------------------------------------


def limit_growth(store: Store, extra_pages: int) -> None:
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count={pages + extra_pages}")


def test_disk_full_during_batch_leaves_nothing_behind(store):
    ledger = ledger_with_group(store)
    ledger.add_household(GROUP, address="一组1号")
    before = counts(store)
    limit_growth(store, 3)
    with pytest.raises(StoreError) as info:
        with ledger.batch():
            for i in range(3000):
                ledger.add_household(GROUP, address=f"一组{i + 2}号", worker="王网格")
    message = str(info.value)
    assert "磁盘空间已满" in message and "没有保存" in message
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert not store.conn.in_transaction
    assert counts(store) == before
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    # Once there is room again, the same ledger works.
    store.conn.execute("PRAGMA max_page_count=1073741823")
    ledger.add_household(GROUP, address="一组2号")
    assert counts(store)["household"] == before["household"] + 1


def test_disk_full_in_single_operation_writes_nothing_of_it(store):
    ledger = ledger_with_group(store)
    limit_growth(store, 0)
    for _ in range(5000):  # fill what room is left until one operation fails
        before = counts(store)
        try:
            ledger.add_household(GROUP, address="一组" + "号" * 200)
        except StoreError as exc:
            assert "磁盘空间已满" in str(exc)
            break
    else:
        pytest.fail("the database never became full")
    assert counts(store) == before
    assert not store.conn.in_transaction
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_disk_full_after_reopen_keeps_committed_data(tmp_path):
    path = tmp_path / "ledger.db"
    with open_store(path) as s:
        ledger = ledger_with_group(s)
        kept = ledger.add_household(GROUP, address="一组1号")
        limit_growth(s, 2)
        with pytest.raises(StoreError, match="磁盘空间已满"):
            with ledger.batch():
                for i in range(3000):
                    ledger.add_household(GROUP, address=f"一组{i}号")
    with open_store(path) as s:
        rows = s.conn.execute("SELECT gid FROM household").fetchall()
        assert rows == [(kept,)]


# --- environment_error / guard -------------------------------------------------------------


def full_error() -> sqlite3.Error:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE t (x BLOB)")
        conn.execute("PRAGMA max_page_count=3")
        conn.execute("INSERT INTO t VALUES (zeroblob(1000000))")
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("expected SQLITE_FULL")


def test_environment_error_full():
    exc = full_error()
    assert exc.sqlite_errorcode == sqlite3.SQLITE_FULL
    err = environment_error(exc)
    assert isinstance(err, StoreError)
    assert "磁盘空间已满" in str(err)


def test_environment_error_readonly(tmp_path):
    path = tmp_path / "x.db"
    make_foreign(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.Error) as info:
            conn.execute("INSERT INTO contacts(name) VALUES('x')")
    finally:
        conn.close()
    assert info.value.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY
    err = environment_error(info.value)
    assert isinstance(err, StoreError) and "只读" in str(err)


def test_environment_error_busy(tmp_path):
    path = tmp_path / "x.db"
    make_foreign(path)
    holder = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as info:
            other.execute("INSERT INTO contacts(name) VALUES('x')")
        holder.execute("ROLLBACK")
    finally:
        holder.close()
        other.close()
    assert info.value.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
    err = environment_error(info.value)
    assert isinstance(err, StoreError) and "正被其他程序使用" in str(err)


@pytest.mark.parametrize("code, fragment", [
    (sqlite3.SQLITE_IOERR_WRITE, "读写数据库文件时出错"),
    (sqlite3.SQLITE_READONLY_DBMOVED, "只读"),
    (sqlite3.SQLITE_CORRUPT, "损坏"),
    (sqlite3.SQLITE_NOTADB, "不是参保通的数据库文件"),
    (sqlite3.SQLITE_CANTOPEN, "无法打开"),
    (sqlite3.SQLITE_PERM, "没有权限"),
    (sqlite3.SQLITE_LOCKED, "正被其他程序使用"),
])
def test_environment_error_extended_codes(code, fragment):
    exc = sqlite3.OperationalError("whatever")
    exc.sqlite_errorcode = code
    err = environment_error(exc)
    assert isinstance(err, StoreError) and fragment in str(err)


@pytest.mark.parametrize("text, fragment", [
    ("database or disk is full", "磁盘空间已满"),
    ("attempt to write a readonly database", "只读"),
    ("database is locked", "正被其他程序使用"),
])
def test_environment_error_without_code_falls_back_to_text(text, fragment):
    exc = sqlite3.OperationalError(text)
    assert getattr(exc, "sqlite_errorcode", None) is None
    err = environment_error(exc)
    assert isinstance(err, StoreError) and fragment in str(err)


def test_bugs_are_not_environment_errors():
    conn = sqlite3.connect(":memory:")
    try:
        with pytest.raises(sqlite3.Error) as info:
            conn.execute("SELEC 1")
        assert environment_error(info.value) is None
        assert environment_error(sqlite3.OperationalError("no such table: x")) is None
        # guard() lets bugs through unchanged and turns the environment into StoreError.
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            with guard():
                conn.execute("SELECT * FROM missing")
    finally:
        conn.close()
    with pytest.raises(StoreError, match="磁盘空间已满") as info:
        with guard():
            raise full_error()
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_guard_leaves_other_exceptions_alone():
    with pytest.raises(ValidationError):
        with guard():
            raise ValidationError("身份证号为空")


# --- errors ---------------------------------------------------------------------------------


def test_error_messages_and_fields():
    err = ValidationError("姓名不能为空", field="name")
    assert str(err) == "姓名不能为空" and err.message == "姓名不能为空"
    assert err.field == "name"
    assert issubclass(StoreLockedError, StoreError)
    assert issubclass(StoreError, CbtError) and issubclass(ValidationError, CbtError)


def test_a_stray_write_outside_the_ledger_does_not_swallow_its_commit(tmp_path):
    """In the sqlite3 module's default mode, an INSERT outside any transaction
    (here into a temp table, as imports do) silently opened one; the ledger's
    next transaction nested in it as a savepoint and was lost on close."""
    path = tmp_path / "ledger.db"
    store = open_store(path)
    ledger = ledger_with_group(store)
    store.conn.execute("CREATE TEMP TABLE scratch(x)")
    store.conn.execute("INSERT INTO temp.scratch VALUES (1)")
    hh = ledger.add_household(GROUP)
    assert not store.conn.in_transaction
    store.close()
    with open_store(path) as again:
        assert again.conn.execute("SELECT count(*) FROM household WHERE gid=?",
                                  (hh,)).fetchone() == (1,)


# --- an index set aside for a bulk write -----------------------------------------------


def _index_and_stats(conn: sqlite3.Connection, name: str) -> tuple[Any, list[tuple]]:
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type='index' AND name=?",
                       (name,)).fetchone()
    try:
        stats = conn.execute("SELECT * FROM sqlite_stat1 WHERE idx=?", (name,)).fetchall()
    except sqlite3.OperationalError:   # never analysed
        stats = []
    return sql, stats


def _analyzed(store: Store) -> sqlite3.Connection:
    conn = store.conn
    ledger = ledger_with_group(store)
    for k in range(3):
        ledger.add_person(ledger.add_household(GROUP), name=("赵大成", "钱玉兰", "孙建华")[k])
    conn.execute("ANALYZE")
    return conn


def test_an_index_set_aside_is_built_again_with_its_statistics(store):
    conn = _analyzed(store)
    before = _index_and_stats(conn, "enrollment_progress")
    assert before[0] is not None and before[1]
    conn.execute("BEGIN")
    with index_rebuilt_after(conn, "enrollment_progress"):
        assert _index_and_stats(conn, "enrollment_progress") == (None, [])
        conn.execute("UPDATE enrollment SET status='confirmed'")
    conn.execute("COMMIT")
    assert _index_and_stats(conn, "enrollment_progress") == before
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # The index holds the rows as written while it was away.
    assert conn.execute("SELECT count(*) FROM enrollment INDEXED BY enrollment_progress "
                        "WHERE year > 0 AND status='confirmed'").fetchone()[0] == 3


@pytest.mark.parametrize("then", ["ROLLBACK", "COMMIT"])
def test_an_index_set_aside_comes_back_when_the_write_fails_whatever_the_caller_does(store,
                                                                                     then):
    """Built again as the error passes: a caller who rolls back gets the
    index as it was, one who commits gets it holding what was written."""
    conn = _analyzed(store)
    before = _index_and_stats(conn, "enrollment_progress")
    conn.execute("BEGIN")
    with pytest.raises(ZeroDivisionError):
        with index_rebuilt_after(conn, "enrollment_progress"):
            conn.execute("UPDATE enrollment SET status='confirmed'")
            1 / 0
    assert _index_and_stats(conn, "enrollment_progress") == before
    conn.execute(then)
    assert _index_and_stats(conn, "enrollment_progress") == before
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM enrollment INDEXED BY enrollment_progress "
                        "WHERE year > 0 AND status='confirmed'").fetchone()[0] == \
        (3 if then == "COMMIT" else 0)


def test_an_index_built_again_is_planned_with_its_statistics(tmp_path):
    """After the rebuild the connection plans with the statistics put back,
    not with a new index's default guesses (which would pick i2 here)."""
    conn = sqlite3.connect(tmp_path / "plan.db", isolation_level=None)
    conn.executescript("CREATE TABLE t(a, b); CREATE INDEX i1 ON t(a); CREATE INDEX i2 ON t(b);"
                       "INSERT INTO t VALUES (1, 1), (2, 2); ANALYZE;"
                       "UPDATE sqlite_stat1 SET stat='1000 1' WHERE idx='i1';"
                       "UPDATE sqlite_stat1 SET stat='1000 2' WHERE idx='i2';"
                       "ANALYZE sqlite_master;")

    def plan() -> str:
        return conn.execute("EXPLAIN QUERY PLAN SELECT * FROM t WHERE a=1 AND b=1").fetchone()[3]

    assert "i1" in plan()
    conn.execute("BEGIN")
    with index_rebuilt_after(conn, "i1"):
        pass
    assert "i1" in plan()
    conn.execute("COMMIT")
    conn.close()


def test_an_index_is_set_aside_only_inside_a_transaction(store):
    conn = store.conn
    with pytest.raises(RuntimeError):
        with index_rebuilt_after(conn, "enrollment_progress"):
            pass
    conn.execute("BEGIN")
    with index_rebuilt_after(conn, "no_such_index"):
        pass
    conn.execute("ROLLBACK")
    assert _index_and_stats(conn, "enrollment_progress")[0] is not None
