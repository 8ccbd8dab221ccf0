"""Typed errors. Every error a user can cause carries a Chinese message.

Two kinds, as in qutebrowser's misc/sql.py: problems of the environment or the
input (shown to the user as they are) and bugs (everything else, reported as
a bug). Only the first kind derives from CbtError.
"""

from __future__ import annotations


class CbtError(Exception):
    """Base of all errors whose message is meant for the user (in Chinese)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class ValidationError(CbtError):
    """Input that is not acceptable; nothing was written."""


class NotFoundError(CbtError):
    """A household, person or unit that does not exist (or was deleted)."""


class DuplicateIdError(ValidationError):
    """An ID number that is already registered for another person."""

    def __init__(self, message: str, *, existing_gid: str) -> None:
        super().__init__(message, field="id_number")
        self.existing_gid = existing_gid


class StoreError(CbtError):
    """The database file cannot be used: not ours, newer, read-only, full, locked."""


class StoreLockedError(StoreError):
    """Another instance of the program has the database open."""


class SyncError(CbtError):
    """A batch of changes from another installation cannot be applied."""
