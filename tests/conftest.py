"""Shared fixtures. GUI tests run offscreen so the suite works on a headless CI box."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from core.store import Store, open_store


@pytest.fixture
def store(tmp_path) -> Store:
    """A fresh, empty store in a temporary file (WAL needs a real file)."""
    s = open_store(tmp_path / "ledger.db")
    yield s
    s.close()
