"""Schedules in China Standard Time (the partitions' timezone).

The nightly run starts at 01:30 for the previous received day, after departments' end-of-day
drops; the monthly export runs on the 1st at 06:00 for the month that just ended.
"""

import dagster as dg

from pipelines.jobs import monthly_export, nightly_collection

nightly_schedule = dg.build_schedule_from_partitioned_job(
    nightly_collection,
    name="nightly_collection_0130",
    description="每天 01:30（北京时间）归集前一天收到的报送 / 01:30 Asia/Shanghai, previous received day",
    hour_of_day=1,
    minute_of_hour=30,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

monthly_schedule = dg.build_schedule_from_partitioned_job(
    monthly_export,
    name="monthly_indicator_export_1st_0600",
    description="每月1日 06:00 导出上月监测指标 / 1st of the month 06:00, previous month",
    day_of_month=1,
    hour_of_day=6,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
