"""Long work off the GUI thread, with progress and cancel.

    task = Task(build_counts, db_path)          # fn(ctx, *args) -> result
    task.signals.finished.connect(on_done)
    start(task)

The function runs on a pool thread and receives a TaskContext: it reports
progress with ctx.progress(done, total, text) and checks ctx.cancelled often.
Results and errors come back to the GUI thread by queued signals.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from core.errors import CbtError


class Cancelled(Exception):
    """Raised inside a task when the user cancelled it."""


class TaskContext:
    def __init__(self, signals: "TaskSignals") -> None:
        self._signals = signals
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def progress(self, done: int, total: int, text: str = "") -> None:
        self.check()
        self._signals.progress.emit(done, total, text)

    def partial(self, result: Any) -> None:
        """Hand part of the result to the GUI before the task ends (list chunks)."""
        self.check()
        self._signals.partial.emit(result)

    def cancel(self) -> None:
        self._cancel.set()


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
        self._call = (fn, args, kwargs)

    def cancel(self) -> None:
        self.context.cancel()

    def run(self) -> None:
        fn, args, kwargs = self._call
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
