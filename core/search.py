"""Finding a person fast: name fragment, ID fragment, phone fragment, pinyin initials.

Two FTS5 indexes, both keyed by person.id:

* search_digits (trigram): ID number and phone, so any 3+ digit fragment hits.
* search_grams (unicode61, detail=none): the name's single characters and
  character pairs, and pinyin initials with all their prefixes. FTS5 trigram
  cannot match 1-2 character queries — and on this SQLite a LIKE through the
  trigram table silently returns nothing for them — yet 1-2 characters is what
  people type for names (“秀英”, “张”). Longer names match all their pairs
  and are then checked against the name itself.

Results come in person.id order (households were entered together, so members
come out together) and stop at `limit`; the index never loads everything.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from dataclasses import dataclass

from core import idcard
from core.errors import ValidationError
from core.pinyin import SEPARATORS, clean_name, given_initials, initials

_NON_DIGITS = re.compile(r"\D")
_DIGITS = re.compile(r"^[0-9X]+$")
_LETTERS = re.compile(r"^[a-z]+$")


def _is_cjk_text(text: str) -> bool:
    return bool(text) and all("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"
                              or "\U00020000" <= ch <= "\U0003134f"
                              for ch in text)


def name_grams(name: str) -> list[str]:
    chars = [ch for ch in clean_name(name) if not ch.isspace()]
    grams = list(dict.fromkeys(chars))
    grams += list(dict.fromkeys(a + b for a, b in zip(chars, chars[1:])))
    return grams


@functools.lru_cache(maxsize=100_000)
def name_tokens(name: str) -> str:
    """The grams text of a name. Cached: names repeat a lot within a county."""
    tokens = name_grams(name)
    for variant in initials(name) + given_initials(name):
        tokens += [variant[:i] for i in range(1, len(variant) + 1)]
    return " ".join(dict.fromkeys(tokens))


def index_rows(name: str | None, id_number: str | None, phone: str | None) -> tuple[str, str]:
    """The two search-index texts of a person: (digits, grams)."""
    if phone:
        phone = _NON_DIGITS.sub("", phone)  # landlines are stored as 0773-1234567
    digits = f"{id_number} {phone}" if id_number and phone else (id_number or phone or "")
    return digits, name_tokens(name) if name else ""


# The stored name with the separators of minority names removed, as the query is.
_BARE_NAME = "p.name"
for _sep in SEPARATORS:
    _BARE_NAME = f"replace({_BARE_NAME}, '{_sep}', '')"


def _quote(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


@dataclass
class SearchResult:
    ids: list[int]
    more: bool  # True if there are more matches than were returned
    query: str


def _term(term: str) -> tuple[str, str, str | None]:
    """(index table, FTS5 match expression, LIKE pattern to check names) of one term."""
    cleaned = idcard.clean(term)
    if _DIGITS.match(cleaned) and any(ch.isdigit() for ch in cleaned):
        if len(cleaned) < 3:
            raise ValidationError("按号码查找请至少输入3位数字")
        return "search_digits", _quote(cleaned), None
    lower = term.lower()
    if _LETTERS.match(lower):
        return "search_grams", _quote(lower), None
    name = clean_name(term)
    if not _is_cjk_text(name):
        raise ValidationError(f"无法识别的查找内容“{term}”：可输入姓名、身份证号、电话或拼音首字母")
    if len(name) <= 2:
        return "search_grams", _quote(name), None
    pairs = [name[i:i + 2] for i in range(len(name) - 1)]
    return "search_grams", " AND ".join(_quote(p) for p in dict.fromkeys(pairs)), f"%{name}%"


def search(conn: sqlite3.Connection, query: str, *, limit: int = 50,
           unit_code: str | None = None) -> SearchResult:
    """Person ids matching every whitespace-separated term of `query`.

    unit_code limits the result to persons in households under that unit.
    Raises ValidationError (Chinese message) for a query that cannot be searched.
    """
    terms = [t for t in re.split(r"[\s,，;；]+", query.strip()) if t]
    if not terms:
        return SearchResult([], False, query)
    parts = [_term(t) for t in terms]
    table, match, like = parts[0]
    # The first term drives the scan in id order (FTS5 returns rowids in order,
    # so ORDER BY ... LIMIT stops early); the others are checked per row.
    sql = f"SELECT p.id FROM {table} m CROSS JOIN person p ON p.id = m.rowid"
    where = [f"{table} MATCH ?", "p.deleted = 0"]
    args: list[object] = [match]
    for extra_table, extra_match, _ in parts[1:]:
        where.append(f"p.id IN (SELECT rowid FROM {extra_table} WHERE {extra_table} MATCH ?)")
        args.append(extra_match)
    for _, _, pattern in parts:
        if pattern:
            where.append(f"{_BARE_NAME} LIKE ?")
            args.append(pattern)
    if unit_code:
        sql += " CROSS JOIN household h ON h.gid = p.household_gid"
        where.append("h.unit_code >= ? AND h.unit_code < ?")
        args += [unit_code, unit_code + "\uffff"]
    sql += " WHERE " + " AND ".join(where) + " ORDER BY m.rowid LIMIT ?"
    args.append(limit + 1)
    ids = [r[0] for r in conn.execute(sql, args)]
    return SearchResult(ids[:limit], len(ids) > limit, query)
