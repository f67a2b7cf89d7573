"""Dagster asset of the cross-comparison stage: findings table and the night's report."""

from datetime import date

import dagster as dg

from assets.crosscheck import KIND_LABELS, run_crosscheck
from assets.metadata import counts_metadata
from assets.partitions import DUCKDB_POOL, OWNERS, daily_partitions
from warehouse.resource import WarehouseResource


@dg.asset(
    name="crosscheck_findings",
    group_name="credit",
    deps=["record_statuses"],
    partitions_def=daily_partitions,
    kinds={"duckdb", "excel"},
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description=(
        "红黑名单交叉比对：黑名单主体获得许可、补贴或红名单，信用承诺后受到处罚（承诺未履行），"
        "修复早于最短公示期，以及异议、修复所指记录不存在；写入 crosscheck_findings 表和 reports/crosscheck/<日期>.xlsx。"
        " / Nightly red/black cross-comparison: findings table and a Chinese report for the office."
    ),
)
def crosscheck_findings(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    summary = run_crosscheck(warehouse.layout, day, warehouse.contracts(), warehouse.registry())
    if summary.by_kind:
        context.log.info("比对发现 / findings: " + "，".join(f"{KIND_LABELS[k]} {n}" for k, n in sorted(summary.by_kind.items())))
    return dg.MaterializeResult(
        metadata=counts_metadata(
            sum(summary.by_kind.values()),
            {"findings_by_kind": dict(summary.by_kind)},
            report=dg.MetadataValue.path(str(summary.report)),
        )
    )
