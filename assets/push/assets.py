"""Dagster asset of the push stage: the night's upward push to the city/province platform."""

from datetime import date

import dagster as dg

from assets.feeds import stage_keys
from assets.metadata import counts_metadata
from assets.partitions import DUCKDB_POOL, OWNERS, daily_partitions
from assets.push.push import push_night
from contracts.config import active_config
from warehouse.resource import WarehouseResource


@dg.asset(
    name="upward_push",
    group_name="publish",
    deps=stage_keys("warehouse_records"),  # every feed's loaded records
    partitions_def=daily_partitions,
    kinds={"python", "duckdb"},
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description=(
        "向上推送：按全国交换格式（790号文件字段代码）把上次确认以来新增或变更的记录、撤销和信用修复产生的撤回"
        "推送至市、省社会信用信息平台；未确认的批次按顺序重发，批次号保证不重复。"
        " / Push records new or changed since the last acknowledged push, and withdrawals of revoked"
        " and repaired records, to the configured platform; unacknowledged batches are resent in order."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "push_acknowledged",
            asset="upward_push",
            description="所有推送批次均已被平台确认（否则下次运行重发） / every batch acknowledged by the platform",
        )
    ],
)
def upward_push(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    targets = active_config().push_targets()
    if not targets:
        context.log.info("未配置推送目标（settings.yaml push），本次不推送 / no push target configured")
    contracts = warehouse.contracts()
    results = push_night(warehouse.layout, day, contracts, warehouse.registry(), targets)
    for res in results:
        context.log.info(res.describe())
        for err in res.errors:
            context.log.warning(err)
    pending = {r.target: len(r.pending) for r in results}
    sent = 0
    if results:
        with warehouse.connect(read_only=True) as con:
            sent = con.execute(
                "SELECT coalesce(sum(records + withdrawals), 0) FROM push_batches WHERE night = ?", [day]
            ).fetchone()[0]
    return dg.MaterializeResult(
        metadata=counts_metadata(
            int(sent),
            {"batches_queued": {r.target: len(r.queued) for r in results},
             "batches_acknowledged": {r.target: len(r.acknowledged) for r in results},
             "batches_pending": pending},
        ),
        check_results=[
            dg.AssetCheckResult(
                check_name="push_acknowledged",
                passed=not any(pending.values()),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"pending": dg.MetadataValue.json(pending)},
            )
        ],
    )
