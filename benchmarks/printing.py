"""`python main.py bench print`: 1,000 household notices and Q&A card pages,
each beside a bare reportlab baseline (same font, same number of pages, a few
lines of text per page drawn straight on the canvas) measured in the same run."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

BUDGET = {"notices": 250.0, "cards": 400.0}


def _bare(path: Path, pages: int, lines: int) -> float:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    from core.printing.fonts import FONT_NAME, register

    register()
    t = time.perf_counter()
    canvas = Canvas(str(path), pagesize=A4)
    for p in range(pages):
        canvas.setFont(FONT_NAME, 11)
        for i in range(lines):
            canvas.drawString(40, 800 - i * 16, f"城乡居民医保缴费告知书 第{p + 1}页 第{i + 1}行 张秀英 400元")
        canvas.showPage()
    canvas.save()
    return time.perf_counter() - t


def run(db: str | None = None) -> int:
    from core.demo import build_demo_steps
    from core.printing.documents import cards, household_gids, notices
    from core.store import open_store

    work = Path(tempfile.mkdtemp(prefix="cbt-bench-print-"))
    path = Path(db) if db else work / "county.db"
    if not path.exists():
        for _ in build_demo_steps(path, 20_000, 1, workers=False):
            pass
    store = open_store(path, lock=False)
    try:
        gids = household_gids(store.conn, None, unpaid_only=False, year=2027)[:1000]
        settings = {"payment_link": "https://example.invalid/pay?county=999901",
                    "contact_phone": "0771-0000000"}
        for _ in notices(store.conn, work / "warm.pdf", year=2027, households=gids[:20],
                         settings=settings):
            pass
        t = time.perf_counter()
        for _ in notices(store.conn, work / "notices.pdf", year=2027, households=gids,
                         settings=settings):
            pass
        notice_s = time.perf_counter() - t
    finally:
        store.close()
    from pypdf import PdfReader

    notice_pages = len(PdfReader(work / "notices.pdf").pages)
    bare_notices = _bare(work / "bare1.pdf", notice_pages, 30)
    t = time.perf_counter()
    for _ in cards(work / "cards.pdf", year=2027, per_page=4, pages=1000):
        pass
    cards_s = time.perf_counter() - t
    bare_cards = _bare(work / "bare2.pdf", 1000, 60)
    rows = [
        (f"缴费告知书 {len(gids):,} 户（{notice_pages:,} 页）", notice_pages / notice_s,
         notice_pages / bare_notices, BUDGET["notices"]),
        ("政策明白卡 1,000 页（每页4张）", 1000 / cards_s, 1000 / bare_cards, BUDGET["cards"]),
    ]
    print(f"参保通 打印基准（{sys.platform}）")
    print()
    print("项目 | 参保通 页/秒 | 裸reportlab基线 页/秒 | 预算 | 结论")
    print("---- | ---- | ---- | ---- | ----")
    ok = True
    for what, ours, bare, budget in rows:
        ok &= ours >= budget
        print(f"{what} | {ours:,.0f} | {bare:,.0f} | ≥ {budget:,.0f} | "
              f"{'达标' if ours >= budget else '未达标'}")
    return 0 if ok else 1
