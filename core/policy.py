"""The policy year: tiers and amounts, dates, subsidy rules, Q&A text.

Shipped as resources/policy/<year>.json with defaults for the township to
confirm; a township's edited copy (same name) in the data folder wins over it.
Nothing in the program hard-codes an amount or a date.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import ValidationError
from core.paths import resource


def policy_path(year: int, data_dir: Path | None = None) -> Path:
    """The township's edited copy (<data folder>/policy/<year>.json) if there is
    one — it survives upgrades of the program — else the shipped defaults."""
    if data_dir is None:
        from core.store import default_db_path

        data_dir = default_db_path().parent
    if data_dir is not None:
        local = data_dir / "policy" / f"{year}.json"
        if local.exists():
            return local
    return resource("policy", f"{year}.json")


def load_policy(year: int, data_dir: Path | None = None) -> dict[str, Any]:
    path = policy_path(year, data_dir)
    if not path.exists():
        raise ValidationError(f"没有{year}年度的政策参数文件（{path.name}），请在设置中新建。")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"政策参数文件 {path} 无法读取：{exc}") from exc
    if data.get("benefit_year") != year:
        raise ValidationError(f"政策参数文件 {path.name} 中的参保年度不是{year}年")
    for key in ("collection", "tiers"):
        if key not in data:
            raise ValidationError(f"政策参数文件 {path.name} 缺少“{key}”一项")
    return data


def standard_amount(policy: dict[str, Any], tier: str | None = None) -> float:
    tiers = policy["tiers"]
    for t in tiers:
        if tier in (t.get("code"), t.get("name")):
            return float(t["amount"])
    return float(tiers[0]["amount"])
