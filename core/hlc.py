"""Hybrid logical clock (HLC) timestamps.

A timestamp is a string that sorts in time order as plain text:

    WWWWWWWWWWWWW-CCCC-NNNNNNNNNNNN
    wall time in ms (13 digits) - counter (4 hex digits) - node id (12 hex)

The wall part never goes backwards on a node, even if the laptop's clock is
set back, and it moves past any timestamp received from another node. So a
change made after seeing another change always carries a greater timestamp,
and no two changes anywhere share one: the timestamp doubles as the change id.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

_PATTERN = re.compile(r"^(\d{13})-([0-9a-f]{4})-([0-9a-f]{12})$")
MAX_COUNTER = 0xFFFF
ZERO = "0" * 13 + "-0000-" + "0" * 12


def parse(ts: str) -> tuple[int, int, str]:
    m = _PATTERN.match(ts)
    if not m:
        raise ValueError(f"not an HLC timestamp: {ts!r}")
    return int(m.group(1)), int(m.group(2), 16), m.group(3)


def fmt(wall_ms: int, counter: int, node: str) -> str:
    return f"{wall_ms:013d}-{counter:04x}-{node}"


def node_of(ts: str) -> str:
    return ts[-12:]


def is_valid(ts: str) -> bool:
    return bool(_PATTERN.match(ts))


class Clock:
    """One node's clock. Not thread-safe; each connection's ledger owns one."""

    def __init__(self, node: str, last: str | None = None,
                 now_ms: Callable[[], int] | None = None) -> None:
        if not re.fullmatch(r"[0-9a-f]{12}", node):
            raise ValueError(f"node id must be 12 hex digits: {node!r}")
        self.node = node
        self._now = now_ms or (lambda: time.time_ns() // 1_000_000)
        self.wall, self.counter = 0, 0
        if last:
            self.observe(last)

    def tick(self) -> str:
        """A new timestamp, greater than every one this clock has made or seen."""
        now = self._now()
        if now > self.wall:
            self.wall, self.counter = now, 0
        elif self.counter < MAX_COUNTER:
            self.counter += 1
        else:
            # 65,536 changes in one millisecond: borrow the next millisecond.
            self.wall, self.counter = self.wall + 1, 0
        return fmt(self.wall, self.counter, self.node)

    def observe(self, ts: str) -> None:
        """Move past a timestamp seen from another node (or our own, at start-up)."""
        wall, counter, _ = parse(ts)
        if (wall, counter) > (self.wall, self.counter):
            self.wall, self.counter = wall, counter

    @property
    def last(self) -> str:
        return fmt(self.wall, self.counter, self.node)
