"""Long work off the GUI thread, with progress and cancel.

    task = Task(build_counts, db_path)          # fn(ctx, *args) -> result
    task.signals.finished.connect(on_done)
    start(task)

The function runs on a pool thread and receives a TaskContext: it reports
progress with ctx.progress(done, total, text) and checks ctx.cancelled often,
or hands a core generator's steps to ctx.follow(). Results and errors come
back to the GUI thread by queued signals.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from core.errors import CbtError


class Cancelled(Exception):
    """Raised inside a task when the user cancelled it."""


class TaskContext:
    def __init__(self, signals: "TaskSignals") -> None:
        self._signals = signals
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._kept = False

    @property
    def cancelled(self) -> bool:
        """A cancel was asked for before the work was kept (see keep())."""
        return self._cancel.is_set() and not self._kept

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled()

    def keep(self) -> None:
        """The work is done for good (committed, or its file in place): a
        cancel from now on is too late, and the result is delivered even if
        one was asked for while it was being saved."""
        with self._lock:
            self._kept = True

    def follow(self, steps: Iterator[Any]) -> None:
        """Report a core generator's Progress steps until it ends. A cancel
        closes it, which undoes its work, unless a step marked final has come:
        then the work was kept and the task goes on to its result."""
        try:
            for step in steps:
                if step.final:
                    self.keep()
                self.progress(step.done, step.total, step.message)  # raises when cancelled
        finally:
            steps.close()

    def progress(self, done: int, total: int, text: str = "") -> None:
        self.check()
        self._signals.progress.emit(done, total, text)

    def partial(self, result: Any) -> None:
        """Hand part of the result to the GUI before the task ends (list chunks)."""
        self.check()
        self._signals.partial.emit(result)

    def cancel(self) -> bool:
        """Ask the task to stop; False if it is too late (the work was kept)."""
        with self._lock:
            self._cancel.set()
            return not self._kept


class TaskSignals(QObject):
    progress = Signal(int, int, str)
    partial = Signal(object)       # part of the result, in order
    finished = Signal(object)      # the result
    failed = Signal(str)           # a Chinese message for the user
    cancelled = Signal()


class Task(QRunnable):
    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the GUI keeps it until its signals are delivered
        self.signals = TaskSignals()
        self.context = TaskContext(self.signals)
        self._call: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None = \
            (fn, args, kwargs)

    def cancel(self) -> bool:
        """Ask the task to stop; False if it is too late (the work was kept)."""
        return self.context.cancel()

    def run(self) -> None:
        # Let go of the arguments once run: the task itself stays reachable
        # after it ends (its signals' handlers refer back to it), and an
        # import's plan holds the parsed workbook.
        fn, args, kwargs = self._call
        self._call = None
        try:
            result = fn(self.context, *args, **kwargs)
        except Cancelled:
            self._emit(self.signals.cancelled)
        except CbtError as exc:
            self._emit(self.signals.failed, str(exc))
        except Exception:  # noqa: BLE001 - a bug; show it rather than die silently
            self._emit(self.signals.failed, "程序内部错误，请把以下信息发给技术人员：\n"
                       + traceback.format_exc(limit=8))
        else:
            if self.context.cancelled:
                self._emit(self.signals.cancelled)
            else:
                self._emit(self.signals.finished, result)

    @staticmethod
    def _emit(signal: Any, *args: Any) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:
            pass  # the application is shutting down: nobody is listening any more


_running: set[Task] = set()


def start(task: Task) -> Task:
    """Run a task on the global pool, keeping it alive until it ends."""
    _running.add(task)
    for sig in (task.signals.finished, task.signals.failed, task.signals.cancelled):
        sig.connect(lambda *_: _running.discard(task))
    QThreadPool.globalInstance().start(task)
    return task
