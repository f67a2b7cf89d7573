"""Dagster asset of the measure stage: timeliness per record and metrics per dept × feed × day."""


from datetime import date

import dagster as dg

from assets.measure import measure_day
from assets.metadata import counts_metadata
from assets.partitions import DUCKDB_POOL, OWNERS, daily_partitions
from warehouse.resource import WarehouseResource


@dg.asset(
    name="daily_metrics",
    group_name="measure",
    deps=["warehouse_records"],
    partitions_def=daily_partitions,
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description=(
        "度量：逐条计算报送时限（决定日期起第 N 个工作日，按国务院节假日安排含调休）与是否及时，"
        "并按部门 × 信息类别 × 日/月汇总归集量、清洗入库量、合规率、及时率、迟报率、上报率。"
        " / Deadline and on-time flag per record (State Council working-day calendar), then"
        " received, loaded, compliance, timeliness, late and reporting rates per dept × feed × day and month."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "calendar_not_provisional",
            asset="daily_metrics",
            description="所用工作日历均为正式日历（否则按周一至周五临时计算，结果为暂定） / no figure relies on the Monday–Friday fallback",
        ),
    ],
)
def daily_metrics(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    contracts = warehouse.contracts()
    summary = measure_day(warehouse.layout, day, contracts, warehouse.registry())
    years = sorted({y for f in summary.feeds.values() for y in f.provisional_years})
    if years:
        context.log.warning(f"{years} 年无正式工作日历，及时率为暂定值 / no official calendar for {years}: provisional figures")
    with warehouse.connect() as con:
        rows = con.execute(
            "SELECT feed, sum(received_rows), sum(loaded_rows), sum(on_time_records), sum(late_records) FROM metrics_daily WHERE day = ? GROUP BY feed ORDER BY feed",
            [day],
        ).fetchall()
    by_feed = {r[0]: {"received": int(r[1] or 0), "loaded": int(r[2] or 0), "on_time": int(r[3] or 0), "late": int(r[4] or 0)} for r in rows}
    return dg.MaterializeResult(
        metadata=counts_metadata(
            sum(f.records_timed for f in summary.feeds.values()),
            {"records_timed_by_feed": {f: s.records_timed for f, s in summary.feeds.items()}},
            metrics_for_day=dg.MetadataValue.json(by_feed),
            provisional_years=dg.MetadataValue.json(years),
        ),
        check_results=[
            dg.AssetCheckResult(
                check_name="calendar_not_provisional",
                passed=not years,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"provisional_years": dg.MetadataValue.json(years)},
            )
        ],
    )
