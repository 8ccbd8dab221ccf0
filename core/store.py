"""Opening the database: the checks that keep a user's file safe.

One SQLite file per installation, through sqlite-utils; WAL; foreign keys on;
numbered migrations. Before anything is written we check that the file is ours,
not from a newer version, writable, and not open in another instance. Errors of
the environment (disk full, read-only, locked, damaged) become a StoreError with
a Chinese message; anything else is a bug and propagates as it is.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from core import APP_ID, __version__
from core.errors import StoreError, StoreLockedError
from core.schema import APPLICATION_ID, MIGRATION_SET, SCHEMA_NAMES, migrations

SQLITE_HEADER = b"SQLite format 3\x00"

# sqlite3 extended error codes → what to tell the user.
_ENV_ERRORS = {
    sqlite3.SQLITE_FULL: "磁盘空间已满，本次操作没有保存。请清理磁盘后重试。",
    sqlite3.SQLITE_READONLY: "数据库文件是只读的，无法保存。请检查文件权限或换一个位置。",
    sqlite3.SQLITE_BUSY: "数据库正被其他程序使用，请稍后重试。",
    sqlite3.SQLITE_LOCKED: "数据库正被其他程序使用，请稍后重试。",
    sqlite3.SQLITE_CORRUPT: "数据库文件已损坏。请从备份恢复。",
    sqlite3.SQLITE_NOTADB: "这不是参保通的数据库文件。",
    sqlite3.SQLITE_CANTOPEN: "无法打开数据库文件，请检查路径和权限。",
    sqlite3.SQLITE_IOERR: "读写数据库文件时出错（磁盘或U盘故障？），本次操作没有保存。",
    sqlite3.SQLITE_PERM: "没有权限访问数据库文件。",
}


def default_db_path() -> Path:
    """The per-user data folder (e.g. %LOCALAPPDATA%\\canbaotong on Windows)."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_ID, appauthor=False)) / "canbaotong.db"


def demo_db_path() -> Path:
    """The demo county lives apart from the real ledger, so building it can
    never overwrite a village's work."""
    return default_db_path().with_name("demo.db")


def environment_error(exc: sqlite3.Error) -> StoreError | None:
    """A StoreError for errors of the environment, None for bugs."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        text = str(exc).lower()
        if "disk is full" in text:
            code = sqlite3.SQLITE_FULL
        elif "readonly" in text:
            code = sqlite3.SQLITE_READONLY
        elif "locked" in text:
            code = sqlite3.SQLITE_BUSY
        else:
            return None
    message = _ENV_ERRORS.get(code & 0xFF)
    return StoreError(message) if message else None


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Turn environment errors inside the block into StoreError."""
    try:
        yield
    except sqlite3.Error as exc:
        err = environment_error(exc)
        if err is None:
            raise
        raise err from exc


class _FileLock:
    """An OS lock on `<db>.lock`, released by the OS if the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None

    def acquire(self) -> None:
        # release() deletes the lock file, so between our open() and flock() a
        # closing instance may unlink the file we opened; a lock on an unlinked
        # file protects nothing. Retry until the locked file is the one on disk.
        for _ in range(20):
            fh = open(self.path, "a+b")
            try:
                self._lock(fh)
            except OSError:
                fh.close()
                raise StoreLockedError(
                    f"数据库 {self.path.with_suffix('')} 已被另一个参保通窗口或命令打开。"
                    "请先关闭它，再重试。"
                ) from None
            if self._still_linked(fh):
                self._fh = fh
                return
            fh.close()
        raise StoreLockedError(f"无法锁定数据库 {self.path.with_suffix('')}，请稍后重试。")

    @staticmethod
    def _lock(fh: Any) -> None:
        if sys.platform == "win32":
            import msvcrt

            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _still_linked(self, fh: Any) -> bool:
        if sys.platform == "win32":
            return True  # Windows cannot delete a file another process has open
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fh.fileno())
        return (held.st_ino, held.st_dev) == (on_disk.st_ino, on_disk.st_dev)

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            # Tidy up; a racing opener notices (see acquire) and retries.
            with contextlib.suppress(OSError):
                self.path.unlink()


class Store:
    """An open database with its lock and settings."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None,
                 lock: _FileLock | None) -> None:
        self.db = db
        self.path = path
        self._lock = lock

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            if self._lock:
                self._lock.release()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- settings of this installation (local, never synced) -------------

    def setting(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_settings(self, **values: str | None) -> None:
        with guard(), self.db.atomic():
            self.conn.executemany(
                "INSERT INTO settings(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                list(values.items()),
            )

    @property
    def node(self) -> str:
        node = self.setting("node_id")
        assert node, "open_store() always sets a node id"
        return node

    def schema_names(self) -> list[str]:
        return [m.name for m in migrations.applied(self.db)]


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise StoreError(f"{path} 是一个文件夹，不是数据库文件。")
    if path.exists() and path.stat().st_size > 0:
        try:
            with open(path, "rb") as fh:
                header = fh.read(16)
        except OSError as exc:
            raise StoreError(f"无法读取 {path}：{exc.strerror}") from exc
        if header != SQLITE_HEADER:
            raise StoreError(f"{path.name} 不是参保通的数据库文件，未做任何改动。")
    folder = path.parent
    if path.exists():
        if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
            raise StoreError(
                f"{path} 位于只读位置，无法保存修改（数据库需要在同一文件夹写入临时文件）。"
                "请把它复制到可写的文件夹后再打开。"
            )
    else:
        if not folder.exists():
            try:
                folder.mkdir(parents=True)
            except OSError as exc:
                raise StoreError(f"无法创建文件夹 {folder}：{exc.strerror}") from exc
        if not os.access(folder, os.W_OK):
            raise StoreError(f"文件夹 {folder} 是只读的，无法在此创建数据库。")


# 8 KB pages rather than SQLite's 4 KB: a county's bulk writes (a paid list
# confirming 400,000 enrollments) touch half as many pages, measured 0.3 to
# 0.5 s (about 8%) off that import, whose budget is tight. 16 KB saved about
# 0.1 s more there but made 10,000 scattered writes in one batch a third
# slower (each dirty page is written whole to the WAL); 8 KB left those as
# they were. Only new databases get it: WAL fixes a file's page size when
# it is made, so an existing file keeps its own.
PAGE_SIZE = 8192


def _check_ours(conn: sqlite3.Connection, path: Path | None) -> bool:
    """True if the file is a new, empty database; raise if it is someone else's."""
    name = path.name if path else "数据库"
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{name} 已损坏或不是数据库文件，未做任何改动。") from exc
    if app_id == 0 and tables == 0:
        return True
    if app_id != APPLICATION_ID:
        raise StoreError(f"{name} 不是参保通的数据库文件，未做任何改动。")
    has_log = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE name='_sqlite_migrations'").fetchone()
    if has_log:
        applied = {r[0] for r in conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set=?", (MIGRATION_SET,))}
        newer = applied - SCHEMA_NAMES
        if newer:
            raise StoreError(
                f"{name} 由更新版本的参保通创建（含本版本 {__version__} 不认识的结构 "
                f"{sorted(newer)[-1]}），请升级参保通后再打开。未做任何改动。"
            )
    return False


def open_store(path: str | Path | None = None, *, lock: bool = True) -> Store:
    """Open (creating if needed) and migrate a database.

    path None or ':memory:' gives an in-memory database (tests).
    Raises StoreError with a Chinese message for every problem a user can meet.
    """
    if path is None or str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        store = Store(sqlite_utils.Database(conn), None, None)
        _prepare(store, new=True)
        return store

    path = Path(path).expanduser().resolve()
    _check_file(path)
    file_lock = None
    if lock:
        file_lock = _FileLock(path.with_name(path.name + ".lock"))
        file_lock.acquire()
    try:
        with guard():
            # check_same_thread stays on: each worker thread opens its own store.
            # isolation_level=None: no transaction but those we BEGIN (the
            # ledger's, through atomic()). In the sqlite3 module's default
            # mode, a stray INSERT or DELETE outside them, even into a temp
            # table, silently opens a transaction; atomic() then nests in it
            # as a savepoint, so the ledger's writes are never committed and
            # are lost when the store closes. That lost a paid-list import.
            conn = sqlite3.connect(str(path), timeout=5, isolation_level=None)
            try:
                new = _check_ours(conn, path)
                store = Store(sqlite_utils.Database(conn), path, file_lock)
                _prepare(store, new=new)
            except BaseException:
                conn.close()
                raise
    except BaseException:
        if file_lock:
            file_lock.release()
        raise
    return store


@contextlib.contextmanager
def checkpoint_later(conn: sqlite3.Connection) -> Iterator[None]:
    """No automatic WAL checkpoint at the commits inside: the caller (or the
    last connection to close) runs checkpoint() afterwards.

    A county's list writes some 200 MB of pages to the WAL; copying them into
    the database file at the commit takes about a second more. The import is
    complete and durable once committed, so the window shows its report at
    once and the copy runs in the background (ui.import_page). Readers and
    writers meanwhile read the WAL as usual."""
    before = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    conn.execute("PRAGMA wal_autocheckpoint=0")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA wal_autocheckpoint={before}")


@contextlib.contextmanager
def index_rebuilt_after(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    """Index `name` dropped for the block and built again at its end, with
    its ANALYZE statistics as they were (DROP INDEX deletes them, and the
    query planner would otherwise guess).

    For a write that changes the indexed columns of most of a table: one
    sort of every key then costs less than moving each changed key in the
    B-tree. Only inside a transaction. If the block raises (or a generator
    holding it is closed) the index is built again all the same, so that a
    caller who commits anyway keeps a whole schema; a rollback undoes it
    with the rest. (Not a savepoint around the block: it would keep the
    original of every page the block writes, some 300 MB for a county's
    paid list, and measured a second slower.) An index that does not
    exist, or that SQLite made itself, is left alone."""
    if not conn.in_transaction:
        raise RuntimeError("index_rebuilt_after: only inside a transaction")
    row = conn.execute("SELECT sql FROM main.sqlite_master WHERE type='index' AND name=?",
                       (name,)).fetchone()
    if row is None or row[0] is None:
        yield
        return
    stat_tables = [t for (t,) in conn.execute(
        "SELECT name FROM main.sqlite_master WHERE type='table' "
        "AND name IN ('sqlite_stat1', 'sqlite_stat4')")]
    stats = {t: conn.execute(f"SELECT * FROM main.{t} WHERE idx=?", (name,)).fetchall()
             for t in stat_tables}
    quoted = '"' + name.replace('"', '""') + '"'
    conn.execute(f"DROP INDEX main.{quoted}")
    try:
        yield
    except BaseException:
        # The transaction may be gone already (SQLite rolls some errors
        # back itself), and the block's error is the one to report.
        with contextlib.suppress(sqlite3.Error):
            _put_back(conn, name, row[0], stats)
        raise
    _put_back(conn, name, row[0], stats)


def _put_back(conn: sqlite3.Connection, name: str, sql: str,
              stats: dict[str, list[tuple[Any, ...]]]) -> None:
    if conn.execute("SELECT 1 FROM main.sqlite_master WHERE type='index' AND name=?",
                    (name,)).fetchone():
        return   # back already: rolled back with its transaction
    conn.execute(sql)
    for table, rows in stats.items():
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            conn.executemany(f"INSERT INTO main.{table} VALUES ({marks})", rows)
    if any(stats.values()):
        conn.execute("ANALYZE sqlite_master")   # this connection reads them again


def checkpoint(path: str | Path) -> tuple[int, int]:
    """Copy the WAL into the database file, without waiting on any reader or
    writer (PASSIVE): (pages in the WAL, pages copied). Its own connection,
    so it can run on any thread."""
    with guard():
        conn = sqlite3.connect(str(Path(path).expanduser()), timeout=5)
        try:
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()
    return int(row[1]), int(row[2])


def open_reader(path: str | Path) -> sqlite3.Connection:
    """A read-only connection for a background thread (counts, lists, exports).

    WAL lets it read a consistent snapshot while the window's own connection
    writes. Read-only so a reader can never write around the ledger service.
    """
    with guard():
        uri = Path(path).expanduser().resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=5, check_same_thread=False)
        conn.execute("PRAGMA query_only=1")
        return conn


def _prepare(store: Store, *, new: bool) -> None:
    conn = store.conn
    if new:
        # Before the first write: afterwards it cannot change.
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    if store.path is not None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError("无法启用数据库日志模式（WAL），请检查存放位置是否可写。")
    # NORMAL is durable against application crashes and, in WAL mode, keeps
    # the database consistent on power loss (the last commits may be lost).
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-65536")  # 64 MB page cache
    if new:
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    with guard():
        migrations.apply(store.db)
        if store.setting("node_id") is None:
            store.set_settings(node_id=secrets.token_hex(6), created_version=__version__)
