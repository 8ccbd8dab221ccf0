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


def test_import_masks_id_numbers_unless_asked(tmp_path, capsys):
    """`import` prints and saves its report with ID numbers masked (DESIGN §9);
    --full-id shows them whole, for fixing the source file."""
    import datetime as dt

    from openpyxl import Workbook, load_workbook

    from core import idcard
    from core.store import open_store

    db = str(tmp_path / "c.db")
    assert main.main(["demo", "--persons", "50", "--seed", "3", "--db", db]) == 0
    with open_store(db) as store:
        name, number = store.conn.execute(
            "SELECT name, id_number FROM person WHERE deleted=0 AND id_number IS NOT NULL "
            "LIMIT 1").fetchone()
    stranger = idcard.make("999901", dt.date(1990, 1, 1), 7)
    book = Workbook()
    book.active.append(["序号", "缴费人姓名", "证件号码", "缴费金额", "缴费日期"])
    book.active.append([1, name, number, 400, "2026-10-02"])
    book.active.append([2, "外乡人", stranger, 400, "2026-10-02"])
    path = tmp_path / "已缴费名单.xlsx"
    book.save(path)
    capsys.readouterr()

    assert main.main(["import", str(path), "--kind", "paid", "--preview", "5", "--db", db]) == 0
    out = capsys.readouterr().out
    assert idcard.mask(number) in out and number not in out and stranger not in out

    report = tmp_path / "报告.xlsx"
    assert main.main(["import", str(path), "--kind", "paid", "--report", str(report),
                      "--db", db]) == 0
    out = capsys.readouterr().out
    assert "更新 1" in out and "拒收 1" in out
    assert idcard.mask(stranger) in out and stranger not in out
    assert load_workbook(report)["导入报告"].cell(2, 6).value == idcard.mask(stranger)

    assert main.main(["import", str(path), "--kind", "paid", "--report", str(report),
                      "--full-id", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "本次没有任何改动" in out or "导入过" in out
    assert stranger in out
    assert load_workbook(report)["导入报告"].cell(2, 6).value == stranger


def ctrl_c_at(monkeypatch, final: bool) -> None:
    """Ctrl-C as the CLI prints the first step that is (or is not) final."""
    def printer(label):
        def report(step):
            if step.final == final:
                raise KeyboardInterrupt
        return report

    monkeypatch.setattr(main, "_progress_printer", printer)


def test_ctrl_c_undoes_an_import_until_it_is_saved(tmp_path, capsys, monkeypatch):
    """Before the commit Ctrl-C cancels it; once saved, the CLI says it came
    too late and prints the report, not "已取消"."""
    from openpyxl import Workbook

    from core.store import open_store

    db = str(tmp_path / "c.db")
    assert main.main(["demo", "--persons", "50", "--seed", "3", "--db", db]) == 0
    with open_store(db) as store:
        rows = store.conn.execute(
            "SELECT name, id_number FROM person WHERE deleted=0 AND id_number IS NOT NULL "
            "LIMIT 2").fetchall()
    book = Workbook()
    book.active.append(["序号", "缴费人姓名", "证件号码", "缴费金额", "缴费日期"])
    for k, (name, number) in enumerate(rows, 1):
        book.active.append([k, name, number, 400, "2026-10-02"])
    path = tmp_path / "已缴费名单.xlsx"
    book.save(path)

    def confirmed() -> int:
        with open_store(db) as store:
            return store.conn.execute(
                "SELECT count(*) FROM enrollment e JOIN person p ON e.person_gid = p.gid "
                "WHERE e.confirmed_date = '2026-10-02' AND p.id_number IN (?, ?)",
                [n for _, n in rows]).fetchone()[0]

    for at_final, code, said, count in ((False, 130, "已取消。", 0),
                                        (True, 0, "来不及取消，导入已保存。", 2)):
        ctrl_c_at(monkeypatch, final=at_final)
        capsys.readouterr()
        assert main.main(["import", str(path), "--kind", "paid", "--db", db]) == code
        out, err = capsys.readouterr()
        assert said in err and confirmed() == count
        assert ("更新 2" in out) == at_final


def test_ctrl_c_removes_a_file_being_written_but_not_one_in_place(tmp_path, capsys,
                                                                 monkeypatch):
    db = str(tmp_path / "c.db")
    assert main.main(["demo", "--persons", "50", "--seed", "3", "--db", db]) == 0
    for command, name in ((["export", "ledger"], "台账.xlsx"),
                          (["print", "cards", "--pages", "21"], "卡.pdf")):
        out = tmp_path / name
        for at_final, code, said in ((False, 130, "已取消。"),
                                     (True, 0, "来不及取消，文件已生成。")):
            ctrl_c_at(monkeypatch, final=at_final)
            capsys.readouterr()
            assert main.main([*command, "--out", str(out), "--db", db]) == code, name
            assert said in capsys.readouterr().err
            assert out.exists() == at_final
            assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
