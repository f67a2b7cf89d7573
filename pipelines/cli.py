"""The ``credit-etl`` command line (help in Chinese and English).

Each subcommand parses its arguments here and calls one plain function of the stage that owns
the work, so the same function serves the command, the Dagster assets and the tests.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from datetime import date
from pathlib import Path

DEFAULT_DATA_DIR = "./data"


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期格式应为 YYYY-MM-DD / expected YYYY-MM-DD: {text!r}") from None


def _month(text: str) -> str:
    try:
        date.fromisoformat(text + "-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"月份格式应为 YYYY-MM / expected YYYY-MM: {text!r}") from None
    return text


def _data_dir_arg(p: argparse.ArgumentParser, *, inherit: bool = False) -> None:
    # Subcommands inherit the value given before the subcommand name (SUPPRESS keeps it).
    p.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS if inherit else os.environ.get("CREDIT_ETL_DATA_DIR", DEFAULT_DATA_DIR),
        help="数据目录 / data directory (default: ./data, or $CREDIT_ETL_DATA_DIR)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credit-etl",
        description=(
            "公共信用信息归集流水线：接收部门报送、按目录校验、入库、计算及时率合规率并导出监测指标。\n"
            "Public credit information pipeline: collect department submissions, validate them against\n"
            "the catalog, load the warehouse, measure timeliness and compliance, export indicators."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _data_dir_arg(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _data_dir_arg(p, inherit=True)
        return p

    p = add("generate", "生成示例报送数据（含真值表 truth.csv） / generate sample department submissions with truth.csv")
    p.add_argument("--start", type=_date, required=True, help="首个接收日 / first received day (YYYY-MM-DD)")
    p.add_argument("--days", type=int, default=30, help="天数 / number of days (default 30)")
    p.add_argument("--rows-per-day", type=int, default=200, help="每天每类约多少行 / approx. rows per day and feed")
    p.add_argument("--seed", type=int, default=20261123, help="随机种子 / random seed (deterministic output)")
    p.add_argument("--defect-rate", type=float, default=0.08, help="问题行比例 / share of defective rows (default 0.08)")

    p = add("template", "生成部门报送模板（XLSX） / write a department's blank submission template (XLSX)")
    p.add_argument("--feed", required=True, help="信息类别 / feed id, e.g. penalties")
    p.add_argument("--out", required=True, type=Path, help="输出文件 / output .xlsx file")

    p = add("contracts", "输出信息目录文档 / print the catalog (contracts) as documentation")
    p.add_argument("--format", choices=["md"], default="md", help="格式 / format (md)")

    p = add("check", "离线预校验一个报送文件 / validate one file offline before submitting it")
    p.add_argument("file", type=Path, help="待校验文件 / file to check (CSV or XLSX)")
    p.add_argument("--feed", required=True, help="信息类别 / feed id")
    p.add_argument("--format", choices=["text", "json"], default="text", help="输出格式 / output format")
    p.add_argument("--received", type=_date, default=None, help="视为接收日 / treat as received on (default today)")

    p = add("run", "执行某一天的夜间归集 / run one nightly collection for a day (all departments)")
    p.add_argument("--date", type=_date, required=True, help="接收日 / received day (YYYY-MM-DD)")

    add("demo", "一键演示：生成约30天示例数据并逐夜运行 / demo: generate ~30 days of sample feeds and run every night")

    p = add("export", "导出月度监测指标 / export the monthly monitored indicators")
    p.add_argument("--month", type=_month, required=True, help="月份 / month (YYYY-MM)")
    p.add_argument("--format", choices=["xlsx", "csv"], default="xlsx", help="格式 / format")
    p.add_argument("--out", type=Path, default=None, help="输出文件 / output file (default under reports/exports)")

    p = add("ui", "启动 Dagster 界面（持久化实例） / start the Dagster UI on a persistent instance")
    p.add_argument("--port", type=int, default=3000, help="端口 / port (default 3000)")
    p.add_argument("--host", default="127.0.0.1", help="监听地址 / host (default 127.0.0.1)")

    p = add("bench", "性能基准（与 DuckDB 下限对比） / benchmark against the DuckDB floor")
    p.add_argument("--rows", type=int, default=None,
                   help="总行数 / total rows (default: job/night 20000, month 8700, incremental 10000, backfill 10M)")
    p.add_argument("--scenario", choices=["job", "month", "night", "backfill", "incremental"], default="job",
                   help="job：整个夜间作业（默认） / the whole nightly job (default); month：31 个小夜 / 31 small nights; "
                        "night：仅阶段函数 / stage functions only")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON 结果文件 / JSON results file (default bench/results/<scenario>-<rows>.json)")
    p.add_argument("--days", type=int, default=None,
                   help="backfill/month 的接收天数 / received days of a backfill (default rows ÷ 500k) or month (31)")
    p.add_argument("--reuse", type=Path, default=None,
                   help="incremental：已完成 backfill 的数据目录 / incremental: data dir of a finished backfill to build on")
    p.add_argument("--base-rows", type=int, default=10_000_000,
                   help="incremental 无 --reuse 时基础仓库的行数 / base warehouse rows when --reuse is not given")
    p.add_argument("--seed", type=int, default=20261123, help="随机种子 / random seed of the sample generator")
    p.add_argument("--regenerate", action="store_true", help="重新生成数据集 / rebuild the data set even if one matches")
    p.add_argument("--whole-job", action="store_true",
                   help="backfill/incremental 经整个夜间作业运行 / run backfill or incremental through the whole nightly job")
    p.add_argument("--profile", action="store_true", help="cProfile 输出到结果旁的 .prof / write cProfile stats beside the JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `credit-etl contracts | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    data_dir = Path(args.data_dir)
    cmd = args.command

    if cmd == "generate":
        from pipelines.sample_feeds import generate

        summary = generate(data_dir, start=args.start, days=args.days, rows_per_day=args.rows_per_day,
                           seed=args.seed, defect_rate=args.defect_rate)
        print(summary.describe())
        return 0
    if cmd == "template":
        from assets.publish.templates import write_template
        from contracts import load_contracts

        contracts = load_contracts()
        if args.feed not in contracts:
            print(f"未知信息类别 / unknown feed: {args.feed}（可选 / known: {', '.join(contracts)}）", file=sys.stderr)
            return 2
        path = write_template(contracts[args.feed], args.out)
        print(f"模板已生成 / template written: {path}")
        return 0
    if cmd == "contracts":
        from assets.publish.catalog_docs import render_markdown
        from contracts import load_contracts, load_registry

        contracts = load_contracts()
        print(render_markdown(contracts, load_registry(contracts=contracts)))
        return 0
    if cmd == "check":
        from assets.validate.precheck import run_check

        return run_check(args.file, args.feed, fmt=args.format, received=args.received)
    if cmd == "run":
        from pipelines.nightly import run_night

        result = run_night(data_dir, args.date)
        print(result.describe())
        # an error-severity check (e.g. an unreadable delivery) needs an officer even when the
        # rest of the night went through: a non-zero exit lets cron or a wrapper alert
        return 0 if result.success and not result.failed_checks else 1
    if cmd == "demo":
        from pipelines.demo import run_demo

        return run_demo(data_dir)
    if cmd == "export":
        from assets.publish.export import write_export

        path = write_export(data_dir, args.month, fmt=args.format, out=args.out)
        print(f"已导出 / exported: {path}")
        return 0
    if cmd == "ui":
        from pipelines.instance import run_ui

        return run_ui(data_dir, host=args.host, port=args.port)
    if cmd == "bench":
        from bench.run import main as bench_main

        return bench_main(rows=args.rows, scenario=args.scenario, out=args.out, data_dir=data_dir, reuse=args.reuse,
                          days=args.days, base_rows=args.base_rows, seed=args.seed, regenerate=args.regenerate,
                          profile=args.profile, whole_job=args.whole_job)
    raise AssertionError(cmd)


if __name__ == "__main__":
    sys.exit(main())
