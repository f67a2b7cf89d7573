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

OWNERS = ["team:credit-office-data"]
DUCKDB_POOL = "duckdb_writer"  # one DuckDB writer at a time (limit set in dagster.yaml)
