"""The Dagster code location: assets of every stage, their checks, jobs, schedules, sensors.

Load with ``dagster dev -m pipelines.definitions`` or ``credit-etl ui``. The data directory comes
from $CREDIT_ETL_DATA_DIR (default ./data); department HTTP tokens from the environment
variables named in contracts/departments.yaml.
"""

from __future__ import annotations

import os

import dagster as dg

from assets.dashboard.assets import quality_dashboard
from assets.credit_status.assets import record_statuses
from assets.crosscheck.assets import crosscheck_findings
from assets.ingest.assets import HttpFeedsResource, received_rows
from assets.load.assets import warehouse_records
from assets.measure.assets import daily_metrics
from assets.publish.assets import data_docs, feedback_workbooks, monthly_indicators
from assets.push.assets import upward_push
from assets.validate.assets import validated_rows
from pipelines.housekeeping import housekeeping, housekeeping_schedule
from pipelines.jobs import monthly_export, nightly_collection
from pipelines.schedules import monthly_schedule, nightly_schedule
from pipelines.sensors import inbox_sensor
from warehouse.resource import WarehouseResource

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

ALL_ASSETS = [received_rows, validated_rows, warehouse_records, daily_metrics, feedback_workbooks, data_docs, quality_dashboard,
              monthly_indicators, record_statuses, crosscheck_findings]
ALL_ASSETS += [upward_push]  # the night's upward push (assets/push), in the nightly job's publish group


def build_resources(data_dir: str | None = None, http_base: str | None = None, http_enabled: bool = True) -> dict:
    return {
        "warehouse": WarehouseResource(data_dir=data_dir or os.environ.get("CREDIT_ETL_DATA_DIR", "./data")),
        "http_feeds": HttpFeedsResource(base_url=http_base or os.environ.get("CREDIT_ETL_HTTP_BASE") or None,
                                        enabled=http_enabled),
    }


def build_definitions(data_dir: str | None = None, http_base: str | None = None,
                      http_enabled: bool = True) -> dg.Definitions:
    """``http_enabled=False``: inbox only (the benchmark, whose data set holds HTTP deliveries as files)."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=[nightly_collection, monthly_export, housekeeping],
        schedules=[nightly_schedule, monthly_schedule, housekeeping_schedule],
        sensors=[inbox_sensor],
        resources=build_resources(data_dir, http_base, http_enabled),
    )


defs = build_definitions()
