"""One open ledger in the GUI: the store, the ledger service, the undo stack,
and a signal every page listens to after a write."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.errors import CbtError
from core.ledger import Ledger, WriteResult
from core.store import Store


@dataclass
class UndoEntry:
    text: str            # what the user did, for the status bar: "标记已缴：张秀英"
    txns: list[str]


class Session(QObject):
    """Writes go through `write`, which runs ledger calls in one batch, records
    the undo entry and tells every page what changed."""

    changed = Signal(object, object)   # person gids, household gids
    message = Signal(str)              # a line for the status bar
    undo_available = Signal(bool)

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.ledger = Ledger(store)
        self.year = self.ledger.year
        self._undo: list[UndoEntry] = []
        self._unit_names: dict[str, str] | None = None
        # Set when the window closes: results of background work that arrive
        # afterwards are dropped instead of touching a closed database.
        self.closed = False

    # --- settings ---------------------------------------------------------

    @property
    def operator(self) -> str:
        return self.store.setting("operator") or ""

    @property
    def role(self) -> str:
        return self.store.setting("role") or ""

    @property
    def scope(self) -> str:
        return self.store.setting("scope") or ""

    def setting(self, key: str, default: str | None = None) -> str | None:
        return self.store.setting(key, default)

    def set_settings(self, **values: str | None) -> None:
        self.store.set_settings(**values)
        if "operator" in values:
            self.ledger.operator = values["operator"] or ""

    @property
    def today(self) -> dt.date:
        return dt.date.today()

    def unit_name(self, code: str | None) -> str:
        """A group's own name (第三组) — the tree shows where it is."""
        if not code:
            return ""
        if self._unit_names is None:
            self._unit_names = dict(self.store.conn.execute(
                "SELECT gid, name FROM unit WHERE deleted=0"))
        return self._unit_names.get(code, code)

    def place(self, code: str | None) -> str:
        """'青山镇 上家头 第三组' for a group code."""
        if not code:
            return ""
        return " ".join(self.unit_name(code[:w]) for w in (9, 12, 15) if len(code) >= w)

    def units_changed(self) -> None:
        self._unit_names = None

    # --- writing ----------------------------------------------------------

    def write(self, text: str, fn: Callable[[Ledger], Any], *, undoable: bool = True) -> Any:
        """Run `fn(ledger)` — one or more ledger calls — as one undoable step,
        in one transaction. Raises CbtError (Chinese message), nothing written,
        if any call fails."""
        with self.ledger.collect() as results, self.ledger.batch():
            value = fn(self.ledger)
        persons: set[str] = set()
        households: set[str] = set()
        for result in results:
            for c in result.changes:
                if c.entity == "person":
                    persons.add(c.gid)
                elif c.entity == "enrollment":
                    persons.add(c.gid.split("/")[0])
                elif c.entity == "household":
                    households.add(c.gid)
            households |= result.report.households
            persons |= result.report.persons
        txns = [r.txn for r in results if r.txn]
        if txns and undoable:
            self._undo.append(UndoEntry(text, txns))
            del self._undo[:-50]
            self.undo_available.emit(True)
        self.changed.emit(persons, households)
        self.message.emit(f"已保存：{text}")
        return value

    def try_write(self, text: str, fn: Callable[[Ledger], Any]) -> tuple[bool, Any]:
        """write(), turning a CbtError into (False, message)."""
        try:
            return True, self.write(text, fn)
        except CbtError as exc:
            return False, str(exc)

    # --- undo -------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo(self) -> str | None:
        """Undo the last step; returns a message for the user, or None if nothing."""
        if not self._undo:
            return None
        entry = self._undo.pop()
        self.undo_available.emit(bool(self._undo))
        skipped = 0

        def run(ledger: Ledger) -> None:
            nonlocal skipped
            for txn in reversed(entry.txns):
                result: WriteResult = ledger.undo(txn)
                skipped += result.skipped

        try:
            self.write(f"撤销（{entry.text}）", run, undoable=False)
        except CbtError as exc:
            self._undo.append(entry)  # still there to retry
            self.undo_available.emit(True)
            return f"无法撤销：{exc}"
        note = f"已撤销：{entry.text}"
        if skipped:
            note += f"（有{skipped}项已被再次修改，保留了新值）"
        self.message.emit(note)
        return note
