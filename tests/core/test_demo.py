"""The demo county: deterministic, valid, realistic in shape, cancellable."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from core import idcard
from core.demo import COUNTY_CODE, build_demo_steps
from core.errors import ValidationError
from core.store import open_store

TODAY = dt.date(2026, 11, 23)


def _build(path, persons=2000, seed=7, workers=False):
    for _ in build_demo_steps(path, persons, seed, today=TODAY, workers=workers):
        pass
    return open_store(path)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    store = _build(tmp_path_factory.mktemp("demo") / "demo.db")
    yield store
    store.close()


def _content(store):
    conn = store.conn
    return (conn.execute("SELECT gid, household_gid, name, id_number, relation, phone, "
                         "categories FROM person ORDER BY gid").fetchall(),
            conn.execute("SELECT gid, status, lapsed, last_year_status FROM enrollment "
                         "ORDER BY gid").fetchall(),
            conn.execute("SELECT gid, date, reason FROM visit ORDER BY gid").fetchall())


def test_same_seed_same_county_in_or_out_of_process(tmp_path, demo):
    # The worker-process build and the in-process build give the same county.
    other = _build(tmp_path / "again.db", workers=True)
    try:
        assert _content(other) == _content(demo)
    finally:
        other.close()


def test_different_seed_different_county(tmp_path, demo):
    other = _build(tmp_path / "other.db", seed=8)
    try:
        assert _content(other)[0] != _content(demo)[0]
    finally:
        other.close()


def test_every_person_is_valid_and_consistent(demo):
    rows = demo.conn.execute("SELECT id_number, birth_date, sex FROM person").fetchall()
    assert len(rows) == 2000
    assert len({r[0] for r in rows}) == 2000
    for number, birth, sex in rows:
        assert idcard.is_valid(number)
        facts = idcard.facts(number)
        assert facts.birth_date.isoformat() == birth and facts.sex == sex
        assert number[:4] == "9999"  # made-up address codes: nobody's real number
        assert facts.birth_date <= TODAY


def test_households_are_realistic(demo):
    conn = demo.conn
    sizes = Counter(n for (n,) in conn.execute(
        "SELECT count(*) FROM person GROUP BY household_gid"))
    assert set(sizes) <= set(range(1, 9))
    assert sizes[1] and sizes[4]
    # Every household has exactly one head, and the household points at them.
    bad = conn.execute("""
        SELECT h.gid FROM household h
        WHERE (SELECT count(*) FROM person p WHERE p.household_gid=h.gid AND p.relation='head') != 1
           OR h.head_gid NOT IN (SELECT gid FROM person WHERE relation='head')""").fetchall()
    assert bad == []
    # Children are younger than their parent-generation head.
    ages = conn.execute("""
        SELECT hp.birth_date, p.birth_date FROM person p
        JOIN household h ON h.gid=p.household_gid JOIN person hp ON hp.gid=h.head_gid
        WHERE p.relation IN ('son', 'daughter')""").fetchall()
    assert ages and all(head < child for head, child in ages)


def test_progress_is_mid_campaign_and_varies_by_village(demo):
    from core.stats import status_counts

    villages = status_counts(demo.conn, 2027, "village")
    rates = [v.enrolled / v.total for v in villages if v.total]
    assert 0.15 < sum(rates) / len(rates) < 0.8
    if len(rates) > 1:
        assert max(rates) - min(rates) > 0.03
    statuses = Counter(dict(demo.conn.execute(
        "SELECT status, count(*) FROM enrollment GROUP BY status").fetchall()))
    assert statuses["unpaid"] and statuses["claimed"] and statuses["confirmed"]
    assert statuses["elsewhere"]
    special = demo.conn.execute(
        "SELECT count(*) FROM person WHERE categories IS NOT NULL").fetchone()[0]
    assert 0.03 < special / 2000 < 0.2
    assert demo.conn.execute("SELECT count(*) FROM visit").fetchone()[0] > 0
    assert demo.conn.execute("SELECT count(*) FROM target WHERE unit_code=?",
                             (COUNTY_CODE,)).fetchone()[0] == 1


def test_everything_is_in_the_change_log(demo):
    conn = demo.conn
    for table in ("unit", "household", "person", "enrollment", "visit", "target"):
        rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        logged = conn.execute("SELECT count(*) FROM change WHERE entity=? AND field='*'",
                              (table,)).fetchone()[0]
        assert rows == logged, table


def test_cancel_leaves_nothing(tmp_path):
    path = tmp_path / "cancelled.db"
    steps = build_demo_steps(path, 60_000, 1, today=TODAY, workers=False)
    next(steps)
    steps.close()
    assert list(tmp_path.iterdir()) == []


def test_only_the_step_after_the_file_is_in_place_is_final(tmp_path):
    path = tmp_path / "demo.db"
    seen = [(step.final, path.exists())
            for step in build_demo_steps(path, 50, 1, today=TODAY, workers=False)]
    assert seen[-1] == (True, True)
    assert all(final == there for final, there in seen)


def test_refuses_to_overwrite_and_bad_sizes(tmp_path):
    path = tmp_path / "x.db"
    path.write_text("keep me")
    with pytest.raises(ValidationError, match="--force"):
        next(build_demo_steps(path, 10))
    with pytest.raises(ValidationError, match="演示人数"):
        next(build_demo_steps(tmp_path / "y.db", 0))
    assert path.read_text() == "keep me"


@pytest.mark.parametrize("sent, outcome", [
    ([("rows", None), None], [("rows", None)]),   # it ended between the two looks
    ([], "演示数据生成进程意外退出"),   # it died without a word
])
def test_a_worker_found_ended_is_read_to_the_end_before_it_is_called_dead(monkeypatch, sent,
                                                                          outcome):
    """The queue stayed empty for a second, and by the time the builder asked
    whether the worker was alive it had ended."""
    import multiprocessing
    import queue as queue_mod

    from core import demo

    class Queue:
        def __init__(self, maxsize: int) -> None:
            self.items = [queue_mod.Empty, *sent]

        def get(self, timeout: float):
            item = self.items.pop(0) if self.items else queue_mod.Empty
            if item is queue_mod.Empty:
                raise queue_mod.Empty
            return item

        def close(self) -> None:
            pass

    class Process:
        def __init__(self, **kwargs) -> None:
            pass

        def start(self) -> None:
            pass

        def is_alive(self) -> bool:
            return False

        def join(self) -> None:
            pass

    class Context:
        pass

    Context.Queue, Context.Process = Queue, Process
    monkeypatch.setattr(multiprocessing, "get_context", lambda method: Context)
    rows = demo._rows_in_worker("node", {}, 10, 1, TODAY)
    if isinstance(outcome, list):
        assert list(rows) == outcome
    else:
        with pytest.raises(RuntimeError, match=outcome):
            list(rows)
