"""Dagster asset of the credit-status stage: the night's status history and the shared export."""

from datetime import date

import dagster as dg

from assets.credit_status import record_night
from assets.feeds import stage_keys
from assets.metadata import counts_metadata
from assets.partitions import DUCKDB_POOL, OWNERS, daily_partitions
from warehouse.resource import WarehouseResource


@dg.asset(
    name="record_statuses",
    group_name="credit",
    deps=stage_keys("warehouse_records"),  # every feed's loaded records
    partitions_def=daily_partitions,
    kinds={"duckdb", "csv"},
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description=(
        "公示状态：按当晚掌握的信息计算每条记录的公示状态（公示中/异议中/已到期/已修复/已撤销/不予公示），"
        "状态变化连同原因记入 record_status_log（只计算当晚可能变化的记录）；可共享记录的当晚变更"
        "（新增/更新/撤下）写入 reports/share/<日期>/<信息类别>.changes.csv，首晚或规则变化时写全量 <信息类别>.csv。"
        " / Each record's public status as of the night (only the records that can change that night),"
        " changes logged with their cause; the night's changes to what is shared with other platforms,"
        " a full snapshot on the first night or when the rules change."
    ),
)
def record_statuses(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    contracts = warehouse.contracts()
    summary = record_night(warehouse.layout, day, contracts)
    return dg.MaterializeResult(
        metadata=counts_metadata(
            sum(summary.changes.values()),
            {"status_changes": dict(summary.changes), "shared_rows": summary.shared},
            share_changes=dg.MetadataValue.json({f: dict(c) for f, c in summary.share_changes.items()}),
            incremental=dg.MetadataValue.json(summary.incremental),
        )
    )
