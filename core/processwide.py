"""A process-wide setting changed for the length of a with-block.

Bulk work changes settings that belong to the whole interpreter (the cycle
collector, the GIL switch interval) for a few seconds. Blocks may nest or run
on several threads at once: the first one in applies the setting, the last
one out restores what was there before.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any


class ProcessWide:
    """`with setting():` — apply() on the way into the first block (it returns
    what to restore), restore(that) on the way out of the last."""

    def __init__(self, apply: Callable[[], Any], restore: Callable[[Any], None]) -> None:
        self._apply = apply
        self._restore = restore
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: Any = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._saved = self._apply()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._restore(self._saved)
