"""Thin Dagster assets of the province mode, partitioned county × received day.

Each step reads what it needs from the inbox or the lake (no IO manager passes data between
steps), so the job runs the same in one process or on separate Celery workers. Settings (the
``province:`` section) and the contracts come from :class:`ProvinceResource`.
"""


import os
from datetime import date
from typing import Optional

import dagster as dg

from assets.metadata import counts_metadata
from assets.partitions import FIRST_DAY, OWNERS, TIMEZONE
from contracts import Contract
from contracts.config import OfficeConfig, Settings, active_config, load_office_config

COUNTY_PARTITIONS = "county"
county_partitions = dg.DynamicPartitionsDefinition(name=COUNTY_PARTITIONS)
province_partitions = dg.MultiPartitionsDefinition({
    "county": county_partitions,
    "day": dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone=TIMEZONE),
})
GROUP = "province"
PROVINCE_DIR_ENV = "CREDIT_ETL_PROVINCE_DIR"


class ProvinceResource(dg.ConfigurableResource):
    """The province's data directory (``inbox/`` of county pushes) and its deployment folder
    (settings with ``province:``, contracts, calendars); lake secrets come from the environment
    variables the settings name."""

    data_dir: str = "./province"
    config_dir: Optional[str] = None  # default: $CREDIT_ETL_CONFIG (contracts/config.py)

    def config(self) -> OfficeConfig:
        return load_office_config(self.config_dir) if self.config_dir else active_config()

    def settings(self) -> Settings:
        return self.config().settings

    def contracts(self) -> dict[str, Contract]:
        return self.config().contracts()


def partition(context) -> tuple[str, date]:
    keys = context.partition_key.keys_by_dimension
    return keys["county"], date.fromisoformat(keys["day"])


@dg.asset(
    name="province_records",
    group_name=GROUP,
    partitions_def=province_partitions,
    kinds={"python", "iceberg", "s3"},
    owners=OWNERS,
    description=(
        "省级归集：读取某县某接收日推送到省平台的批次（790号字段代码换回目录字段名），按同一套目录与校验引擎校验，"
        "合格行写入数据湖 records_<信息类别> 表、不合格行写入 quarantine 表（中文原因），每表一次快照替换本县本日分区。"
        " / One county × received day of pushed batches, validated by the same contracts, into the"
        " Iceberg tables records_<feed> and quarantine (one snapshot per table replacing the partition)."
    ),
    check_specs=[dg.AssetCheckSpec(
        "province_rows_conserved", asset="province_records",
        description="收件批次的行数 = 数据湖中本分区入库行 + 隔离行 / rows in the batches = lake rows loaded + quarantined",
    )],
)
def province_records(context: dg.AssetExecutionContext, province: ProvinceResource) -> dg.MaterializeResult:
    from assets.province.partition import lake_partition_rows, load_partition
    from assets.province.pushes import count_batch_rows

    county, day = partition(context)
    contracts = province.contracts()
    settings = province.settings()
    summary = load_partition(province.data_dir, county, day, contracts, settings)
    context.log.info(f"{county} {day}：收到 {summary.rows_in} 行，入库 {summary.loaded}，隔离 {summary.quarantined}"
                     f"（{summary.batches} 批）")
    in_files = count_batch_rows(province.data_dir, county, day)
    in_lake = lake_partition_rows(county, day, contracts, settings)
    return dg.MaterializeResult(
        metadata=counts_metadata(
            summary.loaded,
            {"rows_in": {f: v["rows_in"] for f, v in summary.per_feed.items()},
             "quarantined": {f: v["quarantined"] for f, v in summary.per_feed.items()}},
            rows_in=dg.MetadataValue.int(summary.rows_in),
            quarantined_rows=dg.MetadataValue.int(summary.quarantined),
            batches=dg.MetadataValue.int(summary.batches),
            snapshots=dg.MetadataValue.json({k: str(v) for k, v in summary.snapshots.items()}),
        ),
        check_results=[dg.AssetCheckResult(
            check_name="province_rows_conserved",
            passed=in_files == in_lake == summary.rows_in,
            metadata={"rows_in_batches": dg.MetadataValue.int(in_files),
                      "rows_in_lake": dg.MetadataValue.int(in_lake)},
        )],
    )


@dg.asset(
    name="province_county_metrics",
    group_name=GROUP,
    partitions_def=province_partitions,
    deps=[province_records],
    kinds={"python", "duckdb", "iceberg"},
    owners=OWNERS,
    description=(
        "县级指标：按县、信息类别、决定机关计算本接收日的归集量、清洗入库量、合规率、及时率、迟报率（与县级 metrics_daily "
        "同一口径、同一代码），写入数据湖 county_metrics_daily 表本县本日分区。"
        " / The county's figures of the day (same definitions and code as metrics_daily) into county_metrics_daily."
    ),
    check_specs=[dg.AssetCheckSpec(
        "province_figures_match_lake", asset="province_county_metrics",
        description="指标中的收到行数 = 数据湖本分区的入库记录行 + 隔离行 / received rows in the figures = lake rows",
    )],
)
def province_county_metrics(context: dg.AssetExecutionContext, province: ProvinceResource) -> dg.MaterializeResult:
    from assets.province.partition import lake_partition_rows, measure_partition

    county, day = partition(context)
    contracts = province.contracts()
    settings = province.settings()
    figures = measure_partition(county, day, contracts, settings)
    rows = figures.to_pylist()
    received = sum(r["received_rows"] for r in rows)
    expected = lake_partition_rows(county, day, contracts, settings, upserts_only=True)
    meta = {}
    for feed in sorted({r["feed"] for r in rows}):
        fr = [r for r in rows if r["feed"] == feed]
        rec, passed = sum(r["received_rows"] for r in fr), sum(r["passed_rows"] for r in fr)
        timed, on_time = sum(r["timed_records"] for r in fr), sum(r["on_time_records"] for r in fr)
        if rec:
            meta[f"合规率/{feed}"] = dg.MetadataValue.float(round(100.0 * passed / rec, 2))
        if timed:
            meta[f"及时率/{feed}"] = dg.MetadataValue.float(round(100.0 * on_time / timed, 2))
    return dg.MaterializeResult(
        metadata=counts_metadata(len(rows), received_rows=dg.MetadataValue.int(received), **meta),
        check_results=[dg.AssetCheckResult(
            check_name="province_figures_match_lake",
            passed=received == expected,
            metadata={"received_rows": dg.MetadataValue.int(received), "lake_rows": dg.MetadataValue.int(expected)},
        )],
    )


PROVINCE_ASSETS = [province_records, province_county_metrics]


def province_resources(data_dir: str | None = None, config_dir: str | None = None) -> dict:
    return {"province": ProvinceResource(
        data_dir=data_dir or os.environ.get(PROVINCE_DIR_ENV) or os.environ.get("CREDIT_ETL_DATA_DIR", "./province"),
        config_dir=config_dir)}
