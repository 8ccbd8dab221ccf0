"""Guards against a binding that corrupts the refcount of None.

PySide6 6.12.0 on Python 3.11 drops a reference to None on every call of a
void method (QLabel.setText, QStandardItem.setData, QComboBox.addItem …); after
enough calls None is deallocated and the process dies ("none_dealloc"). On
Python 3.12+ None is immortal and the bug is invisible, so this only bites the
Python the village laptops run. Pinned in requirements.txt; this test fails
if the pin drifts to a broken release.
"""

from __future__ import annotations

import sys

import pytest


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12")
def test_void_calls_keep_none_alive(qapp):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QComboBox, QLabel, QTableWidgetItem

    label = QLabel()
    combo = QComboBox()
    item = QTableWidgetItem("x")
    before = sys.getrefcount(None)
    for i in range(500):
        label.setText(str(i))
        item.setData(Qt.ItemDataRole.UserRole, i)
    combo.addItem("x", "y")
    after = sys.getrefcount(None)
    assert after - before > -20, f"None lost {before - after} references"
