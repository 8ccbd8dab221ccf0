"""The command line calls the same core functions as the GUI."""

from __future__ import annotations

import main


def test_demo_info_search(tmp_path, capsys):
    db = str(tmp_path / "c.db")
    assert main.main(["demo", "--persons", "600", "--seed", "5", "--db", db]) == 0
    assert "600" in capsys.readouterr().out

    assert main.main(["--db", db, "info", "--level", "township"]) == 0
    out = capsys.readouterr().out
    assert "示范县" not in out.splitlines()[-1]  # rows are townships, not the county
    assert "总人数" in out and "人 600" in out

    from core.store import open_store

    with open_store(db) as store:
        name = store.conn.execute("SELECT name FROM person LIMIT 1").fetchone()[0]
    assert main.main(["search", name, "--db", db]) == 0
    out = capsys.readouterr().out
    assert name in out and "**********" in out  # ID numbers masked by default


def test_demo_refuses_to_overwrite_without_force(tmp_path, capsys):
    db = str(tmp_path / "c.db")
    assert main.main(["demo", "--persons", "50", "--db", db]) == 0
    capsys.readouterr()
    assert main.main(["demo", "--persons", "50", "--db", db]) == 2
    assert "--force" in capsys.readouterr().err


def test_not_a_ledger_gives_a_chinese_error(tmp_path, capsys):
    junk = tmp_path / "名单.xlsx"
    junk.write_bytes(b"PK\x03\x04 not a database")
    assert main.main(["info", "--db", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("错误：")
    assert junk.read_bytes() == b"PK\x03\x04 not a database"


def test_search_without_match(tmp_path, capsys):
    db = str(tmp_path / "c.db")
    main.main(["demo", "--persons", "50", "--db", db])
    capsys.readouterr()
    assert main.main(["search", "不存在的名字", "--db", db]) == 1
    assert "没有找到" in capsys.readouterr().out
