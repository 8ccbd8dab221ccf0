"""Running a generator one step ahead of its consumer, on a helper thread.

A county's paid list is read and checked in Python (about 1.5 s for 400,000
rows) and written in SQLite (several seconds). sqlite3 lets go of the GIL
while a statement runs, so with the reading on a helper thread the two use
both of a laptop's cores: the helper checks the next chunk of rows while the
database writes the last one.

Two things keep that from going wrong:

- Python hands the GIL back to a thread that asks for it only every switch
  interval (5 ms by default). A consumer that lets go of the GIL for every row
  (`executemany`, a `fetchall` of many rows) would wait that long per row
  while the helper is busy: 50,000 rows once took 38 s instead of 0.04 s. So
  the consumer does only a few long statements per item while the helper
  runs, and the switch interval is 0.5 ms for the while: a long statement
  then costs at most that when it ends.
- The helper stops at the next item when the consumer is done or cancelled,
  and `ahead` waits for it before returning, so nothing runs on after a
  cancel has rolled the transaction back.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Iterator
from typing import TypeVar

from core.processwide import ProcessWide

T = TypeVar("T")

_SWITCH_INTERVAL = 0.0005


def _shorten() -> float:
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, _SWITCH_INTERVAL))
    return before


# A short GIL switch interval inside `with quick_switch():` (nests, and is
# thread-safe).
quick_switch = ProcessWide(_shorten, sys.setswitchinterval)


_DONE = object()


@contextlib.contextmanager
def ahead(source: Iterator[T]) -> Iterator[Iterator[T]]:
    """The items of `source`, produced on a helper thread while the caller
    works on the ones before. An exception in `source` is raised where the
    caller takes the item it would have made. Leaving the block (at the end,
    on an error or when the caller's generator is closed) stops the helper at
    its next item and waits for it."""
    items: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                if stop.is_set():
                    break
                items.put((item, None))
        except BaseException as exc:  # handed to the consumer, raised there
            items.put((_DONE, exc))
            return
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
        items.put((_DONE, None))

    def consume() -> Iterator[T]:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item

    thread = threading.Thread(target=produce, name="cbt-ahead", daemon=True)
    with quick_switch():
        thread.start()
        try:
            yield consume()
        finally:
            stop.set()
            thread.join()
