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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"应为正整数（至少为 1） / expected a whole number of at least 1: {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"应为非负整数 / expected a whole number of at least 0: {text!r}")
    return value


def _share_of_rows(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"应为 0 到 1 之间的小数（如 0.08 表示 8%） / expected a share between 0 and 1: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"端口应为 0 到 65535 之间的整数 / expected a port number 0-65535: {text!r}")
    return value


def _data_dir_arg(p: argparse.ArgumentParser, *, inherit: bool = False) -> None:
    # Subcommands inherit the value given before the subcommand name (SUPPRESS keeps it).
    p.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS if inherit else os.environ.get("CREDIT_ETL_DATA_DIR", DEFAULT_DATA_DIR),
        help="数据目录 / data directory (default: ./data, or $CREDIT_ETL_DATA_DIR)",
    )


def _config_arg(p: argparse.ArgumentParser, *, inherit: bool = False) -> None:
    p.add_argument(
        "--config",
        default=argparse.SUPPRESS if inherit else os.environ.get("CREDIT_ETL_CONFIG") or None,
        help="本单位配置目录 / the office's configuration folder (default: $CREDIT_ETL_CONFIG, "
             "else the packaged sample county); see credit-etl init",
    )


# Exit statuses (README "Exit codes"): 0 fine; 1 the night or a command failed on the data (a
# failed run, an error-severity check, an export of a month with no data at all); 2 bad usage or
# an unreadable input file (an export --as-of after the last received day, no warehouse yet); 3 a
# configuration problem (invalid configuration folder, an HTTP department without its token);
# 74 the data directory's disk is full (EX_IOERR); 75 the warehouse or the night stayed busy past
# the wait (EX_TEMPFAIL: try again later).
EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_CONFIG = 0, 1, 2, 3
EXIT_DISK_FULL, EXIT_BUSY = 74, 75


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
    _config_arg(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _data_dir_arg(p, inherit=True)
        _config_arg(p, inherit=True)
        return p

    p = add("init", "创建本单位配置目录（部门、本地目录、节假日、设置） / write an office's configuration folder")
    p.add_argument("dir", type=Path, help="配置目录 / folder to create")
    p.add_argument("--county", default="500000", help="行政区划代码（6位） / county code (6 digits)")
    p.add_argument("--name", default="示范县", help="县（市、区）名称 / county name")

    p = add("generate", "生成示例报送数据（含真值表 truth.csv） / generate sample department submissions with truth.csv")
    p.add_argument("--start", type=_date, required=True, help="首个接收日 / first received day (YYYY-MM-DD)")
    p.add_argument("--days", type=_positive_int, default=30, help="天数（至少 1） / number of days (at least 1; default 30)")
    p.add_argument("--rows-per-day", type=_positive_int, default=200,
                   help="每天每类约多少行（至少 1） / approx. rows per day and feed (at least 1)")
    p.add_argument("--seed", type=int, default=20261123, help="随机种子 / random seed (deterministic output)")
    p.add_argument("--defect-rate", type=_share_of_rows, default=0.08,
                   help="问题行比例（0 到 1） / share of defective rows, 0 to 1 (default 0.08)")

    p = add("template", "生成部门报送模板（XLSX） / write a department's blank submission template (XLSX)")
    p.add_argument("--feed", required=True, help="信息类别：代码、中文名均可 / feed id or Chinese name, e.g. penalties, 行政处罚")
    p.add_argument("--out", required=True, type=Path,
                   help="输出的 .xlsx 文件，或已有目录（在其中写入“<信息类别>模板.xlsx”） / "
                        "output .xlsx file, or an existing folder (writes <信息类别>模板.xlsx in it)")

    p = add("contracts", "输出信息目录文档 / print the catalog (contracts) as documentation")
    p.add_argument("--format", choices=["md"], default="md", help="格式 / format (md)")

    p = add("check", "离线预校验一个报送文件 / validate one file offline before submitting it")
    p.add_argument("file", type=Path, help="待校验文件 / file to check (CSV or XLSX)")
    p.add_argument("--feed", required=True, help="信息类别：代码、中文名均可（如 penalties、行政处罚） / feed id or Chinese name")
    p.add_argument("--format", choices=["text", "json"], default="text", help="输出格式 / output format")
    p.add_argument("--received", type=_date, default=None, help="视为接收日 / treat as received on (default today)")

    p = add("run", "执行某一天的夜间归集 / run one nightly collection for a day (all departments)")
    p.add_argument("--date", type=_date, required=True, help="接收日 / received day (YYYY-MM-DD)")
    p.add_argument("--wait", type=float, default=None,
                   help="另一运行未结束时最多等待的秒数 / seconds to wait for another run "
                        "(default $CREDIT_ETL_WAIT_SECONDS or 1800)")

    add("demo", "一键演示：生成约30天示例数据并逐夜运行 / demo: generate ~30 days of sample feeds and run every night")

    p = add("dashboard", "生成归集质量看板与月度通报 / write the quality dashboard and the monthly bulletin (reports/dashboard/)")
    p.add_argument("--month", type=_month, default=None,
                   help="月份 / month (YYYY-MM; default: the month of the latest received day, written as index.html)")
    p.add_argument("--serve", action="store_true", help="在 127.0.0.1 上提供浏览 / serve reports/ on 127.0.0.1 until Ctrl+C")
    p.add_argument("--port", type=_port, default=8765, help="--serve 的端口 / port for --serve (default 8765; 0 = any free port)")
    p.add_argument("--pdf", action="store_true", help="用无头 Chromium 将月度通报打印为 A4 PDF / print the bulletin to an A4 PDF with headless Chromium")
    p.add_argument("--silence-days", type=_non_negative_int, default=None,
                   help="超过多少天未报送即提醒 / banner when an owed feed has been silent for more than N days (default $CREDIT_ETL_SILENCE_DAYS or 7)")

    p = add("export", "导出月度监测指标 / export the monthly monitored indicators")
    p.epilog = ("仓库中没有该月任何数据（既无该月接收的报送，也无决定日期在该月的记录或该月台账）时拒绝导出，不写文件，退出码 1；"
                "--as-of 晚于最后接收日时拒绝导出（不自动改为最后接收日，以免文件上的截至日与所问不符），不写文件，退出码 2。"
                " / A month with no data at all is refused (nothing written, exit 1); an --as-of after the last received"
                " day is refused, not clamped (nothing written, exit 2).")
    p.add_argument("--month", type=_month, required=True, help="月份 / month (YYYY-MM)")
    p.add_argument("--format", choices=["xlsx", "csv"], default=None,
                   help="格式（缺省取 --out 的扩展名，否则 xlsx） / format (default: the suffix of --out, else xlsx)")
    p.add_argument("--out", type=Path, default=None,
                   help="输出文件（扩展名 .xlsx 或 .csv，须与 --format 一致），或已有目录（在其中写入 indicators_<月份>.<格式>）；"
                        "缺省写到 reports/exports/ / output file (suffix .xlsx or .csv, matching --format), or an existing "
                        "folder (writes indicators_<YYYY-MM>.<format> in it); default under reports/exports/")
    p.add_argument("--as-of", type=_date, default=None, dest="as_of",
                   help="上报率的数据截止日，不得晚于最后接收日 / 上报率 counts records received up to this day "
                        "(default: the last received day; a later day is refused)")
    p.add_argument("--order", choices=["city", "rank"], default=None,
                   help="XLSX 部门排序：city 按市里规定顺序，rank 按合计排名（默认取 departments.yaml 的 indicator_order）"
                        " / XLSX department order: city's order or ranked (default: the registry's indicator_order)")

    p = add("profile", "查询主体信用档案（登记查询使用） / a subject's credit profile across feeds (every query is registered)")
    p.add_argument("subject", help="统一社会信用代码或证件号码 / USCC or ID number")
    p.add_argument("--format", choices=["text", "json"], default="text", help="输出格式 / output format")
    p.add_argument("--as-of", type=_date, default=None, help="按某日掌握的信息 / as the office knew it on (default today)")
    p.add_argument("--reason", required=True, help="查询事由（必填，记入查询使用登记） / why (required, registered)")
    p.add_argument("--operator", default=None, help="查询人（默认操作系统用户） / who (default: the OS user)")

    p = add("share", "写出某晚的全量共享快照（每晚自动只写当晚变更） / write a night's full share snapshot (nightly runs write the night's changes)")
    p.add_argument("--day", type=_date, required=True, help="接收日（晚） / the night (received day)")

    p = add("province", "省级模式：各县推送的归集、数据湖与排名 / province mode: counties' pushes, the lake, rankings")
    province_sub = p.add_subparsers(dest="province_command", metavar="PROVINCE_COMMAND", required=True)
    _add_province_lake_commands(province_sub)
    _add_province_report_commands(province_sub)
    _add_province_celery_commands(province_sub)

    p = add("ui", "启动 Dagster 界面（持久化实例） / start the Dagster UI on a persistent instance")
    p.add_argument("--port", type=_port, default=3000, help="端口 / port (default 3000)")
    p.add_argument("--host", default="127.0.0.1", help="监听地址 / host (default 127.0.0.1)")

    p = add("bench", "性能基准（与 DuckDB 下限对比） / benchmark against the DuckDB floor")
    p.add_argument("--rows", type=int, default=None,
                   help="总行数 / total rows (default: job/night 20000, month 8700, incremental 10000, backfill 10M)")
    p.add_argument("--scenario", choices=["job", "month", "night", "backfill", "incremental", "province"], default="job",
                   help="job：整个夜间作业（默认） / the whole nightly job (default); month：31 个小夜 / 31 small nights; "
                        "night：仅阶段函数 / stage functions only; province：省级模式 1 与 2 个 Celery 工作进程（每县 --rows 条，4 县） / "
                        "province mode with 1 and 2 Celery workers (--rows records per county, 4 counties)")
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
    p.add_argument("--corrections", action="store_true",
                   help="incremental：当晚记录的文书号与基础仓库同源（几乎每条都更正已有记录） / incremental: the night's "
                        "record numbers from the backfill's space, so nearly every record corrects one already held")
    p.add_argument("--profile", action="store_true", help="cProfile 输出到结果旁的 .prof / write cProfile stats beside the JSON")
    return parser


def _add_province_celery_commands(sub) -> None:
    """``credit-etl province workers``: Celery worker processes for the province runs' steps."""
    text = ("启动 Celery 工作进程执行 Dagster 步骤（代理地址取自 $CREDIT_ETL_CELERY_BROKER） / "
            "start Celery worker processes that execute Dagster steps (broker from $CREDIT_ETL_CELERY_BROKER)")
    p = sub.add_parser("workers", help=text, description=text)
    p.add_argument("--count", type=int, default=2, help="工作进程数 / worker processes (default 2)")
    p.add_argument("--log-dir", type=Path, default=None,
                   help="工作进程日志目录 / folder for the workers' logs (default: discarded)")
    p.set_defaults(province_handler=_province_workers)


def _province_workers(args: argparse.Namespace, data_dir: Path) -> int:
    from pipelines.workers import BROKER_ENV, run_workers

    if args.count < 1:
        print("--count 至少为 1 / --count must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if not os.environ.get(BROKER_ENV):
        print(f"未设置 {BROKER_ENV}：请在环境变量中给出 Celery 代理地址（如 redis://127.0.0.1:6379/0） / "
              f"{BROKER_ENV} is not set", file=sys.stderr)
        return EXIT_CONFIG
    return run_workers(args.count, log_dir=args.log_dir)


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `credit-etl contracts | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    from warehouse.db import WarehouseBusy, WarehouseMissing
    from warehouse.diskspace import DiskFull, explain_disk_full

    try:
        return _dispatch(args)
    except WarehouseMissing as exc:  # a command that reads the warehouse, on a data dir without one
        print(exc.message_zh, file=sys.stderr)
        return EXIT_USAGE
    except WarehouseBusy as exc:
        print(exc.message_zh, file=sys.stderr)
        return EXIT_BUSY
    except DiskFull as exc:
        print(exc.message_zh, file=sys.stderr)
        return EXIT_DISK_FULL
    except Exception as exc:  # a full disk surfaces as OSError, DuckDB IOException or SQLite error
        message = explain_disk_full(exc, Path(args.data_dir))
        if message is None:
            raise
        print(message, file=sys.stderr)
        return EXIT_DISK_FULL


def _dispatch(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir)
    cmd = args.command

    from contracts.loader import ContractError
    from pipelines.office import describe_error, init_office, validate_deployment

    if cmd == "init":
        try:
            config = init_office(args.dir, county=args.county, name=args.name)
        except (FileExistsError, ValueError) as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_USAGE
        print(f"已创建配置目录 / configuration written: {config.root}\n"
              f"  请编辑 departments.yaml 与 settings.yaml，然后：credit-etl --config {config.root} run --date YYYY-MM-DD")
        return EXIT_OK
    # the demo always runs on the packaged sample county; every other command on --config
    try:
        from contracts.config import use_config

        validate_deployment(None if cmd == "demo" else args.config)
        use_config(None if cmd == "demo" else args.config)
    except ContractError as exc:
        print(describe_error(exc), file=sys.stderr)
        return EXIT_CONFIG

    if cmd == "generate":
        from pipelines.samples.feeds import generate

        summary = generate(data_dir, start=args.start, days=args.days, rows_per_day=args.rows_per_day,
                           seed=args.seed, defect_rate=args.defect_rate)
        print(summary.describe())
        return 0
    if cmd == "template":
        from assets.publish.templates import write_template
        from contracts import feed_labels, find_feed, load_contracts

        contracts = load_contracts()
        contract = find_feed(contracts, args.feed)
        if contract is None:
            print(f"未知信息类别 / unknown feed: {args.feed}（可选 / known: {feed_labels(contracts)}）", file=sys.stderr)
            return 2
        from assets.publish.templates import template_file_name

        target = args.out / template_file_name(contract) if args.out.is_dir() else args.out
        if target.suffix.lower() != ".xlsx":
            print(f"--out 应为 .xlsx 文件或已有目录：模板是 XLSX 工作簿，不写入扩展名为“{target.suffix or '（无）'}”的文件 / "
                  f"--out must be an .xlsx file or an existing folder: {target}", file=sys.stderr)
            return EXIT_USAGE
        try:
            path = write_template(contract, target)
        except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            print(_cannot_write(target, exc), file=sys.stderr)
            return EXIT_USAGE
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
        from assets.partitions import day_problem
        from pipelines.nightly import run_night
        from pipelines.runguard import Interrupted, WaitTimeout

        from contracts import load_registry
        from contracts.config import active_config, config_problems

        problem = day_problem(args.date)
        if problem:
            print(problem, file=sys.stderr)
            return EXIT_USAGE
        try:
            result = run_night(data_dir, args.date, wait=args.wait, out=lambda t: print(t, file=sys.stderr, flush=True))
        except WaitTimeout as exc:
            print(exc.message_zh, file=sys.stderr)
            return EXIT_BUSY
        except Interrupted as exc:
            print(f"{exc}，等待已取消，本次夜间归集未开始", file=sys.stderr)
            return 128 + exc.signum
        print(result.describe())
        from pipelines.office import silent_departments

        for line in silent_departments(data_dir, load_registry(), args.date, active_config().settings.silence_days):
            print(line)
        problems = config_problems(load_registry(), targets=active_config().push_targets())
        for line in problems:
            print(line, file=sys.stderr)
        # an error-severity check (e.g. an unreadable delivery) needs an officer even when the
        # rest of the night went through: a non-zero exit lets cron or a wrapper alert. A data
        # failure outranks a configuration problem (both are printed).
        if not (result.success and not result.failed_checks):
            return EXIT_DATA
        return EXIT_CONFIG if problems else EXIT_OK
    if cmd == "demo":
        from pipelines.demo import run_demo

        return run_demo(data_dir)
    if cmd == "dashboard":
        return _dashboard(data_dir, args)
    if cmd == "export":
        from assets.publish.export import AsOfAfterLastDay, ExportRefused, export_file_name, write_export

        fmt, out = args.format, args.out
        if out is not None and out.is_dir():
            fmt = fmt or "xlsx"
            out = out / export_file_name(args.month, fmt)
        elif out is not None:
            suffix = out.suffix.lower().lstrip(".")
            if suffix not in ("xlsx", "csv"):
                print(f"--out 的扩展名应为 .xlsx 或 .csv（或给出已有目录）：{out} / --out must end in .xlsx or .csv, "
                      f"or name an existing folder", file=sys.stderr)
                return EXIT_USAGE
            if fmt and fmt != suffix:
                print(f"--format {fmt} 与 --out 的扩展名 .{suffix} 不一致：请去掉 --format（按扩展名导出）或改正文件名 / "
                      f"--format {fmt} does not match the suffix of --out ({out})", file=sys.stderr)
                return EXIT_USAGE
            fmt = suffix
        try:
            path = write_export(data_dir, args.month, fmt=fmt or "xlsx", out=out, as_of=args.as_of, order=args.order)
        except AsOfAfterLastDay as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_USAGE
        except ExportRefused as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_DATA
        except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            print(_cannot_write(out or exc.filename, exc), file=sys.stderr)
            return EXIT_USAGE
        print(f"已导出 / exported: {path}")
        return 0
    if cmd == "share":
        from assets.credit_status import write_share_export
        from contracts import load_contracts
        from warehouse.db import connect
        from warehouse.layout import DataDir
        from warehouse.nights import night_ran, not_run_message

        # a full snapshot is a baseline the receiver replaces its copy with: never one of a day no
        # night has loaded (it would hold none of that day's records, or none at all)
        with connect(DataDir(data_dir), create=False) as con:
            problem = None if night_ran(con, args.day) else not_run_message(con, args.day, data_dir.resolve())
        if problem:
            print(problem, file=sys.stderr)
            return EXIT_USAGE
        summary = write_share_export(data_dir, args.day, load_contracts(), full=True)
        for path in summary.share_files:
            print(f"已写出 / written: {path}")
        return 0
    if cmd == "profile":
        from assets.credit_profile import ProfileError, run_profile

        try:
            print(run_profile(data_dir, args.subject, fmt=args.format, as_of=args.as_of, reason=args.reason,
                              operator=args.operator))
        except ProfileError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        return 0
    if cmd == "ui":
        from pipelines.instance import run_ui

        return run_ui(data_dir, host=args.host, port=args.port)
    if cmd == "province":
        return args.province_handler(args, data_dir)
    if cmd == "bench":
        from bench.run import main as bench_main

        return bench_main(rows=args.rows, scenario=args.scenario, out=args.out, data_dir=data_dir, reuse=args.reuse,
                          days=args.days, base_rows=args.base_rows, seed=args.seed, regenerate=args.regenerate,
                          profile=args.profile, whole_job=args.whole_job, corrections=args.corrections)
    raise AssertionError(cmd)


def _add_province_lake_commands(sub) -> None:
    """``credit-etl province run``: the province job (inbox → Iceberg lake → county figures)."""
    p = sub.add_parser("run", help="把某接收日各县推送的批次入湖并计算县级指标 / load a received day's county pushes into the lake",
                       description="把某接收日（可限定一个县）推送的批次按目录校验后写入数据湖，并计算县级指标。"
                                   " / Load one received day's pushed batches (optionally one county) into the lake.")
    _data_dir_arg(p, inherit=True)
    _config_arg(p, inherit=True)
    p.add_argument("--day", type=_date, required=True, help="接收日 / received day (YYYY-MM-DD)")
    p.add_argument("--county", default=None, help="县级行政区划代码（6位） / county region code (default: every county with an inbox folder that day)")
    p.set_defaults(province_handler=_province_run)


def _province_run(args: argparse.Namespace, data_dir: Path) -> int:
    from assets.province.lake import LakeConfigError, access
    from contracts.config import active_config
    from pipelines.instance import get_instance
    from pipelines.province import run_partitions

    try:
        access(active_config().settings.province.lake if active_config().settings.province else None)
    except LakeConfigError as exc:
        print(f"配置问题：{exc}", file=sys.stderr)
        return EXIT_CONFIG
    from assets.partitions import day_problem

    problem = day_problem(args.day)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    if args.county and not (len(args.county) == 6 and args.county.isdigit()):
        print(f"县级行政区划代码应为6位数字 / county code must be 6 digits: {args.county}", file=sys.stderr)
        return EXIT_USAGE
    results = run_partitions(str(data_dir), args.day, args.county, instance=get_instance(data_dir))
    if not results:
        print(f"{args.day} 收件目录中没有任何县的推送 / no county pushed on {args.day}")
        return EXIT_OK
    for county, ok, n in results:
        counts = f"（收到 {n['rows_in']} 行，入库 {n['loaded']}，隔离 {n['quarantined']}）" if n else ""
        print(f"{county} {args.day}：{'完成' if ok else '失败'}{counts} / {'ok' if ok else 'failed'}")
    return EXIT_OK if all(ok for _, ok, _ in results) else EXIT_DATA


def _cannot_write(target, exc: OSError) -> str:
    """A file the command cannot write where it was told to (permissions, a file in the way of a
    folder): said plainly instead of a traceback; the disk-full case is main()'s (exit 74)."""
    import errno

    why = {errno.EACCES: "没有写入权限", errno.EPERM: "没有写入权限", errno.EROFS: "文件系统只读",
           errno.EISDIR: "该路径是一个目录", errno.ENOTDIR: "路径中有一段不是目录",
           errno.EEXIST: "路径中有一段是已有的文件，不是目录"}.get(exc.errno, exc.strerror or str(exc))
    return f"无法写入 {target}：{why} / cannot write {target}: {exc.strerror or exc}"


def _dashboard(data_dir: Path, args: argparse.Namespace) -> int:
    from assets.dashboard.pdf import ChromiumMissing, html_to_pdf
    from assets.dashboard.render import write_dashboard
    from assets.dashboard.serve import start_server
    from warehouse.layout import DataDir

    from warehouse.db import connect
    from warehouse.nights import warehouse_is_empty

    layout = DataDir(data_dir)
    with connect(layout, create=False) as con:  # WarehouseMissing: no warehouse at all
        empty = warehouse_is_empty(con)
    if empty:  # an empty warehouse would be drawn as a month of zeros "as of today"
        print(f"数据目录 {data_dir.resolve()} 的仓库是空的（还没有任何一晚归集的结果），无法生成看板：请先运行 "
              f"credit-etl run --date YYYY-MM-DD，或用 --data-dir 指定本单位的数据目录 / "
              f"the warehouse is empty: no night has been run on it yet", file=sys.stderr)
        return EXIT_USAGE
    try:
        out = write_dashboard(layout, month=args.month, silence_days=args.silence_days)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    page = out.index or out.month_page
    print(f"看板 / dashboard: {page}（{out.month}，数据截至 {out.as_of}）")
    for banner in out.banners:
        print(f"  提醒 / banner: {banner['text']}")
    print(f"月度通报 / bulletin: {out.bulletin}")
    if args.pdf:
        try:
            pdf = html_to_pdf(out.bulletin, out.bulletin.with_suffix(".pdf"))
        except (ChromiumMissing, RuntimeError) as exc:
            print(str(exc), file=sys.stderr)
            return 2
        print(f"通报 PDF / bulletin PDF: {pdf}")
    if args.serve:
        # block SIGINT/SIGTERM before the server thread starts (it inherits the mask), then wait
        # for either in the main thread: Ctrl+C and `kill` both stop the server cleanly
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        try:
            server, url = start_server(layout.reports, args.port)
        except OSError as exc:
            print(f"无法在 127.0.0.1:{args.port} 上启动 / cannot serve on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
            return 2
        url = url.rsplit("/", 1)[0] + "/" + page.name
        print(f"浏览 / open: {url}  （仅本机 127.0.0.1；Ctrl+C 退出 / to stop）", flush=True)
        try:
            signal.sigwait(stop)
        finally:
            server.shutdown()
            server.server_close()
        print("已停止 / stopped")
    return 0


def _province_parser(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    _data_dir_arg(p, inherit=True)
    _config_arg(p, inherit=True)
    return p


def _period_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--month", type=_month, default=None, help="统计月份 / month YYYY-MM (default: last month)")
    p.add_argument("--start", type=_date, default=None, help="起始接收日（与 --end 同用，代替 --month）/ first day of a range")
    p.add_argument("--end", type=_date, default=None, help="截止接收日 / last day of a range")
    p.add_argument("--db", type=Path, default=None,
                   help="含 county_metrics_daily 表的 DuckDB 文件；缺省读取省级数据湖 / DuckDB file with county_metrics_daily "
                        "(default: the province lake's views)")


def _add_province_report_commands(sub) -> None:
    """REPORT's province sub-commands: receive, export, dashboard (assets/province/)."""
    p = _province_parser(sub, "receive", "省级收件端：接收各区县的向上推送，写入省级收件目录 / receive the counties' pushes")
    p.add_argument("--port", type=_port, default=None, help="端口（缺省取设置 province.receiver.port，8780）/ port")
    p.add_argument("--host", default=None, help="监听地址（缺省 127.0.0.1）/ listen address")
    p.add_argument("--inbox", type=Path, default=None, help="收件目录（缺省 DATA_DIR/inbox）/ inbox folder")
    p.add_argument("--county", action="append", default=[], metavar="CODE=NAME",
                   help="另行接收的区县（可多次；补充设置 province.counties）/ accept this county too (repeatable)")
    p.set_defaults(province_handler=_province_receive)
    p = _province_parser(sub, "export", "省级区县排名指标导出（XLSX 与 CSV）/ the province's county league export")
    _period_args(p)
    p.add_argument("--format", choices=["xlsx", "csv", "all"], default="all", help="导出格式 / format (default: both)")
    p.set_defaults(province_handler=_province_export)
    p = _province_parser(sub, "dashboard", "省级区县排名看板（离线 HTML）/ the province's league page")
    _period_args(p)
    p.set_defaults(province_handler=_province_dashboard)


def _province_period(args: argparse.Namespace):
    from assets.province.ranking import Period

    if args.start or args.end:
        if not (args.start and args.end) or args.month:
            raise ValueError("--start 与 --end 须同时给出，且不与 --month 同用 / give --start and --end together, without --month")
        return Period.days(args.start, args.end)
    if args.month is None:  # the last complete month, as the county's monthly export
        from datetime import timedelta

        return Period.month((date.today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m"))
    return Period.month(args.month)


def _province_receive(args: argparse.Namespace, data_dir: Path) -> int:
    from assets.province.receiver import ProvinceReceiver, ReceiverConfigError, ReceiverSettings, serve
    from assets.province.report import province_counties, province_settings

    settings = getattr(province_settings(), "receiver", None) or ReceiverSettings()
    if args.inbox is not None:
        settings = settings.model_copy(update={"inbox": args.inbox})
    counties = province_counties()
    for item in args.county:
        code, _, name = item.partition("=")
        if not (len(code) == 6 and code.isdigit()):
            print(f"--county 应为 6 位区县代码=名称 / expected CODE=NAME: {item!r}", file=sys.stderr)
            return EXIT_USAGE
        counties[code] = name or code
    if not counties:
        print("settings.yaml 的 province.counties 未列出任何区县（或用 --county 指定），收件端未启动 / no counties configured",
              file=sys.stderr)
        return EXIT_CONFIG
    try:
        receiver = ProvinceReceiver.from_settings(settings, data_dir, counties, os.environ)
    except ReceiverConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    try:
        serve(receiver, args.host or settings.host, settings.port if args.port is None else args.port,
              out=lambda t: print(t, flush=True))
    except OSError as exc:
        print(f"无法启动收件端 / cannot listen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _province_report(data_dir: Path, args: argparse.Namespace, write) -> int:
    from assets.province.report import MetricsSourceMissing, metrics_connection, province_counties, province_title

    try:
        period = _province_period(args)
        con = metrics_connection(args.db)
    except (ValueError, MetricsSourceMissing) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    try:
        region, issuer = province_title()
        for path in write(con, period, data_dir / "reports", province_counties(), region, issuer):
            print(f"已生成 / written: {path}（{period.label}）")
    finally:
        con.close()
    return EXIT_OK


def _province_export(args: argparse.Namespace, data_dir: Path) -> int:
    from assets.province.ranking import league
    from assets.province.report import write_province_export

    fmts = ["xlsx", "csv"] if args.format == "all" else [args.format]

    def write(con, period, out, counties, region, issuer):
        data = league(con, period, counties)  # read once, written in every format
        return [write_province_export(con, period, out, fmt=f, region=region, issuer=issuer, data=data) for f in fmts]

    return _province_report(data_dir, args, write)


def _province_dashboard(args: argparse.Namespace, data_dir: Path) -> int:
    from assets.province.report import write_province_dashboard

    return _province_report(data_dir, args, lambda con, period, out, counties, region, issuer: [
        write_province_dashboard(con, period, out, counties=counties, region=region)])


if __name__ == "__main__":
    sys.exit(main())
