"""A step of long work, as the core's generators report it to the CLI and the GUI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    message: str
    # True on the step after the work was kept (the import committed, the file
    # renamed into place). Closing the generator from there on undoes nothing,
    # so a cancel that arrives then is too late and must not be reported as one.
    final: bool = False
