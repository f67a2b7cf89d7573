"""``credit-etl demo``: a month of the shipped county's sample feeds, run night by night.

What a newcomer sees first, so it runs the real thing: sample submissions for the last complete
month (CSV in UTF-8/GBK/GB18030, XLSX with title rows, an HTTP JSON department served by a local
sample server), every night through the ``nightly_collection`` Dagster job on the persistent
instance, then the ``monthly_indicator_export`` job, and a Chinese summary of the month's rates.
Running it again gives the same warehouse (same seed, same files; nothing is loaded twice).
"""

from __future__ import annotations

import calendar
import os
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from assets.partitions import TIMEZONE
from warehouse.layout import DataDir

DEMO_SEED = 20261123
DEMO_ROWS_PER_DAY = 25
DEMO_TOKEN = "demo-token-local-only"  # the local sample server's token, never a real secret


def demo_month(today: date | None = None) -> tuple[date, int]:
    """First day and length of the last complete month (China Standard Time)."""
    today = today or datetime.now(ZoneInfo(TIMEZONE)).date()
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), calendar.monthrange(last.year, last.month)[1]


def _fmt_rate(value) -> str:
    return "—" if value in (None, "") else f"{value}%"


def summary_table(export) -> str:
    """The export's rows as an aligned Chinese table (one line per department and feed)."""
    cols = ["部门名称", "信息类别", "归集量", "清洗入库量", "合规率", "及时率", "迟报率", "上报率"]
    rows = [[str(r[c]) if c in ("部门名称", "信息类别", "归集量", "清洗入库量") else _fmt_rate(r[c]) for c in cols]
            for _, r in export.iterrows()]

    def width(s: str) -> int:
        return sum(2 if ord(ch) > 0x2E7F else 1 for ch in s)

    widths = [max(width(x) for x in [c] + [row[i] for row in rows]) for i, c in enumerate(cols)]
    pad = lambda s, w: s + " " * (w - width(s))  # noqa: E731
    lines = ["  ".join(pad(c, w) for c, w in zip(cols, widths))]
    lines += ["  ".join(pad(x, w) for x, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def run_demo(
    data_dir: str | Path,
    *,
    today: date | None = None,
    rows_per_day: int = DEMO_ROWS_PER_DAY,
    days: int | None = None,
) -> int:
    """Run the demo; ``days`` shortens the month (the export still covers the whole month)."""
    from assets.publish.export import build_export
    from contracts import load_contracts, load_registry
    from pipelines.definitions import build_definitions
    from pipelines.instance import get_instance
    from pipelines.nightly import QUIET, run_night
    from pipelines.samples.feeds import generate
    from pipelines.samples.http import start_sample_server

    layout = DataDir(data_dir)
    start, month_days = demo_month(today)
    days = min(days or month_days, month_days)
    month = start.strftime("%Y-%m")
    print(f"1/4 生成示例报送 / generating sample feeds: {start} 起 {days} 天 → {layout.inbox}")
    summary = generate(layout.root, start=start, days=days, rows_per_day=rows_per_day, seed=DEMO_SEED)
    print("    " + summary.describe().replace("\n", "\n    "))

    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    tokens = {}
    set_here = []  # token variables the demo set for its sample server; unset again when it ends
    for dept in registry.departments:
        for delivery in dept.delivery.values():
            if delivery.kind == "http" and delivery.token_env:
                if delivery.token_env not in os.environ:
                    os.environ[delivery.token_env] = DEMO_TOKEN
                    set_here.append(delivery.token_env)
                tokens[dept.code] = os.environ[delivery.token_env]
    server, base_url = start_sample_server(layout.root, tokens=tokens)
    instance = get_instance(layout.root)
    failures = []
    try:
        print(f"2/4 逐夜归集 / running every night (示例接口 / sample HTTP server {base_url})")
        for i in range(days):
            day = start + timedelta(days=i)
            result = run_night(layout.root, day, http_base=base_url, instance=instance)
            counts = result.by_feed
            received = sum(c["received"] for c in counts.values())
            quarantined = sum(c["quarantined"] for c in counts.values())
            mark = "✓" if result.success and not result.failed_checks else "✗"
            print(f"    {mark} {day}：接收 {received} 行，隔离 {quarantined} 行")
            if not result.success or result.failed_checks:
                failures.append(result.describe())
        print(f"3/4 月度指标导出 / monthly export {month}")
        job = build_definitions(str(layout.root), base_url).resolve_job_def("monthly_indicator_export")
        export_run = job.execute_in_process(
            partition_key=start.isoformat(), instance=instance, raise_on_error=False, run_config=QUIET
        )
        if not export_run.success:
            failures.append(f"月度导出失败 / monthly export failed (run {export_run.run_id})")
    finally:
        server.stop()
        instance.dispose()
        for name in set_here:  # the sample server is gone: a later night in this process must not pull from it
            os.environ.pop(name, None)

    export = build_export(layout, month, contracts, registry)
    print(f"4/4 {month} 各部门指标 / rates per department\n")
    print(summary_table(export))
    print()
    from assets.crosscheck import describe_findings

    last = start + timedelta(days=days - 1)
    print("红黑名单交叉比对 / cross-comparison findings (last night)")
    print("  " + describe_findings(layout, last).replace("\n", "\n  "))
    print()
    print(f"指标导出 / indicator export:   {layout.exports}/indicators_{month}.xlsx（及 .csv）")
    print(f"部门反馈 / feedback workbooks: {layout.feedback}/<部门>/<部门名称>_<日期>_校验反馈.xlsx")
    print(f"数据文档 / Data Docs:          {layout.data_docs}/index.html")
    print(f"质量看板 / dashboard:          {layout.reports}/dashboard/index.html（月度通报 bulletin_{month}.html；credit-etl dashboard --pdf 打印 PDF）")
    print(f"交叉比对 / cross-check:        {layout.crosscheck}/<日期>.xlsx")
    print(f"共享数据 / shared records:     {layout.share}/<日期>/<信息类别>.changes.csv（当晚变更 / the night's changes；首晚为全量 <信息类别>.csv）")
    print("信用档案 / subject profile:    credit-etl profile <统一社会信用代码或证件号码> --reason <事由>")
    print(f"仓库 / warehouse:              {layout.db_path}")
    print("Dagster 界面 / UI:             credit-etl ui" + ("" if str(layout.root) == str(Path("./data").resolve()) else f" --data-dir {layout.root}"))
    for failure in failures:
        print(failure)
    return 1 if failures else 0
