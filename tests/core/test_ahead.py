"""core.ahead: a generator run one step ahead of its consumer."""

from __future__ import annotations

import sys
import threading

import pytest

from core.ahead import ahead, quick_switch


def helpers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cbt-ahead"]


def test_items_arrive_in_order_made_on_another_thread():
    made_on = []

    def source():
        for k in range(5):
            made_on.append(threading.current_thread().name)
            yield k

    with ahead(source()) as items:
        assert list(items) == [0, 1, 2, 3, 4]
    assert set(made_on) == {"cbt-ahead"}
    assert not helpers()


def test_an_error_in_the_source_is_raised_where_its_item_is_taken():
    def source():
        yield 1
        raise ValueError("第2项出错")

    with ahead(source()) as items:
        it = iter(items)
        assert next(it) == 1
        with pytest.raises(ValueError, match="第2项出错"):
            next(it)
    assert not helpers()


def test_leaving_early_stops_the_source_and_waits_for_it():
    closed = threading.Event()
    gate = threading.Event()

    def source():
        try:
            for k in range(1_000_000):
                if k == 3:
                    gate.set()
                yield k
        finally:
            closed.set()

    with ahead(source()) as items:
        for item in items:
            if item == 0:
                gate.wait(5)
                break
    assert closed.is_set()   # closed before ahead() returned, not later
    assert not helpers()


def test_an_error_in_the_consumer_stops_the_source():
    made = []

    def source():
        for k in range(1_000_000):
            made.append(k)
            yield k

    with pytest.raises(RuntimeError):
        with ahead(source()) as items:
            for _ in items:
                raise RuntimeError("写入失败")
    count = len(made)
    assert count < 1_000_000 and not helpers()
    assert len(made) == count   # nothing runs on after


def test_the_switch_interval_is_short_inside_and_restored_after():
    before = sys.getswitchinterval()
    with quick_switch():
        with quick_switch():
            assert sys.getswitchinterval() <= 0.0005
        assert sys.getswitchinterval() <= 0.0005
    assert sys.getswitchinterval() == before
