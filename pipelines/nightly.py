"""``credit-etl run``: one nightly collection for a received day, through the real Dagster job.

It executes the same job the 01:30 schedule launches (``nightly_collection`` for one daily
partition) on the persistent local instance, so the run shows in the UI's history. Afterwards it
reads the day's figures back from the warehouse for a Chinese summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from warehouse.db import connect

# Step-by-step DEBUG events stay in the instance's event log (and the UI); the terminal shows
# warnings and errors only.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
from warehouse.layout import DataDir


@dataclass
class NightResult:
    day: date
    success: bool
    run_id: str
    failed_checks: list[str] = field(default_factory=list)
    by_feed: dict[str, dict[str, int]] = field(default_factory=dict)

    def describe(self) -> str:
        head = "成功 / succeeded" if self.success else "失败 / FAILED"
        lines = [f"{self.day} 夜间归集{head}（run {self.run_id[:8]}）"]
        for feed, c in sorted(self.by_feed.items()):
            lines.append(
                f"  {feed}: 接收 {c['received']} 行，入库 {c['loaded']} 行，隔离 {c['quarantined']} 行"
            )
        for check in self.failed_checks:
            lines.append(f"  未通过的检查 / failed check: {check}")
        return "\n".join(lines)


def day_counts(data_dir: DataDir, day: date) -> dict[str, dict[str, int]]:
    if not data_dir.db_path.exists():
        return {}
    with connect(data_dir, read_only=True) as con:
        rows = con.execute(
            "SELECT feed, sum(received_rows), sum(loaded_rows), sum(quarantined_rows) FROM metrics_daily "
            "WHERE day = ? GROUP BY feed",
            [day],
        ).fetchall()
    return {r[0]: {"received": int(r[1]), "loaded": int(r[2]), "quarantined": int(r[3])} for r in rows}


def run_night(
    data_dir: str | Path,
    day: date,
    *,
    http_base: str | None = None,
    instance: dg.DagsterInstance | None = None,
    http_enabled: bool = True,
) -> NightResult:
    from pipelines.definitions import build_definitions
    from pipelines.instance import get_instance

    layout = DataDir(data_dir)
    defs = build_definitions(str(layout.root), http_base, http_enabled)
    job = defs.resolve_job_def("nightly_collection")
    owns_instance = instance is None
    instance = instance or get_instance(layout.root)
    try:
        result = job.execute_in_process(
            partition_key=day.isoformat(), instance=instance, raise_on_error=False, run_config=QUIET
        )
    finally:
        if owns_instance:
            instance.dispose()
    failed = [
        f"{ev.asset_key.to_user_string()}:{ev.check_name}"
        for ev in result.get_asset_check_evaluations()
        if not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    ]
    return NightResult(day=day, success=result.success, run_id=result.run_id, failed_checks=failed, by_feed=day_counts(layout, day))
