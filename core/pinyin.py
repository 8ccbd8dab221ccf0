"""Pinyin initials of personal names, for search (张秀英 → zxy).

pypinyin reads characters as common words, which gets many surnames wrong
(曾 ceng, 单 dan, 解 jie …). Surnames are therefore read from our own table
first, compound surnames before single ones; the given name goes through
pypinyin. Where a given-name character has several readings (乐 le/yue), every
reading is indexed, so whichever one the user types is found.
"""

from __future__ import annotations

import functools
import itertools

from pypinyin import Style, pinyin

# Surnames whose reading differs from the character's everyday reading, or is
# worth pinning. Values are full pinyin readings, syllables separated by spaces.
SURNAME_READINGS: dict[str, tuple[str, ...]] = {
    # compound surnames (复姓), syllables separated by a space
    "尉迟": ("yu chi",), "万俟": ("mo qi",), "长孙": ("zhang sun",), "单于": ("chan yu",),
    "欧阳": ("ou yang",), "司马": ("si ma",), "上官": ("shang guan",), "诸葛": ("zhu ge",),
    "东方": ("dong fang",), "皇甫": ("huang fu",), "公孙": ("gong sun",), "慕容": ("mu rong",),
    "宇文": ("yu wen",), "司徒": ("si tu",), "令狐": ("ling hu",), "澹台": ("tan tai",),
    "夏侯": ("xia hou",), "端木": ("duan mu",), "独孤": ("du gu",), "轩辕": ("xuan yuan",),
    "呼延": ("hu yan",), "南宫": ("nan gong",), "西门": ("xi men",), "百里": ("bai li",),
    # single surnames read differently from the everyday reading
    "曾": ("zeng",), "单": ("shan",), "解": ("xie",), "仇": ("qiu",), "区": ("ou",),
    "查": ("zha",), "覃": ("qin",), "翟": ("zhai",), "盖": ("ge",), "朴": ("piao",),
    "尉": ("yu", "wei"), "乐": ("yue", "le"), "缪": ("miao",), "种": ("chong",),
    "秘": ("bi",), "召": ("shao",), "黑": ("he",), "繁": ("po",), "员": ("yun",),
    "折": ("she",), "任": ("ren",), "沈": ("shen",), "石": ("shi",), "葛": ("ge",),
    "华": ("hua",), "相": ("xiang",), "隗": ("wei",), "句": ("gou",), "过": ("guo",),
    "便": ("pian",), "宿": ("su",), "燕": ("yan",), "佴": ("nai",), "祭": ("zhai",),
    "卜": ("bu",), "薄": ("bo",), "柏": ("bai",), "都": ("du",), "重": ("chong",),
    "纪": ("ji",), "厍": ("she",), "阚": ("kan",), "藏": ("zang",), "臧": ("zang",),
    "贲": ("ben",), "冼": ("xian",), "洗": ("xian",), "蕃": ("pi",), "能": ("nai",),
    "应": ("ying",), "朝": ("chao",), "睢": ("sui",), "粘": ("nian",), "长": ("chang",),
    "车": ("che",), "行": ("xing",), "莘": ("shen",), "率": ("shuai",),
}

MAX_VARIANTS = 4
SEPARATORS = "·•・.． "


def _is_cjk(ch: str) -> bool:
    return ("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"
            or "\U00020000" <= ch <= "\U0003134f")


def clean_name(name: str) -> str:
    """Name without the separators used in minority names (买买提·艾力)."""
    return "".join(ch for ch in name if ch not in SEPARATORS)


@functools.lru_cache(maxsize=20000)
def char_initials(ch: str) -> tuple[str, ...]:
    """Possible initials of one character (several for polyphonic characters)."""
    if not _is_cjk(ch):
        return (ch.lower(),) if ch.isalnum() else ()
    readings = pinyin(ch, style=Style.FIRST_LETTER, heteronym=True, errors="ignore")
    letters = tuple(dict.fromkeys(r for r in (readings[0] if readings else []) if r))
    return letters or ()


def split_surname(name: str) -> tuple[str, str]:
    """(surname, given name); compound surnames are recognised from the table."""
    name = clean_name(name)
    if len(name) >= 3 and name[:2] in SURNAME_READINGS:
        return name[:2], name[2:]
    return name[:1], name[1:]


@functools.lru_cache(maxsize=200000)
def initials(name: str) -> tuple[str, ...]:
    """Every plausible initials string of a name, the likeliest first.

    >>> initials("张秀英")[0]
    'zxy'
    >>> initials("曾小明")[0]
    'zxm'
    >>> initials("尉迟恭")[0]
    'ycg'
    """
    surname, given = split_surname(name)
    if not surname:
        return ()
    if surname in SURNAME_READINGS:
        heads = [tuple(dict.fromkeys(
            "".join(syl[0] for syl in r.split()) for r in SURNAME_READINGS[surname]))]
    else:
        heads = [char_initials(ch) or ("",) for ch in surname]
    surnames = ["".join(c) for c in itertools.product(*heads)]
    givens = ["".join(c) for c in itertools.islice(
        itertools.product(*[char_initials(ch) or ("",) for ch in given]), MAX_VARIANTS)]
    # Every reading of the surname survives the cap (尉 is yu or wei whatever the
    # given name); the likeliest reading of both comes first.
    return tuple(dict.fromkeys(s + g for g in givens for s in surnames))


def given_initials(name: str) -> tuple[str, ...]:
    """Initials of the given name only (秀英 → xy), so 'xy' finds 张秀英."""
    _, given = split_surname(name)
    if not given:
        return ()
    parts = [char_initials(ch) or ("",) for ch in given]
    return tuple(dict.fromkeys(
        "".join(c) for c in itertools.islice(itertools.product(*parts), MAX_VARIANTS)))
