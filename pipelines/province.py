"""The province code location (``dagster dev -m pipelines.province`` / ``pipelines.province:defs``).

A separate code location from the county's ``pipelines.definitions``: a province platform runs
the province mode only. ``province_job`` materialises one county × received day (multi-partition
``county`` × ``day``; the ``county`` dimension is dynamic): the county's pushed batches into the
Iceberg lake, then its figures. The steps share nothing in memory (no IO manager passes data),
so the job runs by module path on any executor, Celery workers included.

Counties become partitions when their inbox folder appears: ``province_inbox_sensor`` (stopped
by default, like the county's inbox sensor; start it in the UI or with ``dagster sensor start``)
adds the county and requests a run per county × day whose batch files changed;
``credit-etl province run --day D`` does the same at once from the command line.

Environment: ``$CREDIT_ETL_PROVINCE_DIR`` (or ``$CREDIT_ETL_DATA_DIR``) the province data
directory holding ``inbox/``; ``$CREDIT_ETL_CONFIG`` the deployment folder whose settings.yaml
has the ``province:`` section; the lake's secrets in the variables that section names.
"""


import hashlib
import os
from datetime import date

import dagster as dg

from assets.partitions import FIRST_DAY
from assets.province.assets import (COUNTY_PARTITIONS, PROVINCE_ASSETS, ProvinceResource, county_partitions,
                                    province_partitions, province_resources)
from assets.province.pushes import county_day_dir, inbox_partitions
from assets.province.report_assets import RESOURCE_KEY, ProvinceReportResource, build_report_assets
from pipelines.workers import province_celery_job

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

province_job = dg.define_asset_job(
    "province_job",
    selection=dg.AssetSelection.groups("province"),
    partitions_def=province_partitions,
    description="省级模式：某县某接收日的推送批次入湖并计算县级指标 / one county × day of pushes into the lake, then its figures",
)


def partition_key(county: str, day: date | str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"county": county, "day": str(day)[:10]})


def inbox_signature(data_dir: str, county: str, day: str) -> str:
    """Names and sizes of the batch files: a new or rewritten batch gives a new run key."""
    h = hashlib.sha256()
    for p in sorted(county_day_dir(data_dir, county, day).glob("*.json")):
        h.update(f"{p.name}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


@dg.sensor(
    job=province_job,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="省平台收件目录出现新的县或新的批次时，登记县分区并请求该县该日的运行 / a new county or batch in the inbox → its partition and run",
)
def province_inbox_sensor(context: dg.SensorEvaluationContext, province: ProvinceResource) -> dg.SensorResult:
    parts = [(c, d) for c, d in inbox_partitions(province.data_dir) if d >= FIRST_DAY]
    known = set(context.instance.get_dynamic_partitions(COUNTY_PARTITIONS))
    new = sorted({c for c, _ in parts} - known)
    runs = [dg.RunRequest(run_key=f"{c}|{d}|{inbox_signature(province.data_dir, c, d)}", partition_key=partition_key(c, d))
            for c, d in parts]
    return dg.SensorResult(run_requests=runs,
                           dynamic_partitions_requests=[county_partitions.build_add_request(new)] if new else [])


# The month's county league (export + page) from county_metrics_daily, downstream of the
# county × day figures; monthly partitions, so a job of its own.
REPORT_ASSETS = build_report_assets(deps=["province_county_metrics"])

province_report_job = dg.define_asset_job(
    "province_report",
    selection=dg.AssetSelection.groups("province_report"),
    partitions_def=REPORT_ASSETS[0].partitions_def,
    description="省级区县排名：某月的排名指标导出与排名看板 / the month's county league export and page",
)


def build_definitions(data_dir: str | None = None, config_dir: str | None = None) -> dg.Definitions:
    resources = province_resources(data_dir, config_dir)
    resources[RESOURCE_KEY] = ProvinceReportResource(data_dir=resources["province"].data_dir)
    return dg.Definitions(
        assets=[*PROVINCE_ASSETS, *REPORT_ASSETS],
        # province_job_celery: the same job with its steps on Celery workers (pipelines/workers.py)
        jobs=[province_job, province_celery_job, province_report_job],
        sensors=[province_inbox_sensor],
        resources=resources,
    )


defs = build_definitions()


def run_partitions(data_dir: str, day: date, county: str | None = None, *, instance: dg.DagsterInstance | None = None,
                   config_dir: str | None = None) -> list[tuple[str, bool, dict]]:
    """Run ``province_job`` in this process for every county with an inbox folder on ``day``
    (or only ``county``); registers the county partitions first. Returns (county, success,
    counts: rows_in / loaded / quarantined of the records step when it ran)."""
    counties = [county] if county else sorted({c for c, d in inbox_partitions(data_dir) if d == day.isoformat()})
    instance = instance or dg.DagsterInstance.get()
    known = set(instance.get_dynamic_partitions(COUNTY_PARTITIONS))
    missing = [c for c in counties if c not in known]
    if missing:
        instance.add_dynamic_partitions(COUNTY_PARTITIONS, missing)
    job = build_definitions(data_dir, config_dir).resolve_job_def("province_job")
    out = []
    for c in counties:
        result = job.execute_in_process(instance=instance, partition_key=partition_key(c, day), raise_on_error=False)
        counts = {}
        for m in result.asset_materializations_for_node("province_records"):
            md = m.metadata
            counts = {"rows_in": md["rows_in"].value, "loaded": md["dagster/row_count"].value,
                      "quarantined": md["quarantined_rows"].value}
        out.append((c, result.success, counts))
    return out


def get_province_job() -> dg.JobDefinition:
    """``province_job`` with its resources bound, for ``dg.reconstructable`` (executors that run
    each step in another process find the job again by this module path)."""
    return defs.resolve_job_def("province_job")
