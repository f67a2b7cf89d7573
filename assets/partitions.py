"""Partitions shared by the stage assets.

The night's unit of work is the *received* day (归集日) in China Standard Time: a department's
file belongs to the day it arrived, which is what timeliness and 归集量 are counted on. The
monthly export is partitioned by calendar month and reads the daily metrics of that month.
"""

import dagster as dg

from contracts.config import first_partition_day

TIMEZONE = "Asia/Shanghai"
FIRST_DAY = first_partition_day()  # earliest received day a backfill may target (settings.yaml, default 2023-01-01)

daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone=TIMEZONE)
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_DAY, timezone=TIMEZONE)

OWNERS = ["team:credit-office-data"]
DUCKDB_POOL = "duckdb_writer"  # one DuckDB writer at a time (limit set in dagster.yaml)
