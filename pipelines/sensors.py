"""Sensor: start a nightly run for a received day as soon as new inbox files for it appear.

The cursor keeps a fingerprint of each received day's files, so a day triggers again only when
its files change; the run itself skips content already in the manifest, so a repeated trigger
is harmless. Off by default:
offices that want same-day processing switch it on in the UI; the 01:30 schedule covers the rest.
"""

from __future__ import annotations

import hashlib
import json
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


def scan_inbox(inbox: Path) -> dict[str, str]:
    """Received day -> fingerprint of its files (relative path, size, mtime).

    A fingerprint per day, not a newest-mtime cursor: files copied with their original
    modification times (``cp -p``, rsync) would slip under a time cursor.
    """
    listing: dict[str, list[str]] = {}
    if not inbox.is_dir():
        return {}
    for root, _dirs, files in os.walk(inbox):
        for name in files:
            path = Path(root) / name
            if name.startswith((".", "~$")) or path.is_symlink():
                continue
            day = received_day(path, inbox)
            if day is None:
                continue
            st = path.stat()
            listing.setdefault(day, []).append(f"{path.relative_to(inbox)}|{st.st_size}|{st.st_mtime_ns}")
    return {day: hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()[:16] for day, items in listing.items()}


@dg.sensor(
    job=nightly_collection,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="收件箱出现新文件时，为其接收日启动归集 / start a run for a received day when new inbox files appear",
)
def inbox_sensor(context: dg.SensorEvaluationContext):
    data_dir = DataDir(os.environ.get("CREDIT_ETL_DATA_DIR", "./data"))
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    current = scan_inbox(data_dir.inbox)
    known = set(daily_partitions.get_partition_keys())
    for day, fingerprint in sorted(current.items()):
        if seen.get(day) == fingerprint:
            continue
        if day not in known:
            context.log.warning(f"接收日 {day} 不在分区范围内（未来日期或过早），已跳过 / day outside the partitions")
            continue
        yield dg.RunRequest(run_key=f"inbox-{day}-{fingerprint}", partition_key=day)
    # keep the cursor small: the most recent 400 received days
    context.update_cursor(json.dumps(dict(sorted(current.items())[-400:])))
