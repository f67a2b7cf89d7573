"""Partitions shared by the stage assets.

The night's unit of work is the *received* day (归集日) in China Standard Time: a department's
file belongs to the day it arrived, which is what timeliness and 归集量 are counted on. The
monthly export is partitioned by calendar month and reads the daily metrics of that month.

The first partition is the office's first received day: ``$CREDIT_ETL_FIRST_DAY``
(``YYYY-MM-DD``; set it to the day the office started collecting, or to the earliest day a
backfill should reach), else ``first_partition_day`` in the deployment folder's settings.yaml
(``credit-etl init`` writes the month it was run in). Unset in both, it is the first day of the previous calendar month (CST): the
month ``credit-etl demo`` generates, so a fresh demo shows its own nights and not years of empty
partitions. A production deployment sets the variable, so its history never scrolls out of view.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from contracts.config import first_partition_day

TIMEZONE = "Asia/Shanghai"
FIRST_DAY_ENV = "CREDIT_ETL_FIRST_DAY"


def first_day(environ=os.environ, today: date | None = None) -> date:
    """The first received day partitions start at (see the module docstring)."""
    text = (environ.get(FIRST_DAY_ENV) or "").strip()
    if text:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{FIRST_DAY_ENV} 应为 YYYY-MM-DD / must be YYYY-MM-DD, got {text!r}") from None
    office = first_partition_day()  # the office's settings.yaml, when a deployment folder is in force
    if office:
        return date.fromisoformat(office)
    today = today or datetime.now(ZoneInfo(TIMEZONE)).date()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


FIRST_DAY = first_day().isoformat()  # earliest received day a run or backfill may target

daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone=TIMEZONE)
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_DAY[:8] + "01", timezone=TIMEZONE)



def today_cst() -> date:
    return datetime.now(ZoneInfo(TIMEZONE)).date()


def day_problem(day: date) -> str | None:
    """Why no night can run for received day ``day`` now, in Chinese / English; None when one can.

    The daily partitions run from :data:`FIRST_DAY` to the last received day that has ended in
    China Standard Time (yesterday: the 01:30 schedule collects the previous day). Dagster refuses
    any other key with a ``DagsterUnknownPartitionError`` traceback; ``credit-etl run`` and
    ``credit-etl province run`` print this instead (exit 2).
    """
    key = day.isoformat()
    if key < FIRST_DAY:
        return (f"{day} 早于分区起始日 {FIRST_DAY}：请将环境变量 {FIRST_DAY_ENV} 设为更早的日期后重试 / "
                f"{day} is before the first partition day {FIRST_DAY}; set {FIRST_DAY_ENV} earlier")
    last = daily_partitions.get_last_partition_key()
    if last is not None and key <= last:
        return None
    today = today_cst()
    latest = f"最近可运行的接收日是 {last}" if last else f"还没有可运行的接收日（分区起始日 {FIRST_DAY} 尚未结束）"
    return (f"{day} 尚不能归集：{latest}。一个接收日要到当天结束（北京时间 24 时）后才能归集，"
            f"每晚 01:30 的定时任务归集前一天；北京时间今天是 {today} / "
            f"{day} cannot be collected yet: the latest runnable received day is {last or 'none'} "
            f"(a received day is collected once it has ended; today in China Standard Time is {today})")


OWNERS = ["team:credit-office-data"]
DUCKDB_POOL = "duckdb_writer"  # one DuckDB writer at a time (limit set in dagster.yaml)
