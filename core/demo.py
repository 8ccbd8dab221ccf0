"""A synthetic demo county: deterministic for a seed, realistic in shape, no real people.

Townships, villages and groups; households of 1–8 with heads, spouses,
children, elders and grandchildren of plausible ages; valid checksummed ID
numbers (with the made-up address codes 99990x, so no number can belong to
anyone) consistent with birth date and sex; phones; last year's status; this
year's progress at a mid-campaign level that differs by village; special
groups at plausible rates; visits with reasons; targets with milestones.

The county is built into a temporary file and renamed into place at the end,
so a cancelled or failed build leaves nothing behind.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import os
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from core import idcard
from core.changelog import BulkCreator, dumps
from core.domain import (
    NEXT_ACTION, Channel, ExcludeReason, LastYear, Reason, Relation,
    SubsidyCategory, SubsidyKind, VisitMethod, VisitOutcome, derive_status, is_lapsed,
)
from core.errors import ValidationError
from core.hlc import Clock
from core.ledger import enrollment_gid, person_gid_for
from core.policy import load_policy
from core.progress import Progress
from core.store import open_store

YEAR = 2027
OPERATOR = "演示数据"
COUNTY_CODE = "999901"
COUNTY_NAME = "示范县"
ADDRESS_CODES = ("999901", "999901", "999901", "999901", "999902", "999903")

TOWNSHIPS = (
    "城关镇 青山镇 石门乡 河口镇 龙泉镇 白沙乡 新华镇 东岭乡 西林镇 南湾乡 北坪镇 "
    "金竹乡 太平镇 长乐乡 永安镇 三江乡 大塘镇 松柏乡 桃源镇 平安乡 红岩镇 清水乡 "
    "黄土镇 马坪乡 凤凰镇 高桥乡 花溪镇 杨柳乡 双河镇 云台乡 梅林镇 百合乡 兴隆镇 "
    "保和乡 富民镇 安乐乡 福田镇 仁和乡 玉泉镇 广福乡").split()
VILLAGE_A = "上下东西南北大小新老前后中高石水山林竹梅桃李杨柳岭塘坪湾坝沟"
VILLAGE_B = "村屯寨庄岗坡冲口头湾"
VILLAGE_MID = "家田塘坡岭园山湖桥河源溪洞坑垌铺"
GROUP_NUMERALS = "一二三四五六七八九十"

# Surnames with rough weights; includes polyphonic ones search must read right.
SURNAMES = (
    ("王", 70), ("李", 70), ("张", 65), ("刘", 55), ("陈", 50), ("杨", 35), ("黄", 35),
    ("赵", 30), ("吴", 28), ("周", 28), ("徐", 20), ("孙", 18), ("马", 18), ("朱", 17),
    ("胡", 16), ("郭", 16), ("何", 15), ("林", 14), ("罗", 14), ("高", 13), ("梁", 12),
    ("郑", 12), ("谢", 10), ("宋", 10), ("唐", 10), ("韦", 10), ("蒋", 8), ("覃", 8),
    ("曾", 8), ("邓", 8), ("廖", 7), ("莫", 7), ("蒙", 5), ("卢", 6), ("陆", 6), ("潘", 6),
    ("石", 5), ("秦", 5), ("单", 3), ("翟", 2), ("查", 2), ("区", 2), ("解", 2), ("仇", 1),
    ("盖", 1), ("朴", 1), ("尉迟", 1), ("欧阳", 2), ("诸葛", 1),
)
GIVEN_MALE = "伟强军勇杰涛明超刚平辉鹏华飞斌宇浩凯健俊帆帅旭宁龙林波磊志国建德福生荣文兵海峰"
GIVEN_FEMALE = "秀英芳娜敏静丽艳娟霞玲桂兰玉梅红春燕萍琴云莲凤洁慧婷雪倩颖佳欣悦怡丹"
WORKER_NAMES = "韦春梅 覃志强 黄丽萍 陆建国 蒙秀英 莫海峰 罗玉兰 廖德福 石桂香 潘文斌".split()


class _Weighted:
    def __init__(self, items: Sequence[tuple[Any, float]]) -> None:
        self.values = [v for v, _ in items]
        self.cum = list(itertools.accumulate(w for _, w in items))

    def pick(self, rng: random.Random) -> Any:
        return self.values[bisect.bisect_right(self.cum, rng.random() * self.cum[-1])]


def _layout(persons: int) -> tuple[int, int, int]:
    """(townships, villages per township, groups per village) for a county size."""
    villages = max(1, round(persons / 3300))
    townships = 1 if villages < 3 else max(2, min(len(TOWNSHIPS), round(villages / 15)))
    per_township = max(1, round(villages / townships))
    groups_per_village = max(1, min(12, round(persons / (townships * per_township) / 420)))
    return townships, per_township, groups_per_village


def build_demo(path: str | Path, persons: int = 20000, seed: int = 1, *,
               today: dt.date | None = None, force: bool = False,
               progress: Callable[[Progress], None] | None = None) -> Path:
    """Build the demo county at `path`; see build_demo_steps for the details."""
    final = Path(path)
    for step in build_demo_steps(final, persons, seed, today=today, force=force):
        if progress:
            progress(step)
    return final


def build_demo_steps(path: str | Path, persons: int = 20000, seed: int = 1, *,
                     today: dt.date | None = None, force: bool = False,
                     workers: bool = True) -> Iterator[Progress]:
    """Build step by step, yielding progress; closing the generator cancels.

    The rows are generated in a worker process while this one inserts them:
    generation and SQLite each take about half the time, and a village laptop
    has two cores. `workers=False` does both here (tests, frozen builds that
    cannot start processes).
    """
    if persons < 1 or persons > 5_000_000:
        raise ValidationError("演示人数应在1到5,000,000之间")
    final = Path(path).expanduser().resolve()
    if final.exists() and not force:
        raise ValidationError(f"{final} 已存在；如要覆盖请加 --force")
    today = today or dt.date.today()
    temp = final.with_name(final.name + ".building")
    for stale in (temp, Path(str(temp) + "-wal"), Path(str(temp) + "-shm")):
        stale.unlink(missing_ok=True)
    store = open_store(temp)
    ok = False
    try:
        conn = store.conn
        # The file is new and private until renamed: trade durability for speed.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")
        store.set_settings(role="county", scope=COUNTY_CODE, operator="演示用户",
                           campaign_year=str(YEAR), demo="1", demo_seed=str(seed))
        conn.execute("BEGIN")
        # Secondary indexes are rebuilt once at the end: sorting a million keys
        # once is much cheaper than keeping the B-trees ordered row by row.
        indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='index' "
                               "AND sql IS NOT NULL").fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        args = (store.node, BulkCreator.next_ids(conn), persons, seed, today)
        steps = _rows_in_worker(*args) if workers else _rows_here(*args)
        for batch, step in steps:
            for sql, rows in batch:
                conn.executemany(sql, rows)
            if step:
                yield step
        yield Progress(persons, persons, "建立索引")
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        yield Progress(persons, persons, "整理索引")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA journal_mode=WAL")
        store.close()
        os.replace(temp, final)
        ok = True
        yield Progress(persons, persons, "完成", final=True)
    finally:
        if not ok:
            store.close()
            for leftover in (temp, Path(str(temp) + "-wal"), Path(str(temp) + "-shm")):
                leftover.unlink(missing_ok=True)


_Batch = list[tuple[str, list[tuple[Any, ...]]]]


def _rows_here(node: str, next_ids: dict[str, int], total: int, seed: int,
               today: dt.date) -> Iterator[tuple[_Batch, Progress | None]]:
    batch: _Batch = []
    bulk = BulkCreator(None, Clock(node), OPERATOR, "demo",
                       sink=lambda sql, rows: batch.append((sql, rows)), next_ids=next_ids)
    for step in _generate(bulk, total, seed, today):
        out = batch[:]
        batch.clear()
        yield out, step


def _worker(queue: Any, node: str, next_ids: dict[str, int], total: int, seed: int,
            today: dt.date) -> None:
    try:
        for item in _rows_here(node, next_ids, total, seed, today):
            queue.put(item)
        queue.put(None)
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        import traceback

        queue.put(traceback.format_exc())


def _rows_in_worker(node: str, next_ids: dict[str, int], total: int, seed: int,
                    today: dt.date) -> Iterator[tuple[_Batch, Progress | None]]:
    import multiprocessing

    # spawn, not fork: forking a process that runs Qt threads is unsafe, and
    # spawn is what Windows does anyway.
    ctx = multiprocessing.get_context("spawn")
    # A short queue bounds memory: the worker waits when the inserter lags.
    queue = ctx.Queue(maxsize=3)
    proc = ctx.Process(target=_worker, args=(queue, node, next_ids, total, seed, today),
                       daemon=True, name="demo-rows")
    proc.start()
    try:
        import queue as queue_mod

        while True:
            try:
                item = queue.get(timeout=1.0)
            except queue_mod.Empty:
                if proc.is_alive():
                    continue
                # It may have sent its last rows and ended between the two
                # looks: what it sent is still in the pipe.
                try:
                    item = queue.get(timeout=1.0)
                except queue_mod.Empty:  # died without a word (killed, out of memory)
                    raise RuntimeError("演示数据生成进程意外退出") from None
            if item is None:
                break
            if isinstance(item, str):
                raise RuntimeError("演示数据生成进程出错：\n" + item)
            yield item
        proc.join()
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join()
        queue.close()


def _generate(bulk: BulkCreator, total: int, seed: int,
              today: dt.date) -> Iterator[Progress]:
    rng = random.Random(seed)
    year = YEAR
    policy = load_policy(year)
    start = dt.date.fromisoformat(policy["collection"]["start"])
    end = dt.date.fromisoformat(policy["collection"]["end"])
    last_day = max(start, min(today, end))
    window = max(1, (last_day - start).days + 1)
    rules = {r["category"]: r for r in policy["subsidy_rules"]}

    surnames = _Weighted(SURNAMES)
    channels = _Weighted([(Channel.WECHAT, 55), (Channel.ALIPAY, 15), (Channel.UNIONPAY, 5),
                          (Channel.TAX_APP, 10), (Channel.BANK, 10)])
    reasons = _Weighted([(Reason.AWAY_WORK, 30), (Reason.AWAY_STUDY, 6), (Reason.ELSEWHERE, 8),
                         (Reason.HEALTHY, 14), (Reason.FEE, 12), (Reason.POLICY, 6),
                         (Reason.SELECTIVE, 5), (Reason.HARDSHIP, 6), (Reason.LATER, 8),
                         (Reason.ONLINE, 3), (Reason.SAYS_PAID, 2)])
    methods = _Weighted([(VisitMethod.DOOR, 60), (VisitMethod.PHONE, 30), (VisitMethod.WECHAT, 10)])
    outcomes = _Weighted([(VisitOutcome.PROMISED, 35), (VisitOutcome.UNDECIDED, 25),
                          (VisitOutcome.REFUSED, 10), (VisitOutcome.NOT_REACHED, 25),
                          (VisitOutcome.PROOF_NEEDED, 5)])
    excludes = _Weighted([(ExcludeReason.DECEASED, 35), (ExcludeReason.MOVED_OUT, 30),
                          (ExcludeReason.MILITARY, 8), (ExcludeReason.ABROAD, 8),
                          (ExcludeReason.PRISON, 4), (ExcludeReason.MISSING, 5),
                          (ExcludeReason.DUPLICATE, 10)])
    places = ("广东省深圳市", "广东省广州市", "广东省东莞市", "浙江省宁波市", "福建省厦门市",
              "本县职工医保", "湖南省长沙市", "学校所在地")
    sizes = _Weighted([(1, 18), (2, 26), (3, 22), (4, 17), (5, 9), (6, 5), (7, 2), (8, 1)])
    used_ids: set[int] = set()

    n_town, n_village, n_group = _layout(total)
    bulk.create("unit", COUNTY_CODE, {"name": COUNTY_NAME, "level": "county",
                                      "parent_code": None, "deleted": 0})
    village_names = _village_names(rng, n_town * n_village)
    groups: list[tuple[str, str, float]] = []  # (code, worker, village rate)
    for t in range(n_town):
        tcode = f"{COUNTY_CODE}{t + 1:03d}"
        bulk.create("unit", tcode, {"name": TOWNSHIPS[t % len(TOWNSHIPS)], "level": "township",
                                    "parent_code": COUNTY_CODE, "deleted": 0})
        for v in range(n_village):
            vcode = f"{tcode}{v + 1:03d}"
            bulk.create("unit", vcode, {"name": village_names[t * n_village + v],
                                        "level": "village", "parent_code": tcode, "deleted": 0})
            # Seed 002: the best village above 60 %, others near 20 %.
            rate = rng.uniform(0.18, 0.68)
            for g in range(n_group):
                gcode = f"{vcode}{g + 1:03d}"
                bulk.create("unit", gcode, {"name": _group_name(g), "level": "group",
                                            "parent_code": vcode, "deleted": 0})
                groups.append((gcode, rng.choice(WORKER_NAMES), rate))

    weights = [rng.uniform(0.7, 1.3) for _ in groups]
    scale = total / sum(weights)
    quotas = [int(w * scale) for w in weights]
    quotas[-1] += total - sum(quotas)
    group_persons: dict[str, int] = {}
    made = 0
    next_report = 0
    for (gcode, worker, rate), quota in zip(groups, quotas):
        number = 0
        left = quota
        group_persons[gcode] = quota
        while left > 0:
            size = min(sizes.pick(rng), left)
            left -= size
            number += 1
            made += size
            _household(bulk, rng, gcode, number, size, worker, rate, year, today, start, window,
                       used_ids, surnames, channels, reasons, methods, outcomes, excludes,
                       places, rules)
        if made >= next_report:
            bulk.flush()
            next_report = made + 20000
            yield Progress(made, total, "生成户和人员")
    # Targets: last year's enrolled plus growth, split down the tree.
    milestones = dumps(policy.get("milestones", []))
    unit_totals: dict[str, int] = {}
    for gcode, count in group_persons.items():
        for width in (6, 9, 12, 15):
            unit_totals[gcode[:width]] = unit_totals.get(gcode[:width], 0) + count
    for code, count in sorted(unit_totals.items()):
        bulk.create("target", f"{code}/{year}", {"unit_code": code, "year": year,
                                                 "count": round(count * 0.95),
                                                 "milestones": milestones})
    bulk.flush()
    yield Progress(total, total, "生成目标")


def _village_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = rng.choice(VILLAGE_A) + rng.choice(VILLAGE_MID) + rng.choice(VILLAGE_B)
        if len(seen) > 3000:  # pool exhausted: number the rest
            name = f"{name}{len(names)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _group_name(index: int) -> str:
    n = index + 1
    if n <= 10:
        return f"第{GROUP_NUMERALS[n - 1]}组"
    return f"第十{GROUP_NUMERALS[n - 11]}组" if n < 20 else f"第{n}组"


def _person_name(rng: random.Random, surnames: _Weighted, male: bool,
                 surname: str | None = None) -> str:
    pool = GIVEN_MALE if male else GIVEN_FEMALE
    given = rng.choice(pool) + (rng.choice(pool) if rng.random() < 0.72 else "")
    return (surname or surnames.pick(rng)) + given


def _id_number(rng: random.Random, birth: dt.date, male: bool, used: set[int]) -> str:
    while True:
        seq = rng.randrange(0, 500) * 2 + (1 if male else 0)
        number = idcard.make(rng.choice(ADDRESS_CODES), birth, seq)
        key = int(number[:17])
        if key not in used:
            used.add(key)
            return number


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(0, 10**9):09d}"


def _birth(rng: random.Random, today: dt.date, age: int) -> dt.date:
    return today - dt.timedelta(days=age * 365 + rng.randrange(0, 365))


def _household(bulk: BulkCreator, rng: random.Random, gcode: str, number: int, size: int,
               worker: str, rate: float, year: int, today: dt.date, start: dt.date,
               window: int, used_ids: set[int], surnames: _Weighted, channels: _Weighted,
               reasons: _Weighted, methods: _Weighted, outcomes: _Weighted,
               excludes: _Weighted, places: Sequence[str], rules: dict[str, Any]) -> None:
    hgid = f"h{rng.getrandbits(80):020x}"  # from the seed: same county every time
    # Members: (relation, age, male, shares the head's surname)
    head_age = rng.randint(24, 82) if size > 1 else rng.randint(35, 90)
    head_male = rng.random() < 0.82
    members: list[tuple[Relation, int, bool, bool]] = [(Relation.HEAD, head_age, head_male, True)]
    if size >= 2 and rng.random() < 0.85:
        members.append((Relation.SPOUSE, max(18, head_age + rng.randint(-6, 4)), not head_male, False))
    while len(members) < size:
        roll = rng.random()
        if head_age >= 52 and roll < 0.55:
            kid_age = head_age - rng.randint(22, 32)
            if any(m[0] in (Relation.SON, Relation.DAUGHTER) for m in members) and roll < 0.3:
                members.append((Relation.GRANDCHILD, max(0, kid_age - rng.randint(22, 30)),
                                rng.random() < 0.52, True))
            elif roll < 0.45 or len(members) >= size - 1:
                male = rng.random() < 0.52
                members.append((Relation.SON if male else Relation.DAUGHTER, kid_age, male, True))
            else:
                members.append((Relation.CHILD_IN_LAW, kid_age, rng.random() < 0.3, False))
        elif head_age <= 55 and roll < 0.7:
            male = rng.random() < 0.52
            kid_age = max(0, head_age - rng.randint(20, 36))
            members.append((Relation.SON if male else Relation.DAUGHTER, kid_age, male, True))
        elif head_age <= 60 and roll < 0.85:
            members.append((Relation.PARENT, min(99, head_age + rng.randint(22, 32)),
                            rng.random() < 0.45, True))
        else:
            male = rng.random() < 0.5
            members.append((Relation.SIBLING if head_age < 60 else Relation.GRANDCHILD,
                            max(0, head_age - rng.randint(-8, 8) if head_age < 60
                                else head_age - rng.randint(48, 60)), male, True))
    head_surname = surnames.pick(rng)
    hphone = _phone(rng) if rng.random() < 0.9 else None
    unpaid_pgids: list[str] = []
    head_gid = ""
    records: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = []
    enrollments: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = []
    for i, (rel, age, male, shares) in enumerate(members):
        birth = _birth(rng, today, age)
        id_no = _id_number(rng, birth, male, used_ids)
        name = _person_name(rng, surnames, male, head_surname if shares else None)
        pgid = person_gid_for(id_no)
        if i == 0:
            head_gid = pgid
        phone = hphone if i == 0 else (_phone(rng) if 18 <= age <= 65 and rng.random() < 0.5 else None)
        cats: list[str] = []
        roll = rng.random()
        if roll < 0.05:
            cats.append(SubsidyCategory.TUOPIN.value)
        elif roll < 0.06:
            cats.append(SubsidyCategory.MONITORED.value)
        if rng.random() < 0.03:
            cats.append(SubsidyCategory.DIBAO.value)
        if age >= 60 and rng.random() < 0.02:
            cats.append(SubsidyCategory.TEKUN.value)
        if rng.random() < 0.01:
            cats.append(SubsidyCategory.DISABLED.value)
        if age < 16 and rng.random() < 0.002:
            cats.append(SubsidyCategory.ORPHAN.value)
        records.append((pgid, {
            "household_gid": hgid, "name": name, "id_number": id_no, "relation": rel.value,
            "phone": phone, "categories": ",".join(sorted(cats)) or None, "notes": None,
            "deleted": 0}, (birth.isoformat(), "M" if male else "F")))

        # Enrollment facts.
        e: dict[str, Any] = {"person_gid": pgid, "year": year}
        last_roll = rng.random()
        last = LastYear.PAID if last_roll < (0.97 if cats else 0.88) else (
            LastYear.UNPAID if last_roll < 0.97 else LastYear.UNKNOWN)
        if age == 0:
            last = LastYear.UNPAID
        e["last_year_status"] = last.value
        if cats:
            main = _main_category(cats)
            rule = rules.get(main)
            if rule:
                e["subsidy_category"] = main
                e["subsidy_kind"] = rule["kind"]
                e["subsidy_amount"] = rule["amount"]
                e["subsidy_dept"] = rule["department"]
                if rule["kind"] == SubsidyKind.FULL.value and rng.random() < 0.6:
                    e["subsidy_arrived"] = (start + dt.timedelta(days=rng.randrange(window))).isoformat()
        roll = rng.random()
        if roll < 0.008:
            e["exclude_reason"] = excludes.pick(rng).value
            e["exclude_evidence"] = "村委会核实"
        elif roll < (0.08 if 18 <= age <= 45 else 0.018):
            e["elsewhere_place"] = rng.choice(places)
            e["elsewhere_evidence"] = "参保凭证截图" if rng.random() < 0.7 else None
        else:
            p_paid = min(0.97, rate * (1.25 if last == LastYear.PAID else 0.4) + (0.15 if cats else 0))
            if rng.random() < p_paid:
                paid_on = start + dt.timedelta(days=rng.randrange(window))
                if rng.random() < 0.9:
                    e["claim_date"] = paid_on.isoformat()
                    e["claim_channel"] = (Channel.AGENT if cats and rng.random() < 0.3
                                          else channels.pick(rng)).value
                    e["claim_tier"] = "standard"
                    e["claim_by"] = worker
                confirm_on = paid_on + dt.timedelta(days=rng.randint(2, 15))
                if confirm_on <= today and rng.random() < 0.6:
                    e["confirmed_date"] = confirm_on.isoformat()
                    e["confirmed_amount"] = 400.0
        status = derive_status(e)
        if status.value in ("unpaid", "subsidy_pending"):
            unpaid_pgids.append(pgid)
        enrollments.append((enrollment_gid(pgid, year), e,
                            (status.value, int(is_lapsed(e["last_year_status"], status)), gcode)))

    # Visits: about half of the households with someone unpaid have been visited.
    visits: list[tuple[str, dict[str, Any]]] = []
    if unpaid_pgids and rng.random() < 0.4:
        # Door-knocking picks up in the last weeks; workers go back about when
        # they said they would, so a chain of visits runs up to about today: a
        # few households are overdue, most are due in the coming days.
        day = max(start, today - dt.timedelta(days=rng.randrange(45)))
        reason = reasons.pick(rng)
        while day <= today and len(visits) < 6:
            if rng.random() < 0.2:  # the reason mostly stays; sometimes it turns out otherwise
                reason = reasons.pick(rng)
            next_day = day + dt.timedelta(days=NEXT_ACTION[reason][1] + rng.randint(-1, 4)
                                          + (rng.randint(0, 12) if rng.random() < 0.3 else 0))
            visits.append((f"v{rng.getrandbits(80):020x}", {
                "household_gid": hgid, "person_gid": rng.choice(unpaid_pgids),
                "date": day.isoformat(), "visitor": worker, "method": methods.pick(rng).value,
                "outcome": outcomes.pick(rng).value, "reason": reason.value,
                "note": None, "next_date": next_day.isoformat()}))
            day = next_day
    last_visit = visits[-1][1]["date"] if visits else None
    next_follow = visits[-1][1]["next_date"] if visits else None
    bulk.create("household", hgid, {
        "number": f"{number:03d}", "unit_code": gcode, "address": f"{number}号",
        "phone": hphone, "worker": worker, "head_gid": head_gid, "deleted": 0},
        (last_visit, next_follow))
    for pgid, record, derived in records:
        bulk.create("person", pgid, record, derived)
    for egid, record, derived in enrollments:
        bulk.create("enrollment", egid, record, derived)
    for vgid, record in visits:
        bulk.create("visit", vgid, record)


def _main_category(cats: Sequence[str]) -> str:
    # The category that gives the most subsidy decides this year's subsidy.
    for best in ("tekun", "orphan", "dibao", "monitored", "disabled", "tuopin"):
        if best in cats:
            return best
    return cats[0]
