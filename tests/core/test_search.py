"""Person search: name fragments, ID and phone fragments, pinyin initials, filters."""

from __future__ import annotations

import re
import sqlite3

import pytest

from core.errors import ValidationError
from core.ledger import Ledger
from core.pinyin import clean_name
from core.search import search
from core.store import open_store
from tests.core.factories import (
    G111, G112, G121, G211, T1, T2, V11, V12, V21, Builder, build_county, make_id, make_phone,
    row,
)

# (key, name, group, household key). Keys are 1-based like the person ids they get.
PEOPLE = [
    (1, "张秀英", G111, "a"), (2, "李建华", G111, "a"), (3, "张伟", G111, "a"),
    (4, "张秀兰", G111, "b"), (5, "王芳", G111, "b"),
    (6, "李秀英", G111, "c"), (7, "刘洋", G111, "c"),
    (8, "曾小明", G112, "d"), (9, "单田芳", G112, "d"), (10, "解晓东", G112, "d"),
    (11, "仇建国", G112, "e"), (12, "区志刚", G112, "e"),
    (13, "查海波", G121, "f"), (14, "覃春梅", G121, "f"), (15, "翟玉兰", G121, "f"),
    (16, "盖丽娟", G121, "g"), (17, "朴英杰", G121, "g"), (18, "尉迟敬德", G121, "g"),
    (19, "欧阳娜娜", G121, "h"), (20, "买买提·艾力", G121, "h"),
    (21, "张秀英", G211, "i"), (22, "陈静", G211, "i"), (23, "杨伟", G211, "i"),
    (24, "黄丽", G211, "j"), (25, "赵磊", G211, "j"), (26, "周杰", G211, "j"),
    (27, "吴敏", G211, "k"), (28, "徐秀梅", G211, "k"), (29, "孙丽", G211, "k"),
    (30, "马超", G211, "l"), (31, "朱军", G211, "l"), (32, "胡敏", G211, "l"),
    (33, "郭靖", G211, "l"),
    (34, "林峰", G112, "m"), (35, "罗兰", G112, "m"), (36, "高飞", G112, "m"),
    (37, "梁静", G112, "n"), (38, "郑洁", G112, "n"),
    (39, "谢婷", G111, "o"), (40, "宋佳", G111, "o"),
    (41, "唐颖", G121, "p"), (42, "韦欣", G121, "p"),
]
NAMES = {k: name for k, name, _, _ in PEOPLE}
GROUP = {k: group for k, _, group, _ in PEOPLE}

SPECIAL_PHONE = {5: "13812345678", 20: "0773-1234567", 33: None}
X_ID = 7  # this person's ID ends in X


def id_of(k: int) -> str:
    return make_id(900 + k, check="X") if k == X_ID else make_id(k)


def phone_of(k: int) -> str | None:
    return SPECIAL_PHONE.get(k, make_phone(k))


class County:
    def __init__(self, store) -> None:
        self.ledger = Ledger(store, operator="测试员")
        self.conn = store.conn
        build_county(self.ledger)
        b = Builder(self.ledger)
        households: dict[str, str] = {}
        self.gid: dict[int, str] = {}
        self.key: dict[int, int] = {}  # person.id → key
        with self.ledger.batch():
            for k, name, group, hkey in PEOPLE:
                if hkey not in households:
                    households[hkey] = b.household(group)
                gid = self.ledger.add_person(households[hkey], name=name,
                                             id_number=id_of(k), phone=phone_of(k))
                self.gid[k] = gid
                self.key[row(self.conn, "person", gid)["id"]] = k
        self.households = households

    def find(self, query: str, **kwargs) -> set[int]:
        return set(self.keys(query, **kwargs))

    def keys(self, query: str, **kwargs) -> list[int]:
        result = search(self.conn, query, **kwargs)
        assert not result.more
        return [self.key[i] for i in result.ids]


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> County:
    """Shared by the read-only tests of this module; tests that write use `fresh`."""
    store = open_store(tmp_path_factory.mktemp("search") / "ledger.db")
    yield County(store)
    store.close()


@pytest.fixture
def fresh(store) -> County:
    return County(store)


def oracle_digits(fragment: str) -> set[int]:
    return {k for k in NAMES if fragment in id_of(k) or fragment in (phone_of(k) or "")}


def oracle_name(fragment: str) -> set[int]:
    return {k for k, name in NAMES.items() if fragment in clean_name(name)}


# ---------------------------------------------------------------------------
# Names


def test_population(county):
    assert len(county.gid) == len(PEOPLE) == 42
    assert county.conn.execute("SELECT count(*) FROM search_grams").fetchone()[0] == 42


@pytest.mark.parametrize("query,expected", [
    ("张", {1, 3, 4, 21}),
    ("秀", {1, 4, 6, 21, 28}),
    ("丽", {16, 24, 29}),
    ("静", {22, 37}),
    ("秀英", {1, 6, 21}),
    ("建国", {11}),
    ("张秀英", {1, 21}),
    ("张秀兰", {4}),
    ("欧阳娜娜", {19}),
    ("尉迟敬德", {18}),
    ("迟敬德", {18}),
    ("张英", set()),        # not contiguous
    ("秀英张", set()),
    ("英秀", set()),
    ("钱", set()),
])
def test_name_fragments(county, query, expected):
    assert county.find(query) == expected


@pytest.mark.parametrize("fragment", ["李", "伟", "敏", "华", "秀英", "娜娜", "丽娟", "李秀英",
                                      "阳娜娜", "买买提", "艾力", "买买"])
def test_name_fragments_match_plain_substring(county, fragment):
    assert county.find(fragment) == oracle_name(fragment)
    assert oracle_name(fragment)  # the fragment does occur


def test_results_come_in_entry_order(county):
    result = search(county.conn, "张")
    assert result.ids == sorted(result.ids)
    assert [county.key[i] for i in result.ids] == [1, 3, 4, 21]


@pytest.mark.parametrize("query", ["买买提·艾力", "买买提艾力", "提艾力"])
def test_minority_name_with_separator(county, query):
    assert county.find(query) == {20}


# ---------------------------------------------------------------------------
# Digits: ID numbers and phones


def test_whole_id(county):
    for k in (1, 18, 42):
        assert county.find(id_of(k)) == {k}


def test_partial_id_from_the_middle(county):
    for k in (2, 13, 30):
        fragment = id_of(k)[5:13]  # 8 digits: part of the address code and the birth date
        assert county.find(fragment) == oracle_digits(fragment) == {k}


def test_id_ending_in_x_lowercase(county):
    number = id_of(X_ID)
    assert number.endswith("X")
    assert county.find(number.lower()) == {X_ID}
    assert county.find(number[-6:].lower()) == oracle_digits(number[-6:]) == {X_ID}


def test_full_width_and_spaced_digits(county):
    number = id_of(9)
    full_width = "".join(chr(ord(ch) - ord("0") + ord("０")) for ch in number[6:14])
    assert county.find(full_width) == {9}
    assert county.find(f"{number[:6]} {number[6:]}") == oracle_digits(number[6:]) == {9}


def test_phone_fragments(county):
    assert county.find("5678") == oracle_digits("5678") == {5}
    assert county.find("13812345678") == {5}
    for k in (11, 26):
        fragment = make_phone(k)[-4:]
        assert k in county.find(fragment)
        assert county.find(fragment) == oracle_digits(fragment)
    assert county.find("1234567") == oracle_digits("1234567") == {5, 20}  # landline too


@pytest.mark.parametrize("query", ["0773-1234567", "07731234567"])
def test_landline_as_written(county, query):
    assert county.find(query) == {20}


@pytest.mark.parametrize("query", ["12", "7", "１２"])
def test_too_few_digits(county, query):
    with pytest.raises(ValidationError, match="至少输入3位数字"):
        search(county.conn, query)


# ---------------------------------------------------------------------------
# Pinyin initials


@pytest.mark.parametrize("query,expected", [
    ("zxy", {1, 21}), ("ZXY", {1, 21}), ("zx", {1, 4, 8, 21}), ("zxl", {4}),
    ("xy", {1, 6, 21}),          # given name only
    ("lxy", {6}), ("oynn", {19}), ("mmtal", {20}), ("zw", {3}),
])
def test_pinyin_initials(county, query, expected):
    assert county.find(query) == expected


@pytest.mark.parametrize("name,right,wrong", [
    ("曾小明", "zxm", "cxm"),
    ("单田芳", "stf", "dtf"),
    ("解晓东", "xxd", "jxd"),
    ("仇建国", "qjg", "cjg"),
    ("区志刚", "ozg", "qzg"),
    ("查海波", "zhb", "chb"),
    ("覃春梅", "qcm", "tcm"),
    ("翟玉兰", "zyl", "dyl"),
    ("盖丽娟", "glj", None),     # gě and gài share the initial
    ("朴英杰", "pyj", None),     # piáo and pǔ share the initial
    ("尉迟敬德", "ycjd", "wcjd"),
])
def test_polyphonic_surnames(county, name, right, wrong):
    [k] = [k for k, n in NAMES.items() if n == name]
    assert county.find(right) == {k}
    assert county.find(right[:2]) >= {k}  # prefixes are indexed too
    if wrong:
        assert county.find(wrong) == set()


# ---------------------------------------------------------------------------
# Several terms, limits and filters


@pytest.mark.parametrize("query,expected", [
    ("张 秀", {1, 4, 21}),
    ("张  秀英", {1, 21}),
    ("秀英，zxy", {1, 21}),
    ("秀 丽", set()),
    ("zxy " + make_phone(21)[-4:], {21}),
    (make_phone(21)[-4:] + " zxy", {21}),
    ("张 " + id_of(4)[6:14], {4}),
    ("李 秀英 lxy", {6}),
])
def test_terms_are_anded(county, query, expected):
    assert county.find(query) == expected


def test_limit_and_more(county):
    first = search(county.conn, "张", limit=2)
    assert [county.key[i] for i in first.ids] == [1, 3]
    assert first.more is True
    three = search(county.conn, "张", limit=3)
    assert len(three.ids) == 3 and three.more is True
    exact = search(county.conn, "张", limit=4)
    assert len(exact.ids) == 4 and exact.more is False
    roomy = search(county.conn, "张", limit=50)
    assert len(roomy.ids) == 4 and roomy.more is False
    assert roomy.query == "张"


@pytest.mark.parametrize("unit,expected", [
    (None, {1, 6, 21}), (T1, {1, 6}), (T2, {21}), (V11, {1, 6}), (V12, set()), (V21, {21}),
    (G111, {1, 6}), (G112, set()), (G211, {21}),
])
def test_unit_code_restricts(county, unit, expected):
    assert county.find("秀英", unit_code=unit) == expected


def test_unit_code_with_digits_and_pinyin(county):
    assert county.find("zx", unit_code=G112) == {8}
    assert county.find(id_of(13)[6:14], unit_code=G121) == {13}
    assert county.find(id_of(13)[6:14], unit_code=G111) == set()


# ---------------------------------------------------------------------------
# The index follows edits


def test_rename_refreshes_index(fresh):
    fresh.ledger.edit_person(fresh.gid[3], name="张卫东")
    assert fresh.find("张伟") == set()
    assert fresh.find("伟") == {23}
    assert fresh.find("卫东") == {3}
    assert fresh.find("张卫东") == {3}
    assert fresh.find("zwd") == {3}
    assert fresh.find("张") == {1, 3, 4, 21}


def test_id_and_phone_edits_refresh_index(fresh):
    old_id, old_phone = id_of(12), phone_of(12)
    new_id = make_id(1500)
    fresh.ledger.edit_person(fresh.gid[12], id_number=new_id, phone="13799998888")
    assert fresh.find(old_id) == set()
    assert fresh.find(old_phone) == set()
    assert fresh.find(new_id) == {12}
    assert fresh.find("9988") == {12}


def test_delete_removes_from_index(fresh):
    fresh.ledger.delete_person(fresh.gid[1])
    assert fresh.find("张秀英") == {21}
    assert fresh.find(id_of(1)) == set()
    assert fresh.find("zxy") == {21}


def test_move_changes_unit_filter(fresh):
    fresh.ledger.move_person(fresh.gid[6], fresh.households["i"])
    assert fresh.find("秀英", unit_code=V11) == {1}
    assert fresh.find("秀英", unit_code=V21) == {6, 21}


def test_added_person_is_found_at_once(fresh):
    gid = fresh.ledger.add_person(fresh.households["a"], name="张秀英", id_number=make_id(1600))
    new_id = row(fresh.conn, "person", gid)["id"]
    result = search(fresh.conn, "张秀英", unit_code=G111)
    assert set(result.ids) == {new_id, row(fresh.conn, "person", fresh.gid[1])["id"]}


# ---------------------------------------------------------------------------
# Odd queries


@pytest.mark.parametrize("query", ["", "   ", "\t\n", " ，; ", "　"])
def test_empty_query_finds_nothing(county, query):
    result = search(county.conn, query)
    assert result.ids == [] and result.more is False


@pytest.mark.parametrize("query", ["OR", "AND", "NOT", "NEAR", "or", "张 OR", "秀英 OR 张",
                                   "zxy AND", "张 NOT"])
def test_fts_keywords_are_plain_terms(county, query):
    # quoted as literals: 'OR' is the initials "or", which nobody has, and terms are ANDed
    assert search(county.conn, query).ids == []


@pytest.mark.parametrize("query", ['"', "*", "(", ")", '"张"', "张*", "(张)", "zx*", "张 (",
                                   "NEAR(张 秀)", "-", "^张", ":", "'", '1234"5678', "139*",
                                   "{张}", "张:秀"])
def test_fts_special_characters_never_break_sqlite(county, query):
    """Such input either searches or is refused with a Chinese message; never an SQL error."""
    try:
        result = search(county.conn, query)
    except ValidationError as exc:
        assert re.search(r"[\u4e00-\u9fff]", str(exc))
    except sqlite3.Error as exc:  # pragma: no cover - this is the failure
        pytest.fail(f"{query!r} broke the FTS query: {exc}")
    else:
        assert isinstance(result.ids, list)


def test_unrecognised_query_message(county):
    with pytest.raises(ValidationError, match="无法识别的查找内容"):
        search(county.conn, "张*")
