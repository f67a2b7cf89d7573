"""Dagster asset of the load stage: versioned upsert into DuckDB and Parquet by decision month."""


from datetime import date

import dagster as dg
import pyarrow.parquet as pq

from assets.load import load_day
from assets.metadata import contract_schema, counts_metadata
from assets.partitions import DUCKDB_POOL, OWNERS, daily_partitions
from warehouse.feed_tables import versions_table
from warehouse.resource import WarehouseResource


@dg.asset(
    name="warehouse_records",
    group_name="load",
    deps=["validated_rows"],
    partitions_def=daily_partitions,
    kinds={"duckdb", "parquet"},
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description=(
        "入库：通过校验的记录按业务主键写入版本表与当前表（重报替换当前版本并保留历史），"
        "按决定月份写 Parquet；隔离项在整改后的记录入库时关闭。重跑同一天结果不变。"
        " / Passed records upserted by business key into versions and current tables (history kept),"
        " Parquet rewritten only for the decision months the night touched; reruns are idempotent."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "loaded_equals_passed",
            asset="warehouse_records",
            blocking=True,
            description="当天入库的版本数 = 通过校验的行数（在 DuckDB 中重新计数） / versions loaded for the day = passed rows, counted in DuckDB",
        )
    ],
)
def warehouse_records(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    layout = warehouse.layout
    contracts = warehouse.contracts()
    summary = load_day(layout, day, contracts)

    passed_on_disk, in_db = {}, {}
    with warehouse.connect() as con:
        for feed in contracts:
            passed = layout.validated_dir(feed, day) / "passed.parquet"
            passed_on_disk[feed] = pq.ParquetFile(passed).metadata.num_rows if passed.exists() else 0
            in_db[feed] = con.execute(
                f'SELECT count(*) FROM "{versions_table(feed)}" WHERE _received_date = ?', [day]
            ).fetchone()[0]
    mismatched = {f: [passed_on_disk[f], in_db[f]] for f in contracts if passed_on_disk[f] != in_db[f]}
    cast_failures = {f: s.cast_failures for f, s in summary.feeds.items() if s.cast_failures}
    if cast_failures:
        context.log.warning(f"类型转换失败（已置空） / values that did not cast: {cast_failures}")

    return dg.MaterializeResult(
        metadata=counts_metadata(
            summary.loaded_rows,
            {
                "loaded_by_feed": {f: s.loaded_rows for f, s in summary.feeds.items()},
                "quarantine_items_closed": {f: s.quarantine_closed for f, s in summary.feeds.items()},
            },
            months_written=dg.MetadataValue.json({f: s.months_written for f, s in summary.feeds.items() if s.months_written}),
            **{"dagster/column_schema": contract_schema(contracts.values())},
        ),
        check_results=[
            dg.AssetCheckResult(
                check_name="loaded_equals_passed",
                passed=not mismatched,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"passed_vs_loaded": dg.MetadataValue.json(mismatched)},
            )
        ],
    )
