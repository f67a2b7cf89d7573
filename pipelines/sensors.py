"""Sensor: start a nightly run for a received day as soon as new inbox files for it appear.

The cursor is the newest modification time seen, so each file triggers at most once; the run
itself skips content already in the manifest, so a repeated trigger is harmless. Off by default:
offices that want same-day processing switch it on in the UI; the 01:30 schedule covers the rest.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from assets.partitions import TIMEZONE, daily_partitions
from pipelines.jobs import nightly_collection
from warehouse.layout import DataDir


def received_day(path: Path, inbox: Path) -> str | None:
    """The received day of an inbox file: its dated folder, else its modification date (CST)."""
    parts = path.relative_to(inbox).parts  # <dept>/<feed>/[<day>/]<file>
    if len(parts) == 4:
        try:
            return date.fromisoformat(parts[2]).isoformat()
        except ValueError:
            return None
    if len(parts) == 3:
        return datetime.fromtimestamp(path.stat().st_mtime, ZoneInfo(TIMEZONE)).date().isoformat()
    return None


def scan_inbox(inbox: Path, after_ns: int) -> tuple[dict[str, int], int]:
    """Received days with files modified after ``after_ns`` -> newest mtime per day."""
    days: dict[str, int] = {}
    newest = after_ns
    if not inbox.is_dir():
        return days, newest
    for root, _dirs, files in os.walk(inbox):
        for name in files:
            path = Path(root) / name
            if name.startswith(".") or path.is_symlink():
                continue
            mtime = path.stat().st_mtime_ns
            if mtime <= after_ns:
                continue
            day = received_day(path, inbox)
            if day is None:
                continue
            days[day] = max(days.get(day, 0), mtime)
            newest = max(newest, mtime)
    return days, newest


@dg.sensor(
    job=nightly_collection,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="收件箱出现新文件时，为其接收日启动归集 / start a run for a received day when new inbox files appear",
)
def inbox_sensor(context: dg.SensorEvaluationContext):
    data_dir = DataDir(os.environ.get("CREDIT_ETL_DATA_DIR", "./data"))
    after = int(context.cursor or 0)
    days, newest = scan_inbox(data_dir.inbox, after)
    known = set(daily_partitions.get_partition_keys())
    for day, mtime in sorted(days.items()):
        if day not in known:
            context.log.warning(f"接收日 {day} 不在分区范围内（未来日期或过早），已跳过 / day outside the partitions")
            continue
        yield dg.RunRequest(run_key=f"inbox-{day}-{mtime}", partition_key=day)
    context.update_cursor(str(newest))
