"""Domain vocabulary shared by core, CLI and GUI: codes in English, labels in Chinese,
and the one precedence rule that derives a person's status for a campaign year.

Codes are what is stored and synced; labels are only for display, so a label
can be reworded without touching any data.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any


class LabelledEnum(str, Enum):
    """A str enum whose members carry a Chinese label."""

    label: str

    def __new__(cls, code: str, label: str) -> "LabelledEnum":
        obj = str.__new__(cls, code)
        obj._value_ = code
        obj.label = label
        return obj

    @classmethod
    def parse(cls, value: Any, what: str) -> "LabelledEnum":
        """Accept a code or a Chinese label; raise ValidationError otherwise."""
        from core.errors import ValidationError

        if isinstance(value, cls):
            return value
        for member in cls:
            if value in (member.value, member.label):
                return member
        choices = "、".join(m.label for m in cls)
        raise ValidationError(f"{what}“{value}”无效，可选：{choices}", field=what)

    @classmethod
    def labels(cls) -> dict[str, str]:
        return {m.value: m.label for m in cls}

    @classmethod
    def label_of(cls, code: str | None) -> str:
        """The Chinese label of a stored code; unknown codes are shown as they are
        (data from a newer version may carry codes this one does not know)."""
        if not code:
            return ""
        try:
            return cls(code).label
        except ValueError:
            return code


class Level(LabelledEnum):
    COUNTY = ("county", "县")
    TOWNSHIP = ("township", "乡镇")
    VILLAGE = ("village", "村/社区")
    GROUP = ("group", "组/网格")


# Unit codes are hierarchical, like the statistics bureau's division codes:
# county 6 digits, township +3, village +3, group +3. A unit's ancestors are
# therefore prefixes of its code, which keeps "everything under this village"
# a cheap range query.
CODE_LENGTH = {Level.COUNTY: 6, Level.TOWNSHIP: 9, Level.VILLAGE: 12, Level.GROUP: 15}
CHILD_LEVEL = {Level.COUNTY: Level.TOWNSHIP, Level.TOWNSHIP: Level.VILLAGE, Level.VILLAGE: Level.GROUP}


class Role(LabelledEnum):
    VILLAGE = ("village", "村/社区")
    TOWNSHIP = ("township", "乡镇医保站")
    COUNTY = ("county", "县医保局")


class Status(LabelledEnum):
    CONFIRMED = ("confirmed", "税务已确认")
    EXCLUDED = ("excluded", "剔除")
    ELSEWHERE = ("elsewhere", "外地参保")
    SUBSIDIZED = ("subsidized", "资助已到账")
    CLAIMED = ("claimed", "已缴(自报)")
    SUBSIDY_PENDING = ("subsidy_pending", "资助待到账")
    UNPAID = ("unpaid", "未缴")


# Statuses that count as enrolled for the year (toward the target).
ENROLLED = frozenset({Status.CONFIRMED, Status.SUBSIDIZED, Status.CLAIMED})
# Statuses that take a person out of the count of who must still pay.
RESOLVED = ENROLLED | {Status.EXCLUDED, Status.ELSEWHERE}


class LastYear(LabelledEnum):
    PAID = ("paid", "已参保")
    UNPAID = ("unpaid", "未参保")
    UNKNOWN = ("unknown", "不详")


class Channel(LabelledEnum):
    WECHAT = ("wechat", "微信")
    ALIPAY = ("alipay", "支付宝")
    UNIONPAY = ("unionpay", "云闪付")
    TAX_APP = ("tax_app", "税务APP")
    BANK = ("bank", "银行柜台")
    AGENT = ("agent", "代缴")


class ExcludeReason(LabelledEnum):
    MILITARY = ("military", "现役军人")
    ABROAD = ("abroad", "出国定居")
    PRISON = ("prison", "判刑收监")
    MOVED_OUT = ("moved_out", "户籍迁出")
    DECEASED = ("deceased", "死亡")
    MISSING = ("missing", "失踪")
    DUPLICATE = ("duplicate", "重复登记")
    OTHER = ("other", "其他")


class SubsidyCategory(LabelledEnum):
    TUOPIN = ("tuopin", "脱贫人口")
    MONITORED = ("monitored", "防返贫监测对象")
    DIBAO = ("dibao", "低保对象")
    TEKUN = ("tekun", "特困人员")
    DISABLED = ("disabled", "重度残疾人")
    ORPHAN = ("orphan", "孤儿/事实无人抚养儿童")
    YOUFU = ("youfu", "优抚对象")
    JISHENG = ("jisheng", "计生特殊家庭")
    OTHER = ("other", "其他")


class SubsidyKind(LabelledEnum):
    FULL = ("full", "全额资助")
    FIXED = ("fixed", "定额资助")


class Department(LabelledEnum):
    CIVIL = ("civil", "民政")
    RURAL = ("rural", "乡村振兴")
    DISABILITY = ("disability", "残联")
    VETERANS = ("veterans", "退役军人事务")
    HEALTH = ("health", "卫健")
    OTHER = ("other", "其他")


class VisitMethod(LabelledEnum):
    DOOR = ("door", "上门")
    PHONE = ("phone", "电话")
    WECHAT = ("wechat", "微信")
    OTHER = ("other", "其他")


class VisitOutcome(LabelledEnum):
    PAID = ("paid", "当场缴费")
    PROMISED = ("promised", "承诺缴费")
    UNDECIDED = ("undecided", "犹豫未定")
    REFUSED = ("refused", "明确拒绝")
    NOT_REACHED = ("not_reached", "未联系上")
    PROOF_NEEDED = ("proof_needed", "需补外地参保证明")
    OTHER = ("other", "其他")


class Reason(LabelledEnum):
    """Why someone has not paid (DOMAIN.md, seeds 000–003)."""

    AWAY_WORK = ("away_work", "外出务工联系难")
    AWAY_STUDY = ("away_study", "在外就读")
    ELSEWHERE = ("elsewhere", "已在外地或单位参保")
    HEALTHY = ("healthy", "自认身体好不需要")
    FEE = ("fee", "嫌缴费标准高")
    POLICY = ("policy", "不了解政策")
    SELECTIVE = ("selective", "家庭选择性参保")
    HARDSHIP = ("hardship", "经济困难")
    LATER = ("later", "家人稍后缴纳")
    ONLINE = ("online", "自己网上缴")
    SAYS_PAID = ("says_paid", "称已缴费待核实")
    OTHER = ("other", "其他")


# What the worker should try next, and after how many days, per reason
# (DOMAIN.md "What the worker does next depends on the reason").
NEXT_ACTION: Mapping[Reason, tuple[str, int]] = {
    Reason.AWAY_WORK: ("电话、微信联系本人或家属", 3),
    Reason.AWAY_STUDY: ("联系家长，告知可在就读地或户籍地参保", 5),
    Reason.ELSEWHERE: ("取得外地参保证明后标记外地参保", 7),
    Reason.HEALTHY: ("讲政策、算细账，讲本地真实案例，留下明白卡", 7),
    Reason.FEE: ("讲财政补助和报销待遇，算细账", 7),
    Reason.POLICY: ("再次讲解政策，留下明白卡", 5),
    Reason.SELECTIVE: ("讲等待期和断保后果，动员全家参保", 5),
    Reason.HARDSHIP: ("核查是否符合资助条件，及时纳入资助", 3),
    Reason.LATER: ("约定日期回访", 3),
    Reason.ONLINE: ("提醒截止日期，回访确认", 3),
    Reason.SAYS_PAID: ("核对税务缴费名单", 2),
    Reason.OTHER: ("回访了解情况", 7),
}


class Relation(LabelledEnum):
    HEAD = ("head", "户主")
    SPOUSE = ("spouse", "配偶")
    SON = ("son", "子")
    DAUGHTER = ("daughter", "女")
    PARENT = ("parent", "父母")
    GRANDPARENT = ("grandparent", "祖父母")
    GRANDCHILD = ("grandchild", "孙子女")
    CHILD_IN_LAW = ("child_in_law", "儿媳/女婿")
    SIBLING = ("sibling", "兄弟姐妹")
    OTHER = ("other", "其他")


def derive_status(e: Mapping[str, Any]) -> Status:
    """The displayed status of one enrollment, from its facts.

    Precedence, first match wins — the tax bureau's word is final; a verified
    removal or cover elsewhere takes the person out of the count before any
    claim; a subsidy that has arrived counts as paid; a self-reported payment
    counts until the tax list says otherwise; a full subsidy still on its way
    is tracked apart from those who must pay themselves:

    1. confirmed_date set                       → CONFIRMED 税务已确认
    2. exclude_reason set                       → EXCLUDED 剔除
    3. elsewhere_place set                      → ELSEWHERE 外地参保
    4. full subsidy and subsidy_arrived set     → SUBSIDIZED 资助已到账
    5. claim_date set                           → CLAIMED 已缴(自报)
    6. full subsidy, not arrived                → SUBSIDY_PENDING 资助待到账
    7. otherwise                                → UNPAID 未缴

    A fixed (partial) subsidy does not change the status: the person still
    pays the rest and is UNPAID until a claim or confirmation.
    """
    if e.get("confirmed_date"):
        return Status.CONFIRMED
    if e.get("exclude_reason"):
        return Status.EXCLUDED
    if e.get("elsewhere_place"):
        return Status.ELSEWHERE
    full = e.get("subsidy_kind") == SubsidyKind.FULL.value
    if full and e.get("subsidy_arrived"):
        return Status.SUBSIDIZED
    if e.get("claim_date"):
        return Status.CLAIMED
    if full:
        return Status.SUBSIDY_PENDING
    return Status.UNPAID


def is_lapsed(last_year_status: str | None, status: Status | str) -> bool:
    """断保: enrolled last year and not (yet) this year.

    Someone verified as insured elsewhere or excluded is no longer counted as
    lapsed: the worker has resolved them.
    """
    if last_year_status != _PAID_LAST_YEAR:
        return False
    return (status if isinstance(status, Status) else Status(status)) in _STILL_OPEN


# Plain values for is_lapsed, called once per row in bulk imports.
_PAID_LAST_YEAR = LastYear.PAID.value
_STILL_OPEN = frozenset((Status.UNPAID, Status.SUBSIDY_PENDING))
