"""Printed material: the right Chinese is in the PDFs, fonts are embedded,
pages come out as expected, and lines never start with closing punctuation."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from core.demo import build_demo_steps
from core.errors import ValidationError
from core.printing import documents as docs
from core.printing import fonts
from core.store import open_store

YEAR = 2027


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    path = tmp_path_factory.mktemp("print") / "county.db"
    for _ in build_demo_steps(path, 1200, seed=11, today=dt.date(2026, 11, 23), workers=False):
        pass
    store = open_store(path)
    yield store
    store.close()


def run(gen):
    for step in gen:
        pass
    return step


def text_of(path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def embedded_fonts(path) -> set[str]:
    names = set()
    for page in PdfReader(path).pages:
        for font in (page.get("/Resources", {}).get("/Font", {}) or {}).values():
            font = font.get_object()
            for desc_font in font.get("/DescendantFonts", [font]):
                d = desc_font.get_object().get("/FontDescriptor")
                if d is not None and ("/FontFile2" in d.get_object()):
                    names.add(str(font["/BaseFont"]))
    return names


def test_font_is_found_and_embedded_as_subset(county, tmp_path):
    choice = fonts.register()
    assert choice.path.exists()
    out = tmp_path / "n.pdf"
    group = county.conn.execute("SELECT gid FROM unit WHERE level='group' LIMIT 1").fetchone()[0]
    run(docs.notices(county.conn, out, year=YEAR, unit=group))
    names = embedded_fonts(out)
    assert names and all(re.match(r"/[A-Z]{6}\+", n) for n in names)  # subset prefix


def test_no_font_gives_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setattr(fonts, "_registered", None)
    monkeypatch.setattr(fonts, "candidates", lambda configured=None: [tmp_path / "none.ttf"])
    with pytest.raises(fonts.FontNotFoundError, match="fonts-wqy-zenhei"):
        fonts.register()


def test_postscript_outline_fonts_are_skipped(monkeypatch, tmp_path):
    otf = tmp_path / "NotoSansCJK-Regular.otf"
    otf.write_bytes(b"OTTO" + b"\0" * 64)
    monkeypatch.setattr(fonts, "_registered", None)
    monkeypatch.setattr(fonts, "candidates", lambda configured=None: [otf])
    with pytest.raises(fonts.FontNotFoundError, match="PostScript"):
        fonts.register()


def test_notices_show_members_amounts_deadline(county, tmp_path):
    conn = county.conn
    group = conn.execute(
        "SELECT e.group_code FROM enrollment e WHERE e.status='unpaid' LIMIT 1").fetchone()[0]
    out = tmp_path / "notices.pdf"
    run(docs.notices(conn, out, year=YEAR, unit=group,
                     settings={"payment_link": "https://example.invalid/pay",
                               "contact_phone": "0771-0000000"}))
    expected = docs.household_gids(conn, group, unpaid_only=True, year=YEAR)
    pages = text_of(out)
    assert len(pages) == len(expected)
    first = pages[0]
    head = conn.execute("SELECT p.name FROM household h JOIN person p ON p.gid = h.head_gid "
                        "WHERE h.gid=?", (expected[0],)).fetchone()[0]
    assert head in first
    assert "缴费告知书" in first and "2026年12月31日" in first and "400元" in first
    assert "扫码缴费" in first and "0771-0000000" in first and "等待期" in first
    number = conn.execute("SELECT id_number FROM person WHERE gid=(SELECT head_gid FROM household "
                          "WHERE gid=?)", (expected[0],)).fetchone()[0]
    assert number not in first and number[-4:] in first  # masked
    assert "第 1 页" in first


def test_notice_owed_respects_subsidies(county, tmp_path):
    conn = county.conn
    policy = docs.load_policy(YEAR)
    row = conn.execute("SELECT p.household_gid, p.gid FROM person p JOIN enrollment e ON "
                       "e.person_gid=p.gid WHERE e.subsidy_kind='full' AND e.status="
                       "'subsidy_pending' LIMIT 1").fetchone()
    if row is None:
        pytest.skip("no pending full subsidy in this demo")
    h = docs.load_households(conn, [row[0]], YEAR, policy)[0]
    member = next(m for m in h.members if "全额资助" in m.note)
    assert member.owes == 0


def test_full_id_only_when_asked(county, tmp_path):
    conn = county.conn
    hgid = docs.household_gids(conn, None, unpaid_only=True, year=YEAR)[0]
    number = conn.execute("SELECT id_number FROM person WHERE household_gid=? LIMIT 1",
                          (hgid,)).fetchone()[0]
    out = tmp_path / "full.pdf"
    run(docs.notices(conn, out, year=YEAR, households=[hgid], full_id=True))
    assert number in text_of(out)[0]


def test_forms_prefilled_and_blank(county, tmp_path):
    conn = county.conn
    group = conn.execute("SELECT gid FROM unit WHERE level='group' LIMIT 1").fetchone()[0]
    out = tmp_path / "forms.pdf"
    run(docs.forms(conn, out, year=YEAR, unit=group))
    pages = text_of(out)
    assert len(pages) == len(docs.household_gids(conn, group, unpaid_only=True, year=YEAR))
    assert "入户动员登记表" in pages[0] and "签字" in pages[0] and "外出务工联系难" in pages[0]
    blank = tmp_path / "blank.pdf"
    run(docs.forms(conn, blank, year=YEAR, blank=3))
    assert len(text_of(blank)) == 3 and "户号" in text_of(blank)[0]


@pytest.mark.parametrize("per_page", [2, 4, 8])
def test_cards(per_page, tmp_path):
    out = tmp_path / f"cards{per_page}.pdf"
    run(docs.cards(out, year=YEAR, per_page=per_page, pages=2))
    pages = text_of(out)
    assert len(pages) == 2
    assert "政策明白卡" in pages[0] and "沿虚线剪开" in pages[0]
    qa = docs.load_policy(YEAR)["qa"]
    assert qa[0]["q"] in pages[0]


def test_large_cards_keep_their_size(tmp_path):
    out = tmp_path / "large.pdf"
    run(docs.cards(out, year=YEAR, per_page=8, large=True))
    text = text_of(out)[0]
    qa = docs.load_policy(YEAR)["qa"]
    assert qa[0]["q"] in text
    # Large type leaves later questions off rather than shrinking the print.
    assert qa[-1]["q"] not in text


def test_unpaid_list_repeats_header_across_pages(county, tmp_path):
    conn = county.conn
    village = conn.execute("SELECT gid FROM unit WHERE level='village' LIMIT 1").fetchone()[0]
    out = tmp_path / "list.pdf"
    run(docs.unpaid_list(conn, out, year=YEAR, unit=village))
    pages = text_of(out)
    assert "未缴费名单" in pages[0]
    multi = [p for p in pages if "未缴费名单" not in p]  # continuation pages of a group
    assert multi, "expected a group's list to run over a page"
    assert all("户号" in p and "身份证号" in p for p in multi)


def test_cancel_leaves_no_file(county, tmp_path):
    out = tmp_path / "cancel.pdf"
    gen = docs.notices(county.conn, out, year=YEAR, unpaid_only=False)
    next(gen)
    gen.close()
    assert list(tmp_path.iterdir()) == []


def test_bad_output_name(county, tmp_path):
    with pytest.raises(ValidationError, match=".pdf"):
        run(docs.notices(county.conn, tmp_path / "x.docx", year=YEAR))


CLOSING = "，。、；：？！）」』》】〕"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(list("参保缴费医疗报销等待期政策") + list(CLOSING)), min_size=20,
                max_size=160), st.integers(min_value=60, max_value=300))
def test_no_line_starts_with_closing_punctuation(chars, width):
    Paragraph = docs._paragraph_class()

    text = "".join(chars).lstrip(CLOSING)
    if not text:
        return
    style = docs._styles()["body"]
    para = Paragraph(text, style)
    para.wrap(width, 10_000)
    lines = ["".join(w for w in (getattr(line, "words", None) or []) if isinstance(w, str))
             if not isinstance(line, tuple) else "".join(line[1]) for line in para.blPara.lines]
    for line in lines[1:]:
        if line:
            assert line[0] not in CLOSING, (text, width, lines)


def test_every_printed_character_has_a_glyph(county, tmp_path):
    """A character the font lacks prints as nothing (the ☐ ballot box did):
    every character in the documents must be in the embedded font."""
    from reportlab.pdfbase.pdfmetrics import getFont

    cmap = getFont(fonts.register().name).face.charToGlyph
    conn = county.conn
    group = conn.execute("SELECT gid FROM unit WHERE level='group' LIMIT 1").fetchone()[0]
    outs = [tmp_path / f"{n}.pdf" for n in ("n", "f", "b", "c", "l")]
    run(docs.notices(conn, outs[0], year=YEAR, unit=group,
                     settings={"payment_link": "https://example.invalid/pay"}))
    run(docs.forms(conn, outs[1], year=YEAR, unit=group))
    run(docs.forms(conn, outs[2], year=YEAR, blank=1))
    run(docs.cards(outs[3], year=YEAR, per_page=2))
    run(docs.unpaid_list(conn, outs[4], year=YEAR, unit=group))
    missing = {ch for out in outs for page in text_of(out) for ch in page
               if not ch.isspace() and ord(ch) not in cmap}
    assert not missing, missing


def test_cancel_while_the_pdf_is_written(county, tmp_path):
    """reportlab writes in one call; the per-page check is how a cancel gets in."""
    class Stop(Exception):
        pass

    pages = []

    def check():
        pages.append(1)
        if len(pages) > 3:
            raise Stop

    out = tmp_path / "stopped.pdf"
    with pytest.raises(Stop):
        run(docs.notices(county.conn, out, year=YEAR, unpaid_only=False, check=check))
    assert list(tmp_path.iterdir()) == []


def test_long_names_wrap_inside_their_cell(county, tmp_path):
    from core.ledger import Ledger

    conn = county.conn
    hgid = docs.household_gids(conn, None, unpaid_only=True, year=YEAR)[0]
    person = conn.execute("SELECT gid FROM person WHERE household_gid=? LIMIT 1",
                          (hgid,)).fetchone()[0]
    Ledger(county, operator="t").edit_person(person, name="阿卜杜热合曼·买买提明")
    out = tmp_path / "long.pdf"
    run(docs.notices(conn, out, year=YEAR, households=[hgid]))
    text = text_of(out)[0].replace("\n", "")
    assert "阿卜杜热合曼·买买提明" in text or "阿卜杜热合曼·买买" in text


def test_rare_characters_the_font_lacks_are_reported(county, tmp_path):
    from core.ledger import Ledger

    conn = county.conn
    hgid = docs.household_gids(conn, None, unpaid_only=True, year=YEAR)[1]
    person = conn.execute("SELECT gid FROM person WHERE household_gid=? LIMIT 1",
                          (hgid,)).fetchone()[0]
    Ledger(county, operator="t").edit_person(person, name="王\U0002B5AF")  # 𫖯
    steps = list(docs.notices(conn, tmp_path / "rare.pdf", year=YEAR, households=[hgid]))
    assert "字体里没有的字" in steps[-1].message and "王" in steps[-1].message
    # Such names can be entered and found at all (CJK Extension B).
    from core.search import search

    pid = conn.execute("SELECT id FROM person WHERE gid=?", (person,)).fetchone()[0]
    assert pid in search(conn, "王\U0002B5AF").ids


def test_only_the_step_after_the_pdf_is_in_place_is_final(county, tmp_path):
    """A cancel that reaches the GUI at a final step is too late: the file is there."""
    conn = county.conn
    group = conn.execute("SELECT gid FROM unit WHERE level='group' LIMIT 1").fetchone()[0]
    outs = [tmp_path / f"{n}.pdf" for n in ("n", "f", "c", "l")]
    for out, steps in zip(outs, (docs.notices(conn, outs[0], year=YEAR, unit=group),
                                 docs.forms(conn, outs[1], year=YEAR, unit=group),
                                 docs.cards(outs[2], year=YEAR, per_page=2),
                                 docs.unpaid_list(conn, outs[3], year=YEAR, unit=group))):
        seen = [(step.final, out.exists()) for step in steps]
        assert seen[-1] == (True, True), out.name
        assert all(final == there for final, there in seen), out.name
