"""Pinyin initials of names: common names, and every surname with a pinned reading."""

from __future__ import annotations

import pytest

from core.pinyin import (
    SURNAME_READINGS, char_initials, clean_name, given_initials, initials, split_surname,
)

# Written out by hand from the surnames' readings (not computed from the table),
# so a wrong entry in SURNAME_READINGS shows up here.
SURNAME_INITIALS: dict[str, tuple[str, ...]] = {
    # compound surnames
    "尉迟": ("yc",), "万俟": ("mq",), "长孙": ("zs",), "单于": ("cy",), "欧阳": ("oy",),
    "司马": ("sm",), "上官": ("sg",), "诸葛": ("zg",), "东方": ("df",), "皇甫": ("hf",),
    "公孙": ("gs",), "慕容": ("mr",), "宇文": ("yw",), "司徒": ("st",), "令狐": ("lh",),
    "澹台": ("tt",), "夏侯": ("xh",), "端木": ("dm",), "独孤": ("dg",), "轩辕": ("xy",),
    "呼延": ("hy",), "南宫": ("ng",), "西门": ("xm",), "百里": ("bl",),
    # single surnames read other than the everyday reading
    "曾": ("z",), "单": ("s",), "解": ("x",), "仇": ("q",), "区": ("o",), "查": ("z",),
    "覃": ("q",), "翟": ("z",), "盖": ("g",), "朴": ("p",), "尉": ("y", "w"), "乐": ("y", "l"),
    "缪": ("m",), "种": ("c",), "秘": ("b",), "召": ("s",), "黑": ("h",), "繁": ("p",),
    "员": ("y",), "折": ("s",), "任": ("r",), "沈": ("s",), "石": ("s",), "葛": ("g",),
    "华": ("h",), "相": ("x",), "隗": ("w",), "句": ("g",), "过": ("g",), "便": ("p",),
    "宿": ("s",), "燕": ("y",), "佴": ("n",), "祭": ("z",), "卜": ("b",), "薄": ("b",),
    "柏": ("b",), "都": ("d",), "重": ("c",), "纪": ("j",), "厍": ("s",), "阚": ("k",),
    "藏": ("z",), "臧": ("z",), "贲": ("b",), "冼": ("x",), "洗": ("x",), "蕃": ("p",),
    "能": ("n",), "应": ("y",), "朝": ("c",), "睢": ("s",), "粘": ("n",), "长": ("c",),
    "车": ("c",), "行": ("x",), "莘": ("s",), "率": ("s",),
}

# The everyday reading's initial, which must NOT be used for these surnames.
WRONG_INITIAL = {
    "曾": "c", "单": "d", "解": "j", "仇": "c", "区": "q", "查": "c", "覃": "t", "翟": "d",
    "种": "z", "秘": "m", "召": "z", "繁": "f", "折": "z", "隗": "k", "便": "b",
    "祭": "j", "重": "z", "藏": "c", "蕃": "f", "朝": "z",
    "长": "z", "车": "j", "行": "h", "莘": "x", "率": "l", "单于": "d", "长孙": "c",
    "万俟": "w", "澹台": "d", "尉迟": "w",
}


def test_every_pinned_surname_is_covered():
    assert set(SURNAME_INITIALS) == set(SURNAME_READINGS)


@pytest.mark.parametrize("surname", sorted(SURNAME_READINGS))
def test_pinned_surname_initials(surname):
    heads = SURNAME_INITIALS[surname]
    # given name 明 (míng, one reading): the surname decides every variant
    assert initials(surname + "明") == tuple(h + "m" for h in heads)
    assert initials(surname + "小明") == tuple(h + "xm" for h in heads)
    assert given_initials(surname + "小明") == ("xm",)


@pytest.mark.parametrize("surname", sorted(WRONG_INITIAL))
def test_everyday_reading_not_used_for_surname(surname):
    wrong = WRONG_INITIAL[surname]
    assert not any(v.startswith(wrong) for v in initials(surname + "小明"))


@pytest.mark.parametrize("surname", sorted(s for s in SURNAME_READINGS if len(s) == 2))
def test_compound_surnames_split(surname):
    assert split_surname(surname + "明") == (surname, "明")
    assert split_surname(surname + "小明") == (surname, "小明")
    # two characters alone are surname + given name, not a compound surname
    assert split_surname(surname) == (surname[0], surname[1])


@pytest.mark.parametrize("name,expected", [
    ("张秀英", "zxy"), ("王芳", "wf"), ("李娜", "ln"), ("刘洋", "ly"), ("陈静", "cj"),
    ("杨伟", "yw"), ("黄丽", "hl"), ("赵磊", "zl"), ("周杰", "zj"), ("吴敏", "wm"),
    ("徐秀梅", "xxm"), ("孙建华", "sjh"), ("马超", "mc"), ("朱军", "zj"), ("胡敏", "hm"),
    ("郭靖", "gj"), ("何平", "hp"), ("林峰", "lf"), ("罗玉兰", "lyl"), ("高飞", "gf"),
    ("韦春梅", "wcm"), ("覃志强", "qzq"), ("蒙秀英", "mxy"), ("莫海峰", "mhf"),
    ("陆建国", "ljg"), ("廖德福", "ldf"), ("潘文斌", "pwb"), ("邓超", "dc"),
    ("曾小明", "zxm"), ("单田芳", "stf"), ("尉迟恭", "ycg"), ("尉迟敬德", "ycjd"),
    ("欧阳娜娜", "oynn"), ("诸葛亮", "zgl"), ("司马光", "smg"), ("上官婉儿", "sgwe"),
])
def test_common_names_likeliest_first(name, expected):
    variants = initials(name)
    assert variants[0] == expected
    # one lower-case letter per character, whatever the variant
    assert all(v.isascii() and v.isalpha() and v.islower() and len(v) == len(name)
               for v in variants)


@pytest.mark.parametrize("name,expected", [
    ("张秀英", ("xy",)), ("单田芳", ("tf",)), ("尉迟敬德", ("jd",)), ("欧阳娜娜", ("nn",)),
    ("王", ()), ("", ()),
])
def test_given_initials(name, expected):
    assert given_initials(name) == expected


def test_polyphonic_given_name_indexes_every_reading():
    assert set(initials("张乐")) == {"zl", "zy"}
    assert set(given_initials("张乐")) == {"l", "y"}


def test_variants_are_bounded():
    from core.pinyin import MAX_VARIANTS

    # 乐 as a surname reads yue or le: each reading keeps at most MAX_VARIANTS.
    assert 1 <= len(initials("乐长乐行朝")) <= 2 * MAX_VARIANTS


def test_minority_name_separators():
    assert clean_name("买买提·艾力") == "买买提艾力"
    assert clean_name("阿依古丽•买买提") == "阿依古丽买买提"
    assert initials("买买提·艾力")[0] == "mmtal"
    assert initials("买买提·艾力") == initials("买买提艾力")


def test_edge_inputs():
    assert initials("") == ()
    assert given_initials("·") == ()
    assert char_initials("·") == ()
    assert char_initials("A") == ("a",)
    assert char_initials("7") == ("7",)
    assert initials("Tom")[0] == "tom"


def test_second_surname_reading_survives_polyphonic_given_name():
    assert any(v.startswith("w") for v in initials("尉长乐"))
