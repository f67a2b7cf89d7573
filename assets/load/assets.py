"""Dagster asset of the load stage: versioned upsert into DuckDB and Parquet by decision month."""


from datetime import date

import dagster as dg
import pyarrow.parquet as pq

from assets.load import load_day
from assets.metadata import contract_schema, counts_metadata
from assets.feeds import FEEDS, feed_checks, feed_key, feed_specs
from assets.partitions import DUCKDB_POOL, OWNERS, daily_partitions
from warehouse.feed_tables import versions_table
from warehouse.resource import WarehouseResource


@dg.multi_asset(
    name="warehouse_records",
    specs=feed_specs(
        "warehouse_records",
        group="load",
        kinds={"duckdb", "parquet"},
        owners=OWNERS,
        upstream="validated_rows",
        description=(
            "入库：通过校验的记录按业务主键写入版本表与当前表（重报替换当前版本并保留历史），"
            "按决定月份写 Parquet；隔离项在整改后的记录入库时关闭。重跑同一天结果不变。"
            " / Passed records upserted by business key into versions and current tables (history kept),"
            " Parquet rewritten only for the decision months the night touched; reruns are idempotent."
        ),
    ),
    check_specs=feed_checks(
        "warehouse_records", "loaded_equals_passed",
        "当天入库的版本数 = 通过校验的行数（在 DuckDB 中重新计数） / versions loaded for the day = passed rows, counted in DuckDB",
        blocking=True,
    ),
    partitions_def=daily_partitions,
    pool=DUCKDB_POOL,
    can_subset=False,  # one DuckDB transaction per night
)
def warehouse_records(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    day = date.fromisoformat(context.partition_key)
    layout = warehouse.layout
    contracts = warehouse.contracts()
    summary = load_day(layout, day, contracts)

    passed_on_disk, in_db = {}, {}
    with warehouse.connect() as con:
        for feed in FEEDS:
            passed = layout.validated_dir(feed, day) / "passed.parquet"
            passed_on_disk[feed] = pq.ParquetFile(passed).metadata.num_rows if passed.exists() else 0
            in_db[feed] = con.execute(
                f'SELECT count(*) FROM "{versions_table(feed)}" WHERE _received_date = ?', [day]
            ).fetchone()[0] if feed in contracts else 0
    cast_failures = {f: s.cast_failures for f, s in summary.feeds.items() if s.cast_failures}
    if cast_failures:
        context.log.warning(f"类型转换失败（已置空） / values that did not cast: {cast_failures}")

    for feed in FEEDS:
        key = feed_key(feed, "warehouse_records")
        s = summary.feeds.get(feed)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata=counts_metadata(
                s.loaded_rows if s else 0,
                quarantine_items_closed=dg.MetadataValue.int(s.quarantine_closed if s else 0),
                months_written=dg.MetadataValue.json(s.months_written if s and s.months_written else []),
                **{"dagster/column_schema": contract_schema([contracts[feed]] if feed in contracts else [])},
            ),
            check_results=[
                dg.AssetCheckResult(
                    asset_key=key,
                    check_name="loaded_equals_passed",
                    passed=passed_on_disk[feed] == in_db[feed],
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata={"passed": dg.MetadataValue.int(passed_on_disk[feed]),
                              "loaded": dg.MetadataValue.int(int(in_db[feed]))},
                )
            ],
        )
