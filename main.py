"""参保通 — entry point.

    python main.py                      open the app on the default ledger
    python main.py --demo               open the app on the demo county (built on first use)
    python main.py demo --persons N     build a demo county
    python main.py info                 counts by unit and status
    python main.py search 张秀英         search persons
    python main.py bench ledger         the ledger benchmark (1,000,000 persons)

The CLI and the GUI call the same core functions; nothing here writes to the
database except through them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from core import APP_NAME, __version__
from core.errors import CbtError


def _progress_printer(label: str):
    """A progress callback printing one self-overwriting line on stderr."""
    last = [-1]

    def report(step) -> None:
        done, total, message = step.done, step.total, step.message
        pct = int(done * 100 / total) if total else 100
        if pct != last[0] or step.final:
            last[0] = pct
            end = "\n" if step.final else ""
            print(f"\r{label}：{message} {done:,}/{total:,}（{pct}%）", end=end,
                  file=sys.stderr, flush=True)

    return report


def _write_file(steps: Iterator[Any], out: str, label: str) -> None:
    """Print a file-writing generator's progress. Ctrl-C stops it and its
    partial file is removed, unless the file was already in place: then it
    says the cancel came too late, rather than "已取消" over a written file."""
    def stamp() -> tuple[int, int, int] | None:
        try:
            st = os.stat(out)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    before = stamp()
    progress = _progress_printer(label)
    try:
        for step in steps:
            progress(step)
    except KeyboardInterrupt:
        steps.close()   # removes the partial file, if it was not yet in place
        if stamp() in (None, before):
            raise
        print("\n来不及取消，文件已生成。", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    from core.demo import build_demo
    from core.store import demo_db_path

    path = Path(args.db) if args.db else demo_db_path()
    final = build_demo(path, persons=args.persons, seed=args.seed, force=args.force,
                       progress=_progress_printer("演示县"))
    print(f"已生成演示县：{args.persons:,} 人 → {final}")
    return 0


def _open(args: argparse.Namespace, *, lock: bool = True):
    from core.store import open_store

    return open_store(args.db, lock=lock)


def cmd_info(args: argparse.Namespace) -> int:
    from core.domain import Level, Role, Status
    from core.stats import status_counts, totals

    with _open(args, lock=False) as store:
        year = args.year or int(store.setting("campaign_year", "2027"))
        t = totals(store.conn, year)
        print(f"数据库：{store.path}")
        print(f"本机：{Role.label_of(store.setting('role')) or '未设置'} {store.setting('scope') or ''}"
              f"  操作员：{store.setting('operator') or '未设置'}  年度：{year}")
        print(f"单位 {t['units']:,}  户 {t['households']:,}  人 {t['persons']:,}  "
              f"走访 {t['visits']:,}  变更记录 {t['changes']:,}  待核对冲突 {t['conflicts']:,}")
        rows = status_counts(store.conn, year, Level.parse(args.level, "层级"), args.unit)
        statuses = list(Status)
        header = ["代码", "名称", "总人数"] + [s.label for s in statuses] + ["断保", "目标", "完成率"]
        table = [header]
        for u in rows:
            table.append([u.code, u.name, f"{u.total:,}"]
                         + [f"{u.by_status.get(s.value, 0):,}" for s in statuses]
                         + [f"{u.lapsed:,}", f"{u.target:,}" if u.target else "—",
                            f"{u.rate:.1%}" if u.rate is not None else "—"])
        _print_table(table)
    return 0


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    from core.textwidth import table_lines

    print("\n".join(table_lines(rows, sep="  ", rule=False, right_from=2)))


def cmd_search(args: argparse.Namespace) -> int:
    from core import idcard
    from core.domain import Relation, Status
    from core.search import search

    with _open(args, lock=False) as store:
        year = int(store.setting("campaign_year", "2027"))
        result = search(store.conn, args.query, limit=args.limit, unit_code=args.unit)
        if not result.ids:
            print(f"没有找到“{args.query}”。")
            return 1
        marks = ",".join("?" * len(result.ids))
        rows = store.conn.execute(
            f"SELECT p.id, p.name, p.id_number, p.relation, p.phone, h.unit_code, h.number, "
            f"e.status FROM person p JOIN household h ON h.gid=p.household_gid "
            f"LEFT JOIN enrollment e ON e.gid = p.gid || '/' || ? "
            f"WHERE p.id IN ({marks})", [year, *result.ids]).fetchall()
        order = {pid: i for i, pid in enumerate(result.ids)}
        rows.sort(key=lambda r: order[r[0]])
        units = dict(store.conn.execute("SELECT gid, name FROM unit"))
        table = [["姓名", "身份证号", "关系", "电话", "所在", "户号", "今年状态"]]
        for _, name, number, rel, phone, ucode, hnum, status in rows:
            place = "".join(units.get(ucode[:w], "") for w in (9, 12, 15))
            table.append([name, (number or "") if args.full_id else idcard.mask(number or ""),
                          Relation.label_of(rel), phone or "", place, hnum or "",
                          Status.label_of(status)])
        _print_table(table)
        if result.more:
            print(f"（只显示前 {len(result.ids)} 条，请输入更多字缩小范围）")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from core.export import write_rows
    from core.importer import ImportOptions, prepare, report_rows, run_import, shown_id
    from core.ledger import Ledger
    from core.tabular import FIELD_LABELS

    options = ImportOptions(department=args.department, category=args.category,
                            default_group=args.default_group, scope=args.unit)
    for item in args.unit_map or []:
        name, _, code = item.partition("=")
        if not code:
            print("错误：--unit-map 应写成 名称=组代码，如 上家头/三组=999901002003003", file=sys.stderr)
            return 2
        options.unit_map[name.strip()] = code.strip()
    with _open(args) as store:
        ledger = Ledger(store, operator=args.operator)
        plan = prepare(store.conn, args.file, args.kind, options)
        for sp in plan.sheets:
            if sp.header is None:
                print(f"工作表“{sp.sheet.name}”：没有找到表头，跳过")
            else:
                print(f"工作表“{sp.sheet.name}”：表头在第{sp.header.row + 1}行；"
                      f"{sp.header.describe()}")
        if plan.unknown_units:
            print("以下村组名称在台账中找不到（这些行中台账里没有的人将被拒收；"
                  "可用 --unit-map 名称=组代码 指定）：")
            for name, count in plan.unknown_units.most_common():
                print(f"  {name}：{count} 行")
        if args.preview:
            for sheet, number, values in plan.preview(args.preview, full_id=args.full_id):
                print(f"  {sheet} 第{number}行：" + "，".join(
                    f"{FIELD_LABELS.get(k, k)}={v}" for k, v in values.items()))
            return 0
        progress = _progress_printer("导入")
        logged = "SELECT count(*) FROM import_log WHERE file_hash = ? AND kind = ?"
        before = store.conn.execute(logged, (plan.file_hash, plan.kind.value)).fetchone()
        try:
            for step in run_import(ledger, plan, options):
                progress(step)
        except KeyboardInterrupt:
            # Ctrl-C during or just after the commit undid nothing: say so,
            # and report what was saved, rather than "已取消".
            if store.conn.execute(logged, (plan.file_hash, plan.kind.value)).fetchone() \
                    == before:
                raise
            print("\n来不及取消，导入已保存。", file=sys.stderr)
        report = plan.report
        print(report.summary())
        for r in (report.refused + report.flagged)[:20]:
            print(f"  {r.sheet} 第{r.row}行 {r.column}：{r.reason}"
                  f"（{r.name} {shown_id(r.id_text, args.full_id)}）")
        more = len(report.refused) + len(report.flagged) - 20
        if more > 0:
            print(f"  ……另有 {more} 行，见报告文件")
        if args.report or report.refused or report.flagged:
            out = Path(args.report) if args.report else Path(args.file).with_name(
                Path(args.file).stem + "_导入报告.xlsx")
            write_rows(out, "导入报告", report_rows(report, args.full_id),
                       [8, 12, 7, 18, 10, 21, 50])
            print(f"导入报告：{out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.export import export

    with _open(args, lock=False) as store:
        year = int(store.setting("campaign_year", "2027") or 2027)
        _write_file(export(store.conn, args.what, args.out, year=year, unit=args.unit,
                           full_id=args.full_id), args.out, "导出")
    print(f"已导出：{args.out}")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from core.reconcile import unconfirmed_claims

    with _open(args, lock=False) as store:
        year = int(store.setting("campaign_year", "2027") or 2027)
        rows = unconfirmed_claims(store.conn, year, days=args.days, unit=args.unit)
        print(f"自报已缴超过 {args.days} 天、税务名单中仍未确认的：{len(rows):,} 人")
        for r in rows[:30]:
            print(f"  {r.place} {r.household_number}户 {r.name} 自报于 {r.claim_date}"
                  f"（{r.days} 天）")
        if args.out:
            from core.export import write_rows
            from core import idcard

            write_rows(args.out, "待核对", [["所在", "户号", "姓名", "身份证号", "自报缴费日期",
                                             "已过天数", "渠道", "登记人"]] + [
                [r.place, r.household_number, r.name,
                 r.id_number if args.full_id else idcard.mask(r.id_number or ""),
                 r.claim_date, r.days, r.channel, r.claim_by] for r in rows],
                [24, 7, 9, 21, 12, 8, 8, 9])
            print(f"已导出：{args.out}")
    return 0


def cmd_print(args: argparse.Namespace) -> int:
    from core.printing import documents as docs
    from core.printing import fonts

    with _open(args, lock=False) as store:
        fonts.register(args.font or store.setting("pdf_font"))
        year = int(store.setting("campaign_year", "2027") or 2027)
        settings = {k: v for k in ("payment_link", "contact_phone")
                    if (v := store.setting(k))}
        unit_name = ""
        if args.unit:
            row = store.conn.execute("SELECT name FROM unit WHERE gid=?", (args.unit,)).fetchone()
            if row is None:
                print(f"错误：没有代码为 {args.unit} 的单位", file=sys.stderr)
                return 2
            unit_name = row[0]
        if args.what == "notices":
            steps = docs.notices(store.conn, args.out, year=year, unit=args.unit,
                                 unpaid_only=not args.all, full_id=args.full_id,
                                 settings=settings)
        elif args.what == "forms":
            steps = docs.forms(store.conn, args.out, year=year, unit=args.unit,
                               blank=args.blank, unpaid_only=not args.all,
                               full_id=args.full_id)
        elif args.what == "cards":
            steps = docs.cards(args.out, year=year, per_page=args.per_page, pages=args.pages,
                               large=args.large, settings=settings, unit_name=unit_name)
        else:
            steps = docs.unpaid_list(store.conn, args.out, year=year, unit=args.unit,
                                     full_id=args.full_id)
        _write_file(steps, args.out, "打印")
    print(f"已生成：{args.out}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "ledger":
        from benchmarks.ledger import run

        return run(persons=args.persons, db=args.db, keep=args.keep, seed=args.seed)
    if args.what == "import":
        from benchmarks.imports import run as run_import_bench

        persons = args.persons if args.persons != 1_000_000 else 400_000
        return run_import_bench(persons=persons, db=args.db, seed=args.seed)
    if args.what == "print":
        from benchmarks.printing import run as run_print_bench

        return run_print_bench(db=args.db)
    if args.what == "ui":
        from benchmarks.ui import run as run_ui

        return run_ui(persons=args.persons, db=args.db, seed=args.seed)
    print(f"未知的基准测试：{args.what}", file=sys.stderr)
    return 2


def cmd_gui(args: argparse.Namespace) -> int:
    from ui.app import run

    return run(db=args.db, demo=args.demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="参保通", description=f"{APP_NAME} {__version__} — 城乡居民医保参保缴费台账（离线版）",
        epilog="不带命令时打开图形界面。")
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    parser.add_argument("--db", metavar="路径", help="数据库文件（默认在本机用户数据目录）")
    parser.add_argument("--demo", action="store_true", help="打开演示县（首次使用时自动生成）")
    # --db is accepted before or after the command; SUPPRESS keeps a subcommand
    # from resetting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="路径", default=argparse.SUPPRESS,
                        help="数据库文件（默认在本机用户数据目录）")
    sub = parser.add_subparsers(dest="command", metavar="命令")

    p = sub.add_parser("demo", parents=[common], help="生成演示县（虚构数据）")
    p.add_argument("--persons", type=int, default=20000, metavar="N", help="人数（默认 20000）")
    p.add_argument("--seed", type=int, default=1, metavar="S", help="随机种子，同一种子结果相同")
    p.add_argument("--force", action="store_true", help="覆盖已有的演示数据库")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("info", parents=[common], help="按单位和状态统计人数")
    p.add_argument("--level", default="village", metavar="层级",
                   help="township/乡镇、village/村、group/组（默认：村）")
    p.add_argument("--unit", metavar="代码", help="只统计某个单位之下")
    p.add_argument("--year", type=int, metavar="年度", help="参保年度（默认本机设置）")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("search", parents=[common], help="按姓名、身份证号、电话或拼音首字母查找")
    p.add_argument("query", metavar="关键词")
    p.add_argument("--unit", metavar="代码", help="只在某个单位之下查找")
    p.add_argument("--limit", type=int, default=50, metavar="N")
    p.add_argument("--full-id", action="store_true", help="显示完整身份证号")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("import", parents=[common], help="导入名单（Excel/CSV）")
    p.add_argument("file", metavar="文件", help=".xlsx、.xls 或 .csv")
    p.add_argument("--kind", required=True, metavar="类型",
                   help="lapsed/断保名单、unenrolled/未参保户籍人口、paid/税务已缴费名单、"
                        "special/特殊群体名单、roster/户籍花名册")
    p.add_argument("--unit", metavar="代码", help="只在这个单位之下匹配村组")
    p.add_argument("--unit-map", action="append", metavar="名称=组代码",
                   help="把名单中的村组名称对应到台账中的组，可重复")
    p.add_argument("--default-group", metavar="组代码", help="名单中没有村组列时，新人员加到这个组")
    p.add_argument("--department", metavar="部门", help="特殊群体名单的来源部门，如 民政")
    p.add_argument("--category", metavar="类别", help="特殊群体名单没有类别列时的类别，如 低保对象")
    p.add_argument("--operator", metavar="姓名", help="操作员（默认本机设置）")
    p.add_argument("--preview", type=int, metavar="N", help="只预览前N行，不导入")
    p.add_argument("--report", metavar="文件", help="导入报告保存为 .xlsx")
    p.add_argument("--full-id", action="store_true",
                   help="预览和导入报告中显示完整身份证号（默认打码）")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", parents=[common], help="导出表格（.xlsx）")
    p.add_argument("what", choices=["ledger", "unpaid", "visits", "subsidy"], metavar="内容",
                   help="ledger/台账、unpaid/未缴费名单、visits/走访记录、subsidy/特殊群体资助到账")
    p.add_argument("--out", required=True, metavar="文件")
    p.add_argument("--unit", metavar="代码", help="只导出这个单位")
    p.add_argument("--full-id", action="store_true", help="导出完整身份证号（默认打码）")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("reconcile", parents=[common], help="核对：自报已缴但税务未确认的人员")
    p.add_argument("--days", type=int, default=15, metavar="N",
                   help="自报已缴超过N天仍未确认的列出（默认15）")
    p.add_argument("--unit", metavar="代码")
    p.add_argument("--out", metavar="文件", help="保存为 .xlsx")
    p.add_argument("--full-id", action="store_true", help="显示和导出完整身份证号（默认打码）")
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("print", parents=[common], help="生成打印用PDF")
    p.add_argument("what", choices=["notices", "forms", "cards", "list"], metavar="内容",
                   help="notices/缴费告知书、forms/入户动员登记表、cards/政策明白卡、list/未缴费名单")
    p.add_argument("--unit", metavar="代码", help="组、村或乡镇代码（默认全部）")
    p.add_argument("--out", required=True, metavar="文件.pdf")
    p.add_argument("--all", action="store_true", help="告知书/登记表：所有户（默认只打有未缴的户）")
    p.add_argument("--blank", type=int, default=0, metavar="N", help="登记表：打印N张空白表")
    p.add_argument("--per-page", type=int, default=4, choices=[2, 4, 8], metavar="N",
                   help="明白卡：每页2、4或8张")
    p.add_argument("--pages", type=int, default=1, metavar="N", help="明白卡：页数")
    p.add_argument("--large", action="store_true", help="明白卡：大字版（老年人）")
    p.add_argument("--full-id", action="store_true", help="显示完整身份证号（默认打码）")
    p.add_argument("--font", metavar="字体文件", help="嵌入的中文字体（.ttf/.ttc），默认自动查找")
    p.set_defaults(func=cmd_print)

    p = sub.add_parser("bench", parents=[common], help="性能基准测试")
    p.add_argument("what", choices=["ledger", "ui", "import", "print"], metavar="项目",
                   help="ledger（存储、查找、写入）、ui（界面，offscreen）或 import（Excel导入导出）")
    p.add_argument("--persons", type=int, default=1_000_000, metavar="N")
    p.add_argument("--seed", type=int, default=1, metavar="S")
    p.add_argument("--keep", action="store_true", help="保留生成的数据库")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func = getattr(args, "func", cmd_gui)
    try:
        return func(args)
    except CbtError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\n已取消。", file=sys.stderr)
        return 130


if __name__ == "__main__":
    multiprocessing.freeze_support()  # the packaged app starts worker processes
    sys.exit(main())
